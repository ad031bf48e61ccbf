"""The agent killed with -9 at random moments, 50 times, one process restarted in place.

Moments: during start-up (outbox open, connection counter, first self-test), while it checks
every 0.1 s, while it drains a backlog made with the broker stopped (10 reports/s, 4 in
flight), and a few milliseconds after a
signed `reboot-host` command was published (verify, durable id record, audit, reply, run).
After every kill: both SQLite files pass `PRAGMA integrity_check`, and the centre saw the will
(`offline`, `connection lost (will)`) of the connection that died. At the end: every seq the
outbox handed out reached the centre or is still queued (seqs contiguous, lost = 0), and no
command ran twice (each run of the action appends a line to a file, see faultkit).

Commands are sent one at a time: the next only once the current one is settled (a final reply
reached the centre, or the agent's command store holds its id, so any later copy is a
replay). Until then it is sent again after each restart, on top of the broker redelivering
it, and settled ones are replayed at random: all must be refused as replays.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.commands.store import AUDIT_NAME, AuditLog
from agent.transport.listener import Received
from agent.transport.outbox import FILENAME as OUTBOX_NAME
from tests.commands_kit import signed
from tests.faults.faultkit import (
    command_agent_config,
    integrity_all,
    lost,
    outbox_view,
    queued_seqs,
    replies,
    say,
    seeded,
    seen_status,
    shim_runs,
    systemctl_shim,
)
from tests.fixtures.broker import AgentProcess, wait_until

pytestmark = pytest.mark.broker

KILLS = 50
TERMINAL = {"succeeded", "failed", "rejected"}


@dataclass
class Sent:
    command_id: str
    raw: bytes
    first_sent: float = 0.0  # wall clock, comparable with the run file's stamps
    sends: int = 0
    settled: str = ""


def _pending(state: Path) -> int:
    """Reports queued in the outbox; 0 before a just-started agent has made it."""
    if not (state / OUTBOX_NAME).exists():
        return 0
    try:
        return len(outbox_view(state).pending)
    except sqlite3.OperationalError:  # created, tables not yet committed
        return 0


def _availability(messages: list[Received]) -> list[dict]:
    return [m.json() for m in messages if m.topic.endswith("/availability")]


def test_agent_killed_9_at_random_moments_50_times(broker, centre, tmp_path, monkeypatch):
    name = "agent-kills"
    rng, _seed = seeded(name)
    key = Ed25519PrivateKey.generate()
    runs_file = tmp_path / "runs.txt"
    shim = systemctl_shim(tmp_path / "bin", runs_file)
    monkeypatch.setenv("PATH", f"{shim}:{os.environ['PATH']}")
    live = centre(broker, ("vc/s1/#",))
    state = tmp_path / "state"
    config = command_agent_config(
        broker, state, key, check_interval_s=0.1, drain_rate_per_s=10, max_inflight=4
    )
    agent = AgentProcess(config, tmp_path)

    sent: list[Sent] = []
    current: Sent | None = None
    modes: Counter[str] = Counter()
    damaged: list[str] = []
    wills = {"expected": 0, "seen": 0}
    replays = 0
    pending_at_kill: list[int] = []
    mid_command = 0  # kills that left the current command accepted but not finished
    began = time.monotonic()

    def online_after(boot: int) -> int | None:
        boots = [
            a["boot"]
            for a in _availability(live.messages())
            if a["status"] == "online" and a["boot"] > boot
        ]
        return max(boots) if boots else None

    def publish(command: Sent) -> None:
        if not command.sends:
            command.first_sent = time.time()
        command.sends += 1
        live.publish("vc/s1/cmd", command.raw)

    try:
        for cycle in range(KILLS):
            mode = rng.choices(["start-up", "reporting", "drain", "command"], [2, 2, 2, 4])[0]
            modes[mode] += 1
            if mode == "drain":
                broker.stop()  # a backlog to drain: reports made while the broker is away
            # A start-up life killed before the test looked may have come online: wait for a
            # boot past every one seen, not just past the last one the test noted.
            seen_before = online_after(0) or 0
            agent.start()
            connected: int | None = None
            if mode == "start-up":
                time.sleep(rng.uniform(0.0, 0.7))
            else:
                if mode == "drain":
                    assert wait_until(lambda: _pending(state) >= 6, 15), agent.log()[-3000:]
                    broker.start()
                assert live.wait_for(lambda _ms, b=seen_before: online_after(b) is not None, 15), (
                    cycle,
                    agent.log()[-3000:],
                )
                connected = online_after(seen_before)
                if mode == "command":
                    if current is None:
                        k = len(sent) + 1
                        current = Sent(
                            f"kill-cmd-{k:04d}",
                            signed(key, command_id=f"kill-cmd-{k:04d}", nonce=f"{k:032x}"),
                        )
                        sent.append(current)
                    publish(current)
                    settled = [c for c in sent if c.settled]
                    if settled and rng.random() < 0.5:
                        live.publish("vc/s1/cmd", rng.choice(settled).raw)
                        replays += 1
                    time.sleep(rng.uniform(0.0, 0.12))
                elif mode == "drain":
                    time.sleep(rng.uniform(0.0, 0.4))  # draining at 10 reports/s
                else:
                    time.sleep(rng.uniform(0.0, 0.8))
            agent.kill()
            if connected is not None:
                wills["expected"] += 1

                def will(ms: list[Received], boot: int = connected) -> bool:
                    return any(
                        a["status"] == "offline"
                        and a["boot"] == boot
                        and a["reason"] == "connection lost (will)"
                        for a in _availability(ms)
                    )

                if live.wait_for(will, 3):
                    wills["seen"] += 1
            checked = integrity_all(state)
            damaged += [f"kill {cycle}: {f} {r}" for f, r in checked.items() if r != "ok"]
            if (state / "outbox.sqlite").exists():
                pending_at_kill.append(len(outbox_view(state).pending))
            if current is not None:
                status = seen_status(state, current.command_id)
                final = [s for s in replies(live.messages(), current.command_id) if s in TERMINAL]
                if status == "accepted" and not final:
                    mid_command += 1
                if status is not None or final:
                    current.settled = status or final[0]
                    current = None

        # A last life, left running: settle the last command, drain, stop cleanly. It must be
        # this life that is online (a start-up life's `online` would pass at once, and the
        # SIGTERM below would then reach a process still starting, before its handler).
        seen_before = online_after(0) or 0
        agent.start()
        assert live.wait_for(lambda _ms: online_after(seen_before) is not None, 15), agent.log()
        if current is not None:
            publish(current)
            command_id = current.command_id
            assert live.wait_for(lambda ms: bool(TERMINAL & set(replies(ms, command_id))), 10), (
                agent.log()[-3000:]
            )
            current.settled = "final life"
        target = outbox_view(state).last_seq
        assert live.wait_for(lambda ms: set(range(1, target + 1)) <= set(queued_seqs(ms)), 20), (
            agent.log()[-3000:]
        )
        assert agent.terminate() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()

    view = outbox_view(state)
    wait_until(lambda: not lost(view, queued_seqs(live.messages())), 5)
    received = queued_seqs(live.messages())
    missing = lost(view, received)
    damaged += [f"end: {f} {r}" for f, r in integrity_all(state).items() if r != "ok"]

    audit = AuditLog(state / AUDIT_NAME).read()
    accepted = Counter(e["command_id"] for e in audit if e["event"] == "accepted")
    outcomes = Counter(e["command_id"] for e in audit if e["event"] in ("succeeded", "failed"))
    replay_refusals = sum(1 for e in audit if e["event"] == "rejected" and e["reason"] == "replay")
    runs = shim_runs(runs_file)
    # Each run belongs to the command being settled when it happened (one at a time).
    per_command: Counter[str] = Counter()
    for _pid, at in runs:
        owner = [c for c in sent if c.sends and c.first_sent <= at]
        per_command[owner[-1].command_id if owner else "before any command"] += 1
    twice = {c: n for c, n in per_command.items() if n > 1}
    accepted_twice = {c: n for c, n in accepted.items() if n > 1}
    figures = (
        f"injected: {KILLS} kill -9 ({dict(modes)}), {len(sent)} commands sent "
        f"{sum(c.sends for c in sent)} times, {replays} replays of settled ones; "
        f"reports queued at the kills: max {max(pending_at_kill, default=0)}, "
        f"mean {sum(pending_at_kill) / max(1, len(pending_at_kill)):.1f}; "
        f"{mid_command} kills between a command's acceptance and its outcome",
        f"observed: integrity_check not ok: {damaged or 0} (2 files x {KILLS + 1} checks); "
        f"wills {wills['seen']}/{wills['expected']}",
        f"observed: {view.last_seq} reports made, {len(set(received))} received, "
        f"{len(view.pending)} still queued, lost {len(missing)} {missing[:10]}, "
        f"{len(received) - len(set(received))} duplicate copies, dropped {view.dropped}",
        f"observed: commands accepted {len(accepted)}, outcomes {sum(outcomes.values())}, "
        f"action runs {len(runs)}; run twice {twice or 0}; accepted twice "
        f"{accepted_twice or 0}; replays refused {replay_refusals}",
        f"took {time.monotonic() - began:.1f} s",
    )
    say(name, *figures)
    assert not damaged, figures
    assert not missing, figures
    assert view.dropped == 0, figures
    assert not twice and not accepted_twice, figures
    assert len(runs) <= len(accepted), figures
    assert len(runs) >= sum(1 for e in audit if e["event"] == "succeeded"), figures
    assert wills["seen"] == wills["expected"], figures
    assert len(sent) >= 10, figures
