"""The daemon's loop as jobs of one shape (the session counter's: `due`, `run`, `next_in`).

Each pass of the loop runs the first due job in a fixed priority order (pre-session check,
routine check, attendance burst, state heartbeat), then the jobs of every pass (the LED), and
sleeps until the nearest `next_in`. One job per pass keeps each pass short and bounded: the
loop's thread is the one that feeds systemd's watchdog (agent.runtime.daemon).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.attendance.session_counter import SessionCounter
from agent.checks.model import Trigger
from agent.contract.payloads import utc_now
from agent.led.status import StatusLed
from agent.schedule.model import Session, Tick

CheckFn = Callable[[Trigger, threading.Event], object]


@dataclass(frozen=True)
class Now:
    """One pass's view of time: the monotonic clock and the schedule's answer (read once a
    pass, at its start)."""

    mono: float
    tick: Tick


class Job(Protocol):
    def due(self, now: Now) -> bool: ...

    def run(self, now: Now, stop: threading.Event) -> None: ...

    def next_in(self, now: Now) -> float | None:
        """Seconds until the job wants the loop awake again; None when it waits for nothing."""
        ...


class Jobs:
    """`jobs` in priority order (at most one runs a pass), `every_pass` after them."""

    def __init__(self, jobs: Sequence[Job], every_pass: Sequence[Job] = ()) -> None:
        self.jobs = list(jobs)
        self.every_pass = list(every_pass)

    def run(self, now: Now, stop: threading.Event) -> None:
        for job in self.jobs:
            if job.due(now):
                job.run(now, stop)
                break
        for job in self.every_pass:
            job.run(now, stop)

    def wait_s(self, now: Now) -> float:
        waits = [w for job in [*self.jobs, *self.every_pass] if (w := job.next_in(now)) is not None]
        return max(0.0, min(waits))


class RoutineCheck:
    """A self-test every `interval_s`, the first (`startup`) at once. While a session runs the
    room is in use: no routine heavy checks then, but for the startup one."""

    def __init__(self, check: CheckFn, interval_s: float) -> None:
        self._check = check
        self.interval_s = interval_s
        self._next_at = time.monotonic()
        self._trigger: Trigger = "startup"

    def due(self, now: Now) -> bool:
        return now.mono >= self._next_at

    def run(self, now: Now, stop: threading.Event) -> None:
        self._next_at = now.mono + self.interval_s
        if not now.tick.quiet or self._trigger == "startup":
            self._check(self._trigger, stop)
        self._trigger = "interval"

    def postpone(self) -> None:
        """Another full check just ran: the next routine one is a full interval away."""
        self._next_at = time.monotonic() + self.interval_s

    def next_in(self, now: Now) -> float:
        return self._next_at - now.mono


class PreSessionCheck:
    """The check before a session: one full check however many lead times fell due together
    (a clock jump); it counts as the routine check."""

    def __init__(self, check: CheckFn, routine: RoutineCheck) -> None:
        self._check = check
        self._routine = routine

    def due(self, now: Now) -> bool:
        return bool(now.tick.due)

    def run(self, now: Now, stop: threading.Event) -> None:
        self._check("pre-session", stop)
        self._routine.postpone()

    def next_in(self, now: Now) -> float:
        return (now.tick.wake_at - utc_now()).total_seconds()


class AttendanceBursts:
    """A counting burst every `attendance.interval_s` while a session runs."""

    def __init__(
        self,
        enabled: bool,
        counter: SessionCounter,
        count: Callable[[Session, threading.Event], object],
    ) -> None:
        self._enabled = enabled
        self._counter = counter
        self._count = count

    def due(self, now: Now) -> bool:
        return self._enabled and bool(now.tick.current) and self._counter.due(now.mono)

    def run(self, now: Now, stop: threading.Event) -> None:
        self._count(now.tick.current[0], stop)

    def next_in(self, now: Now) -> float | None:
        if self._enabled and now.tick.current:
            return self._counter.next_in(now.mono)
        return None


class StateHeartbeat:
    """The state again when none went out for `interval_s`, only while connected: it tells
    the centre the site is alive, which a queued one cannot; every reconnect sends a fresh
    state anyway (the birth)."""

    def __init__(
        self,
        interval_s: float,
        connected: Callable[[], bool],
        last_state_at: Callable[[], float],
        publish: Callable[[], object],
    ) -> None:
        self.interval_s = interval_s
        self._connected = connected
        self._last_state_at = last_state_at
        self._publish = publish

    def due(self, now: Now) -> bool:
        return self._connected() and now.mono - self._last_state_at() >= self.interval_s

    def run(self, now: Now, stop: threading.Event) -> None:
        self._publish()

    def next_in(self, now: Now) -> float | None:
        if not self._connected():
            return None  # the reconnect wakes the loop (its birth sends the state)
        return self._last_state_at() + self.interval_s - now.mono


class LedRefresh:
    """The LED follows the site's state every pass; the loop wakes when identify ends."""

    def __init__(self, led: StatusLed, show: Callable[[], None]) -> None:
        self._led = led
        self._show = show

    def due(self, now: Now) -> bool:
        return True

    def run(self, now: Now, stop: threading.Event) -> None:
        self._show()

    def next_in(self, now: Now) -> float | None:
        return self._led.next_change_in()
