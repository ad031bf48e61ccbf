"""The daemon speaks systemd's notify protocol: READY once connected and running, WATCHDOG
pings from its main loop while it is alive, STOPPING on SIGTERM; a stopped (hung) loop stops
pinging, which is what makes systemd restart it."""

import itertools
import os
import signal
import socket
import subprocess
import sys
import time

from tests.fixtures.broker import agent_config, dump_toml


def receive_all(sock, seconds, until=None):
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            got.append((time.monotonic(), sock.recv(64).decode()))
        except TimeoutError:
            break
        if until is not None and got[-1][1] == until:
            break
    return got


def test_ready_watchdog_and_stopping(broker, tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text(dump_toml(agent_config(broker, tmp_path / "state", check_interval_s=60)))
    notify = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        env = {**os.environ, "NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "2000000"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(config), "run"],
            env=env,
            stderr=subprocess.DEVNULL,
        )
        try:
            messages = receive_all(sock, 3.5)
            states = [m for _, m in messages]
            assert states[0] == "READY=1"
            pings = [t for t, m in messages if m == "WATCHDOG=1"]
            assert len(pings) >= 2  # every ~1 s (half of WatchdogSec=2 s)
            # never a gap systemd would act on (WatchdogSec=2 s); they come every ~1 s, and a
            # loaded CI machine has stretched one to 1.58 s
            assert max(b - a for a, b in itertools.pairwise(pings)) < 2.0

            # A hung main loop (here: the whole process frozen) sends nothing more.
            proc.send_signal(signal.SIGSTOP)
            assert receive_all(sock, 1.6) == []
            proc.send_signal(signal.SIGCONT)

            proc.terminate()
            after = [m for _, m in receive_all(sock, 5, until="STOPPING=1")]
            assert "STOPPING=1" in after
            assert proc.wait(10) == 0
        finally:
            proc.kill()
