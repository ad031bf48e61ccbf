"""One `centre serve` per (PostgreSQL database, --instance) on any host, for the process's life.

The lock is a session advisory lock on a connection of its own (the leader's kind,
leader.PgLock): the server drops it when the process or its connection dies. That is what
the leader's visits to dead instances' sessions (orphans.py) rely on to know an instance runs
nowhere. But a database restart ends the session while the process runs on: `keep()` starts a
thread that sees it (leader.TICK_S, as the leader checks its own lock) and takes the lock
again on a new connection once the server is back. Should another process hold it by then (a
second serve of this instance started meanwhile), two would share one MQTT client id and kick
each other off the broker: this one says who holds it and stops serving instead.

SQLite needs none of this: its serve lock is a file lock, with no connection to lose.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import zlib
from collections.abc import Callable

from agent.centre.leader import TICK_S, Change, PgLock, State, after, due
from agent.centre.store.base import open_database

log = logging.getLogger(__name__)

# The first key of the session locks that keep one `centre serve` per --instance.
SERVE_LOCK = 0x7365_7276  # "serv"
_PREFIX = "edge-agent serve "


def instance_key(instance: str) -> int:
    return zlib.crc32(instance.encode()) - 2**31  # an int4, as the two-key form takes


class InstanceLock:
    """`take()` once at start; then `keep(on_lost)` while serving; `release()` at the end."""

    def __init__(self, url: str, instance: str, *, clock: Callable[[], float] = time.monotonic):
        self.instance = instance
        self.me = f"{os.getpid()}@{socket.gethostname()}"
        self._lock = PgLock(url, (SERVE_LOCK, instance_key(instance)), (_PREFIX + self.me)[:63])
        self._clock = clock
        self._state = State()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.taken_by = ""  # the holder (pid@host) that made this process stop serving

    def take(self) -> str:
        """One try: "" when this process holds the lock now, else its holder (pid@host).
        Raises StoreError when the database cannot be reached (serve says why and exits)."""
        if self._lock.db is None:
            self._lock.db = open_database(self._lock.url)
        if self._lock.acquire():
            self._state = State(leading=True, next_try=self._clock())
            return ""
        return self._holder()

    def _holder(self) -> str:
        name = self._lock.holder()
        self._lock.release()
        return name.removeprefix(_PREFIX) if name else "?"

    def poll(self) -> bool:
        """One tick: check the lock, or take it again, as due; False once another process
        took it (this one must stop serving)."""
        now = self._clock()
        if not due(self._state, now):
            return True
        held = self._lock.check() if self._state.leading else self._lock.acquire()
        if not held and not self._state.leading and self._lock.db is not None:
            # The server answered and the lock is someone else's.
            self.taken_by = self._holder()
            log.error(
                "centre: another process (%s) took the serve lock of instance %s while the "
                "database connection was lost; this one (%s) stops serving",
                self.taken_by, self.instance or "-", self.me,
            )  # fmt: skip
            return False
        self._state, change = after(self._state, now, held)
        if change is Change.STEPPED_DOWN:
            log.warning("centre: lost the serve lock of instance %s with its database "
                        "connection; taking it again", self.instance or "-")  # fmt: skip
        elif change is Change.LEADS:
            log.info("centre: holds the serve lock of instance %s again", self.instance or "-")
        return True

    def _run(self, on_lost: Callable[[], None]) -> None:
        while not self._stop.wait(TICK_S):
            try:
                if not self.poll():
                    on_lost()
                    return
            except Exception as exc:  # never let the keeper die: next tick
                log.error("centre: keeping the serve lock failed, trying again: %r", exc)

    def keep(self, on_lost: Callable[[], None]) -> InstanceLock:
        self._thread = threading.Thread(
            target=self._run, args=(on_lost,), name="centre-instance-lock", daemon=True
        )
        self._thread.start()
        return self

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(10)
        self._lock.release()


__all__ = ["SERVE_LOCK", "InstanceLock", "instance_key"]
