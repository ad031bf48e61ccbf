"""The centre's own heartbeat (Alertmanager's "Watchdog"): a signed POST to
`[alerts.deadman] url` every `every_s`, so a watcher outside the province notices the desk is
dead when the pings stop. It runs in the delivery worker's loop: a stuck worker stops it too.
Of several centre processes only the leader pings (agent/centre/leader.py): one heartbeat for
the centre, which moves with the lead; the watcher sees no gap longer than a takeover.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from agent.centre.alerts.channels import DeliveryError
from agent.centre.alerts.channels.webhook import signed_post
from agent.centre.alerts.settings import AlertsSettings

log = logging.getLogger(__name__)


class Deadman:
    def __init__(self, settings: AlertsSettings, leads: Callable[[], bool] = lambda: True) -> None:
        self.settings = settings
        self._leads = leads
        self.next_at = 0.0
        self.pings = 0
        self._failing = False

    def tick(self, now: float) -> bool:
        """Ping when it is time; True when a ping was taken."""
        if now < self.next_at or not self._leads():
            return False
        self.next_at = now + self.settings.deadman.every_s
        payload = {"event": "deadman", "host": socket.gethostname(), "at": now}
        try:
            signed_post(
                self.settings.webhook, self.settings.deadman.url, payload,
                f"deadman-{int(now)}", "deadman",
            )  # fmt: skip
        except DeliveryError as exc:
            # Said once per outage, not every minute: the watcher outside is the alarm.
            if not self._failing:
                log.warning("dead-man ping not taken: %s", exc)
            self._failing = True
            return False
        if self._failing:
            log.info("dead-man ping taken again")
        self._failing = False
        self.pings += 1
        return True
