"""The systemd watchdog must follow the reporting loop's progress: WATCHDOG=1 datagrams on a
real unix socket (NOTIFY_SOCKET), the daemon on a thread of the test, its loop hung on purpose.

- A self-test worker that never returns: the loop waits for it pinging (a check may take
  longer than WatchdogSec), but only for as long as a worker can legitimately run
  (`Agent.worker_limit_s`, cut short here); then the pings stop, and systemd would restart.
- The loop stuck on a dead disk (the outbox's lock held, as a write that never returns holds
  it) while a command runs a self-test on its own thread: that thread must not ping for the
  loop. Once the disk answers, the pings resume.
"""

from __future__ import annotations

import itertools
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.checks.model import CheckRun
from agent.config import Settings
from agent.runtime.daemon import Agent
from agent.selftest.suite import run_selftest
from tests.faults.faultkit import say
from tests.fixtures.broker import agent_config, wait_until

pytestmark = pytest.mark.broker


class Pings:
    """The NOTIFY_SOCKET end: every datagram with its arrival time, gathered on a thread."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.got: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.got.append((time.monotonic(), self.sock.recv(64).decode()))
            except TimeoutError:
                continue

    def watchdog(self, start: float = 0.0, end: float = float("inf")) -> list[float]:
        return [t for t, m in list(self.got) if m == "WATCHDOG=1" and start <= t < end]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


@pytest.fixture
def pings(tmp_path, monkeypatch) -> Iterator[Pings]:
    path = tmp_path / "notify"
    receiver = Pings(path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # WatchdogSec=2: a ping every second
    yield receiver
    receiver.close()


class Hung:
    """A self-test that does the real (in-process) probes, or blocks until released."""

    def __init__(self, pause_s: float = 0.0) -> None:
        self.hang = threading.Event()
        self.release = threading.Event()
        self.entered: float | None = None
        self.pause_s = pause_s

    def __call__(self, settings: Settings) -> CheckRun:
        if self.hang.is_set():
            self.entered = time.monotonic()
            self.release.wait()
        time.sleep(self.pause_s)
        return run_selftest(settings)


def _run(agent: Agent) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    return stop, thread


def test_hung_worker_stops_the_pings_after_its_limit(broker, pings, tmp_path):
    name = "watchdog-worker"
    settings = Settings.model_validate(
        agent_config(broker, tmp_path / "state", check_interval_s=0.5)
    )
    selftest = Hung()
    agent = Agent(settings, selftest=selftest)
    agent.worker_limit_s = 1.5
    stop, thread = _run(agent)
    try:
        t0 = time.monotonic()
        assert wait_until(lambda: len(pings.watchdog()) >= 3, 10), pings.got
        healthy = pings.watchdog(t0)
        selftest.hang.set()
        assert wait_until(lambda: selftest.entered is not None, 5)
        hung_at = selftest.entered
        assert hung_at is not None
        time.sleep(agent.worker_limit_s + 3.0)  # the limit, then 3 s of a hung loop
        released_at = time.monotonic()
        during = pings.watchdog(hung_at)
        late = pings.watchdog(hung_at + agent.worker_limit_s + 1.05)
        selftest.hang.clear()
        selftest.release.set()
        assert wait_until(lambda: bool(pings.watchdog(released_at)), 5), pings.got
        resumed = pings.watchdog(released_at)[0] - released_at
    finally:
        stop.set()
        selftest.release.set()
        thread.join(10)
    gaps = [round(b - a, 2) for a, b in itertools.pairwise(healthy)]
    figures = (
        f"injected: the self-test worker blocks; worker limit {agent.worker_limit_s} s, "
        "WatchdogSec 2 s",
        f"observed: healthy ping gaps {gaps} s; pings while the worker hung: "
        f"{[round(t - hung_at, 2) for t in during]} s after it hung (none allowed after "
        f"{agent.worker_limit_s + 1.05:.2f} s: {len(late)}); first ping {resumed:.2f} s after "
        "the release",
    )
    say(name, *figures)
    assert gaps and max(gaps) < 2.0, figures  # WatchdogSec
    assert not late, figures
    assert resumed < 2.0, figures


def test_a_commands_check_does_not_ping_for_a_hung_loop(broker, pings, tmp_path):
    name = "watchdog-thread"
    settings = Settings.model_validate(
        agent_config(broker, tmp_path / "state", check_interval_s=3600.0, state_heartbeat_s=0.2)
    )
    selftest = Hung(pause_s=0.0)
    agent = Agent(settings, selftest=selftest)
    stop, thread = _run(agent)
    command: threading.Thread | None = None
    try:
        assert wait_until(lambda: len(pings.watchdog()) >= 2, 10), pings.got
        selftest.pause_s = 2.5  # the command's check takes a while
        # A write that never returns on a dead disk holds the outbox's lock: the loop's next
        # heartbeat blocks on it.
        with agent.outbox._lock:
            held = time.monotonic()
            # Once the loop is stuck its pings stop; then a command runs a check on its own
            # thread (as agent.commands does), and must not ping in the loop's place.
            time.sleep(1.2)
            command = threading.Thread(
                target=agent.check_now, args=("command", None, ()), daemon=True
            )
            command.start()
            time.sleep(3.0)
            released = time.monotonic()
            during = pings.watchdog(held + 1.2, released)
        assert wait_until(lambda: bool(pings.watchdog(released)), 5), pings.got
        resumed = pings.watchdog(released)[0] - released
        command.join(10)
    finally:
        stop.set()
        thread.join(10)
    figures = (
        "injected: the outbox lock held 4.2 s (a stuck disk write; the loop blocks at its "
        "next heartbeat); 1.2 s in, a command's check runs 2.5 s on another thread",
        f"observed: pings while the loop was stuck (from 1.2 s on): {len(during)}; first ping "
        f"{resumed:.2f} s after the disk answered",
    )
    say(name, *figures)
    assert not during, figures
    assert resumed < 2.0, figures
