"""A dead centre process's share of the reports, taken over by the leader.

Every `centre serve` keeps a persistent broker session on the shared subscription, so a
restart loses nothing. But mosquitto (EMQX too) counts a disconnected member's persistent
session in the shared subscription's round robin: after a process is killed, the broker
keeps queueing its share of the reports in its session (besides the ones in flight to it when
it died) until it comes back, or lost when the session expires.

So the leader looks every ADOPT_EVERY_S for an orphan: an instance that left its link row
(agent/centre/link.py: a process that stopped cleanly deletes it) and whose serve lock is free
(it runs nowhere). It takes that lock (a restart of the instance waits meanwhile), resumes the
session with the instance's client id, stores what was queued there (the store drops the
copies it already has), and ends the session at the disconnect: the broker stops queueing for
it. When the instance starts again it makes a fresh session.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from agent.centre import link
from agent.centre.settings import CentreSettings
from agent.centre.store.base import Database

log = logging.getLogger(__name__)

ADOPT_EVERY_S = 1.0
QUIET_S = 1.0  # nothing new for this long: the session is empty
DRAIN_MAX_S = 120.0

# (instance) -> a held lock to release with the returned callable, or None when the instance
# runs somewhere.
TryHold = Callable[[str], Callable[[], None] | None]


def left_behind(db: Database, me: str) -> list[str]:
    """Instances with a link row: running, or dead without stopping cleanly."""
    if not db.columns("centre_link"):
        return []
    rows = db.execute("SELECT instance FROM centre_link").fetchall()
    return sorted(str(r[0]) for r in rows if str(r[0]) != me)


def drain(settings: CentreSettings, instance: str) -> int:
    """Empty `instance`'s broker session into the store and end it; the reports stored."""
    from agent.centre.ingest import Ingest  # noqa: PLC0415 - it imports link, as this does

    ingest = Ingest(settings, instance, lambda: False)
    ingest.ends_session = True
    ingest.start()
    try:
        seen, quiet_since, end = -1, time.monotonic(), time.monotonic() + DRAIN_MAX_S
        while time.monotonic() < end:
            time.sleep(0.2)
            done = ingest.stored + ingest.rejected
            if done != seen:
                seen, quiet_since = done, time.monotonic()
            elif time.monotonic() - quiet_since >= QUIET_S and ingest._queue.empty():
                break
    finally:
        ingest.stop()  # also forgets the instance's link row
    return ingest.stored


class Adopter:
    """The leader's thread that takes dead instances' sessions over."""

    def __init__(
        self,
        settings: CentreSettings,
        instance: str,
        leads: Callable[[], bool],
        try_hold: TryHold,
    ) -> None:
        self.settings = settings
        self.instance = instance
        self._leads = leads
        self._try_hold = try_hold
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="centre-orphans", daemon=True)
        self.adopted: list[tuple[str, int]] = []
        self._db: Database | None = None

    def once(self) -> None:
        if self._db is None:
            self._db = link.open_link(self.settings.store_location)
        for name in left_behind(self._db, self.instance):
            if self._stop.is_set() or not self._leads():
                return
            release = self._try_hold(name)
            if release is None:
                continue  # it runs
            try:
                log.warning("centre: instance %s died; storing what the broker kept for it", name)
                stored = drain(self.settings, name)
                self.adopted.append((name, stored))
                log.info("centre: instance %s's broker session emptied: %d report(s)", name, stored)
            finally:
                release()

    def _run(self) -> None:
        while not self._stop.wait(ADOPT_EVERY_S):
            if not self._leads():
                continue
            try:
                self.once()
            except Exception as exc:  # the broker or the store away: next time
                log.error("centre: taking over a dead instance's session failed: %r", exc)
                if self._db is not None:
                    self._db.close()
                    self._db = None
        if self._db is not None:
            self._db.close()

    def start(self) -> Adopter:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(DRAIN_MAX_S + 15)
