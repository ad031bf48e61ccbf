"""The delivery worker: takes due notifications from the queue, sends each through its
channel, records sent / retry (exponential backoff with jitter, or the wait the receiver
asked for) / failed (given up: a permanent refusal, or `max_attempts` tries).

One thread with its own queue connection. A notification that breaks anything (a channel's
bug, a damaged row) is retried like a network fault: it never stops the loop. The dead-man
ping (deadman.py) runs in the same loop, so a stuck worker also stops the centre's heartbeat.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from agent.centre.alerts.channels import DeliveryError, GiveUp, RetryLater
from agent.centre.alerts.channels.email import EmailChannel
from agent.centre.alerts.channels.telegram import TelegramChannel
from agent.centre.alerts.channels.webhook import WebhookChannel
from agent.centre.alerts.deadman import Deadman
from agent.centre.alerts.model import ChannelKind, Notification
from agent.centre.alerts.queue import NotificationQueue
from agent.centre.alerts.render import Rendered, render_notification
from agent.centre.alerts.settings import AlertsSettings, DeliverySettings
from agent.centre.store.base import Outage

log = logging.getLogger(__name__)


class Sender(Protocol):
    def send(self, n: Notification, rendered: Rendered) -> None: ...


class Channels:
    """The channel of each kind, from the settings."""

    def __init__(self, settings: AlertsSettings) -> None:
        self.by_kind: dict[ChannelKind, Sender] = {
            ChannelKind.WEBHOOK: WebhookChannel(settings.webhook),
            ChannelKind.EMAIL: EmailChannel(settings.email),
            ChannelKind.TELEGRAM: TelegramChannel(settings.telegram),
        }

    def send(self, n: Notification, contact_name: str = "") -> None:
        self.by_kind[n.channel.kind].send(n, render_notification(n, contact_name=contact_name))

    def lease_s(self, settings: AlertsSettings) -> float:
        """How long a claimed notification is left to its sender before another may take it:
        the longest send, twice, and a margin."""
        longest = max(
            settings.webhook.timeout_s, settings.email.timeout_s, settings.telegram.timeout_s
        )
        return 2 * longest + 5.0


def backoff_s(
    attempts: int, s: DeliverySettings, rnd: Callable[[], float] = random.random
) -> float:
    """The wait after the `attempts`-th failed try: doubling from backoff_min_s up to
    backoff_max_s, the upper half jittered so retries of one outage spread out."""
    ceiling = min(s.backoff_max_s, s.backoff_min_s * 2.0 ** max(0, attempts - 1))
    return ceiling / 2 + rnd() * ceiling / 2


class Delivery:
    def __init__(
        self,
        settings: AlertsSettings,
        db_path: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        rnd: Callable[[], float] = random.random,
        leads: Callable[[], bool] = lambda: True,
    ) -> None:
        self.settings = settings
        self.db_path = db_path
        self.channels = Channels(settings)
        self.deadman = Deadman(settings, leads) if settings.deadman.url else None
        self._clock = clock
        self._rnd = rnd
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed = 0
        self.retried = 0

    def deliver(self, queue: NotificationQueue, n: Notification) -> None:
        """One attempt at `n`, its outcome recorded and logged (one line)."""
        assert n.id is not None  # rows from the queue have ids
        attempt = n.attempts + 1
        try:
            self.channels.send(n)
        except GiveUp as exc:
            self._failed(queue, n, str(exc))
            return
        except RetryLater as exc:
            self._retry(queue, n, attempt, str(exc), exc.retry_after)
            return
        except Exception as exc:  # one bad notification never stops the loop
            self._retry(queue, n, attempt, f"unexpected: {exc!r}", None)
            return
        now = self._clock()
        queue.sent(n.id, now)
        self.sent += 1
        log.info(
            "notification %s sent: %s to %s by %s, attempt %d, %.1f s after queued",
            n.key, n.event.value, n.contact_id, n.channel.kind.value, attempt, now - n.created_at,
        )  # fmt: skip

    def _retry(
        self, queue: NotificationQueue, n: Notification, attempt: int, error: str,
        retry_after: float | None,
    ) -> None:  # fmt: skip
        assert n.id is not None
        if attempt >= self.settings.delivery.max_attempts:
            self._failed(queue, n, f"{error} (after {attempt} attempts)")
            return
        wait = backoff_s(attempt, self.settings.delivery, self._rnd)
        if retry_after is not None:
            wait = max(retry_after, 0.0)
        queue.retry(n.id, error, self._clock() + wait)
        self.retried += 1
        log.warning(
            "notification %s to %s by %s: attempt %d failed, retry in %.1f s: %s",
            n.key, n.contact_id, n.channel.kind.value, attempt, wait, error,
        )  # fmt: skip

    def _failed(self, queue: NotificationQueue, n: Notification, error: str) -> None:
        assert n.id is not None
        queue.failed(n.id, error, self._clock())
        self.failed += 1
        log.error(
            "notification %s to %s by %s given up: %s",
            n.key, n.contact_id, n.channel.kind.value, error,
        )  # fmt: skip

    def run_once(self, queue: NotificationQueue) -> int:
        """Send what is due now; how many were tried."""
        now = self._clock()
        if self.deadman is not None:
            self.deadman.tick(now)
        batch = queue.due(now, limit=50, lease_s=self.channels.lease_s(self.settings))
        for n in batch:
            if self._stop.is_set():
                break  # the rest stay claimed: their lease runs out and the next start takes them
            self.deliver(queue, n)
        return len(batch)

    def _run(self) -> None:
        queue: NotificationQueue | None = None
        outage = Outage(log)  # once per outage in the journal, not at every poll
        try:
            while not self._stop.is_set():
                try:
                    # Opened here, not before the loop: a database away when the centre
                    # starts must delay the notifications, not end the thread.
                    queue = queue or NotificationQueue(self.db_path)
                    busy = self.run_once(queue)
                    outage.ended("the notification queue is readable again after %.0f s")
                except Exception as exc:  # a locked, damaged or absent database: go on
                    outage.failed("notification queue not readable, trying again: %r", exc)
                    busy = 0
                if not busy:
                    self._wake.wait(self.settings.delivery.poll_s)
                    self._wake.clear()
        finally:
            if queue is not None:
                queue.close()

    def start(self) -> Delivery:
        self._thread = threading.Thread(target=self._run, name="alerts-delivery", daemon=True)
        self._thread.start()
        return self

    def wake(self) -> None:
        """Something was queued in this process: look now, not at the next poll (the other
        centre processes sharing the database find it at theirs)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)


__all__ = ["Channels", "Delivery", "DeliveryError", "backoff_s"]
