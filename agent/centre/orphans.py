"""A dead centre process's share of the reports, stored by the leader.

Every `centre serve` keeps a persistent broker session on the shared subscription, so a
restart loses nothing. But mosquitto (EMQX too) counts a disconnected member's persistent
session in the shared subscription's round robin: after a process dies, the broker goes on
queueing its share of the reports in its session (besides those in flight to it when it
died), to wait for it to come back, and lost when the session expires
(`broker.session_expiry_s`).

So the leader visits such a session: every VISIT_EVERY_S it looks for an instance that left
its link row behind (agent/centre/link.py: a clean stop deletes it), not refreshed for
link.STALE_S, and whose serve lock is free (it runs nowhere). It takes that lock, resumes
the session with the instance's client id, stores what was queued (the store drops copies it
already has), acknowledges it, and disconnects, keeping the session and the row (which the
visit refreshed: the next visit is STALE_S later): whatever arrives meanwhile waits for the
next visit, and the instance, when it starts again, finds its session as it left it. Ending
the session instead would stop the queueing, but MQTT 5 only asks (SHOULD) a broker to hand
what is in flight to a session that ends to another member, and mosquitto 2.0 is reported to
drop it.
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

VISIT_EVERY_S = 1.0
QUIET_S = 0.5  # nothing new for this long: the backlog is in
VISIT_MAX_S = 10.0  # a visit ends then even under a steady flow: the rest waits for the next

# (instance) -> the release of its serve lock, now held; None when the instance runs.
TryHold = Callable[[str], Callable[[], None] | None]


def left_behind(db: Database, me: str, now: float) -> list[str]:
    """Instances whose link row is stale: dead without stopping cleanly (a running one
    refreshes its row every link.HEARTBEAT_S). Stale, not only lock-free: a serve lock on
    PostgreSQL is lost with its connection (a database restart) while its process runs on,
    and visiting a running instance's session would take its client id from it."""
    if not db.columns("centre_link"):
        return []
    rows = db.execute(
        "SELECT instance FROM centre_link WHERE updated < ?", (now - link.STALE_S,)
    ).fetchall()
    return sorted(str(r[0]) for r in rows if str(r[0]) != me)


def visit(settings: CentreSettings, instance: str) -> int:
    """Store what `instance`'s broker session holds; the reports stored."""
    from agent.centre.ingest import Ingest  # noqa: PLC0415 - paho only where it is needed

    ingest = Ingest(settings.model_copy(update={"retained_wait_s": 0.0}), instance, lambda: False)
    try:
        ingest.start()
        ingest.until_quiet(lambda: ingest.stored + ingest.rejected, QUIET_S, VISIT_MAX_S)
    finally:
        # The row stays: while the instance is away, the session is visited again.
        ingest.stop(forget=False)
    return ingest.stored


class Adopter:
    """The leader's thread that visits dead instances' sessions."""

    def __init__(
        self,
        settings: CentreSettings,
        instance: str,
        leads: Callable[[], bool],
        try_hold: TryHold,
        steady: Callable[[], bool] = lambda: True,
    ) -> None:
        """`steady`: whether the store has taken this process's writes for link.STALE_S. A
        database away for longer leaves every instance's row stale, running ones included,
        and they need a heartbeat to write theirs again: until then none is taken for dead
        (visiting a running instance's session would take its client id, and its serve lock
        from it while that instance takes it back)."""
        self.settings = settings
        self.instance = instance
        self._leads = leads
        self._try_hold = try_hold
        self._steady = steady
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="centre-orphans", daemon=True)
        self.away: dict[str, int] = {}  # instance -> reports stored for it while it is away
        self._db: Database | None = None

    def once(self) -> None:
        if not self._steady():
            return
        if self._db is None:
            self._db = link.open_link(self.settings.store_location)
        for name in left_behind(self._db, self.instance, time.time()):
            if self._stop.is_set() or not self._leads():
                return
            release = self._try_hold(name)
            if release is None:
                if (kept := self.away.pop(name, None)) is not None:
                    log.info("centre: instance %s runs again (%d report(s) stored for it while "
                             "it was away)", name, kept)  # fmt: skip
                continue
            if name not in self.away:
                log.warning(
                    "centre: instance %s died; storing its share of the reports until it returns",
                    name,
                )
                self.away[name] = 0
            try:
                stored = visit(self.settings, name)
            finally:
                release()
            self.away[name] += stored
            log.debug("centre: stored %d report(s) held for instance %s", stored, name)

    def _run(self) -> None:
        while not self._stop.wait(VISIT_EVERY_S):
            if not self._leads():
                continue
            try:
                self.once()
            except Exception as exc:  # the broker or the store away: next time
                log.error("centre: visiting a dead instance's session failed: %r", exc)
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
        self._thread.join(VISIT_MAX_S + 15)
