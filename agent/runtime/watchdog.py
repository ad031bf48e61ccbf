"""systemd's watchdog as the daemon feeds it: only the loop's own thread pings, also while it
waits (boundedly) for a worker, and never once the broker link's thread is dead."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from agent.attendance.worker import deadline_s as attendance_deadline_s
from agent.components import COMPONENTS
from agent.config import Settings
from agent.selftest.worker import deadline_s as selftest_deadline_s
from agent.system.sdnotify import Notifier

log = logging.getLogger(__name__)
_T = TypeVar("_T")

# A self-test or attendance worker kills its child at its own deadline. Waiting on one this
# much longer than that means the wait itself is stuck: the watchdog pings stop, so systemd
# restarts the agent. (With the default settings the limit is 70 s: the counting child's
# 37 s deadline plus this.)
_WORKER_GRACE_S = 33.0


class LoopWatchdog:
    def __init__(self, notifier: Notifier, link_alive: Callable[[], bool], limit_s: float) -> None:
        self.notifier = notifier
        self.worker_limit_s = limit_s
        self._link_alive = link_alive
        self._last_ping = 0.0
        self._link_dead_logged = False
        self._loop_thread: int | None = None

    def bind(self) -> None:
        """The calling thread is the loop: from now on only it pings."""
        self._loop_thread = threading.get_ident()

    def alive(self) -> None:
        """Ping systemd's watchdog, at most once a second. Only the loop's own thread pings
        (also while it waits, boundedly, for a worker): a command running a check on another
        thread must not keep a hung loop looking alive."""
        if threading.get_ident() != self._loop_thread:
            return
        if not self._link_alive():
            # Not merely a broker out of reach: the thread that would reconnect is gone, so
            # the agent is deaf and mute for good. Starve the watchdog; systemd restarts us.
            if not self._link_dead_logged:
                log.critical("the broker link thread has died: watchdog pings stop")
                self._link_dead_logged = True
            return
        now = time.monotonic()
        if now - self._last_ping >= 1.0:
            self._last_ping = now
            self.notifier.watchdog()

    def acquire(self, lock: threading.Lock, stop: threading.Event | None) -> bool:
        """Take `lock`, pinging the watchdog (from the loop) while another thread's bounded
        check holds it; False if `stop` was set first."""
        limit = time.monotonic() + self.worker_limit_s
        while not lock.acquire(timeout=0.05):
            if stop is not None and stop.is_set():
                return False
            if time.monotonic() < limit:
                self.alive()
        return True

    def in_worker(
        self, name: str, job: Callable[[], _T], stop: threading.Event | None
    ) -> _T | None:
        """Run `job` in a thread while this loop keeps pinging the watchdog (for at most
        `worker_limit_s`); None if it crashed (logged) or `stop` was set first."""
        box: list[_T] = []
        worker = threading.Thread(target=lambda: box.append(job()), name=name, daemon=True)
        worker.start()
        limit = time.monotonic() + self.worker_limit_s
        while worker.is_alive():
            if stop is not None and stop.wait(0.05):
                return None
            worker.join(0.05)
            if time.monotonic() < limit:
                self.alive()
            elif limit > 0:
                log.error(
                    "%s still running after %.0f s: watchdog pings stop", name, self.worker_limit_s
                )
                limit = 0.0
        if not box:
            log.error("%s crashed; see the log above", name)
            return None
        return box[0]


def worker_limit_s(settings: Settings) -> float:
    """Longest a worker may legitimately run: the later of its children's own deadlines (a
    check may ask for any component, enabled or not), plus the grace."""
    children = max(selftest_deadline_s(settings, COMPONENTS), attendance_deadline_s(settings))
    return children + _WORKER_GRACE_S
