"""A centre (`edge-agent centre serve`, a real subprocess, a real mosquitto) killed with -9
while notifications are being delivered to a real HTTP receiver: after the restart every
one is delivered, none lost; duplicates are counted as the receiver sees them (at most the
one in flight when the centre died)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

import pytest

from agent.centre.alerts.model import ChannelKind
from agent.centre.alerts.queue import NotificationQueue
from agent.sim.broker import Mosquitto
from tests.fixtures.broker import ROOT, dump_toml, wait_until
from tests.test_alert_delivery import Receiver, http_receiver, note

pytestmark = pytest.mark.broker

COUNT = 30


def start(config, log) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "centre", "serve", "--config", str(config),
         "--log-level", "info"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("a"), text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    assert "storing" in proc.stdout.readline(), log.read_text()
    return proc


def test_kill_9_while_delivering_loses_no_notification(broker: Mosquitto, tmp_path):
    db = tmp_path / "centre.sqlite"
    receiver = Receiver(delay_s=0.1)
    log = tmp_path / "centre.log"
    with http_receiver(receiver):
        top = {"broker": broker.broker_settings("centre"), "db_path": str(db)}
        # Short timeouts: the claim's lease (what a restart waits for) follows the longest.
        (tmp_path / "centre.toml").write_text(
            dump_toml(top | {"retained_wait_s": 0.0})
            + "\n[alerts.webhook]\ntimeout_s = 1.0\n[alerts.email]\ntimeout_s = 1.0\n"
            "[alerts.telegram]\ntimeout_s = 1.0\n[alerts.delivery]\npoll_s = 0.2\n"
        )
        queue = NotificationQueue(db)
        keys = [f"n{i:03d}" for i in range(COUNT)]
        queue.enqueue([note(k, ChannelKind.WEBHOOK, receiver.url) for k in keys])
        proc = start(tmp_path / "centre.toml", log)
        assert wait_until(lambda: len(receiver.seen) >= COUNT // 3, 20), log.read_text()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert 0 < queue.backlog() < COUNT
        proc = start(tmp_path / "centre.toml", log)
        try:
            assert wait_until(lambda: queue.backlog() == 0, 30), log.read_text()
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
    seen = Counter(receiver.keys())
    duplicates = sum(n - 1 for n in seen.values())
    print(f"delivered {len(seen)}/{COUNT}, duplicates seen by the receiver: {duplicates}")
    assert set(seen) == set(keys)
    assert duplicates <= 1  # only the one in flight at the kill can be sent twice
    assert all(n.status.value == "sent" for n in queue.recent(COUNT))
    queue.close()
