"""bench/soak.py as a gate: a short soak with every kind of fault loses no report and runs no
command twice; and its accounting really flags a gap, a reused seq and a double execution."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.transport.listener import Received
from tests.bench_kit import load_bench

ROOT = Path(__file__).resolve().parent.parent
SOAK = ROOT / "bench" / "soak.py"


def report(seq: int, topic: str = "checks", historical: bool = False, **extra) -> Received:
    body = {"schema": f"edge-agent/{topic}/1", "site_id": "s", "seq": seq, "boot": 1,
            "ts": "2026-11-24T00:00:00Z", "historical": historical, **extra}  # fmt: skip
    return Received(f"vc/s/{topic}", json.dumps(body).encode(), False)


def test_accounting_flags_gaps_conflicts_and_forgives_resends_and_queued():
    soak = load_bench("soak")
    messages = [
        report(1),
        report(2, verdict="ready"),
        report(2, historical=True, verdict="ready"),  # an at-least-once resend: same report
        report(4, verdict="ready"),
        report(4, verdict="fault"),  # another report under a used number
        Received("vc/s/meta", json.dumps({"seq": 4}).encode(), True),  # not queued: ignored
    ]
    result = soak.account_reports(messages, last_seq=6, in_outbox={6}, dropped_checks=0)
    assert result["gaps"] == [3, 5]
    assert result["lost"] == 2
    assert result["duplicates"] == 2
    assert result["duplicates_after_dedup"] == 1
    assert result["conflicting_seqs"] == [4]
    assert result["in_outbox"] == 1

    clean = soak.account_reports(messages[:3], last_seq=3, in_outbox={3}, dropped_checks=0)
    assert clean["lost"] == 0
    assert clean["duplicates_after_dedup"] == 0


def test_command_accounting_counts_executions_from_the_audit_log():
    soak = load_bench("soak")
    sent = [
        soak.CommandSent("c-1", "run-checks", b"x", 1.0),
        soak.CommandSent("c-1", "run-checks", b"x", 2.0, duplicate=True),
        soak.CommandSent("c-2", "identify", b"y", 3.0),
    ]
    replies = [
        Received("vc/s/cmd/reply", json.dumps(
            {"seq": n, "command_id": cid, "status": st}).encode(), False)
        for n, (cid, st) in enumerate(
            [("c-1", "accepted"), ("c-1", "succeeded"), ("c-1", "rejected"), ("c-2", "accepted")],
            start=1)
    ]  # fmt: skip
    audit = [
        {"event": "accepted", "command_id": "c-1"},
        {"event": "rejected", "command_id": "c-1", "reason": "replay"},
        {"event": "accepted", "command_id": "c-2"},
        {"event": "accepted", "command_id": "c-2"},
    ]
    result = soak.account_commands(sent, replies, audit)
    assert result["sent"] == 2
    assert result["duplicates_sent"] == 1
    assert result["answered"] == 1
    assert [u["id"] for u in result["unanswered"]] == ["c-2"]
    assert result["run_twice"] == ["c-2"]
    assert result["rejected_by_reason"] == {"replay": 1}


def test_schedule_is_seeded_and_every_lane_fires_even_in_a_short_run():
    soak = load_bench("soak")
    a = soak.plan(30.0, random.Random(7))
    assert a == soak.plan(30.0, random.Random(7))
    kinds = {e.kind.split("-")[0] for e in a}
    assert {"broker", "agent", "serial", "camera", "audio", "command"} <= kinds
    assert any(e.kind == "command-duplicate" for e in a)
    assert all(0 <= e.at < 30.0 + 3.0 for e in a)
    kills = [e.at for e in soak.plan(600.0, random.Random(7)) if e.kind == "agent-kill"]
    assert kills and max(kills) <= 300.0  # leaves one long process life for the leak check


@pytest.mark.broker
@pytest.mark.audio
def test_short_soak_with_every_fault_loses_nothing_and_runs_no_command_twice():
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(SOAK), "--minutes", "0.5", "--seed", "3", "--json",
         "--drain-timeout", "20"],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    took = time.monotonic() - start
    assert proc.stdout, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert proc.returncode == 0, (result.get("reports"), result.get("commands"))

    faults = result["faults"]
    for kind in ("broker-kill", "agent-kill", "camera-restart", "audio-restart", "command",
                 "command-duplicate"):  # fmt: skip
        assert faults.get(kind, 0) > 0, faults
    assert sum(n for k, n in faults.items() if k.startswith("serial-")) > 0, faults

    reports = result["reports"]
    assert reports["sent"] > 10
    assert reports["lost"] == 0, reports["gaps"]
    assert reports["duplicates_after_dedup"] == 0
    assert reports["received"] + reports["in_outbox"] == reports["sent"]

    commands = result["commands"]
    assert commands["run_twice"] == []
    assert commands["answered"] == commands["sent"] > 0, commands["unanswered"]
    assert commands["rejected_by_reason"].get("replay", 0) >= 1  # duplicates were refused

    assert set(result["integrity"]) == {"ok"}
    assert result["checks"]["n"] > 0
    assert result["checks"]["last"]["verdict"] == "ready"  # recovered from every fault
    assert result["rss"]["lives"] == 2  # the kill -9 made a second process
    assert took < 60, f"soak smoke took {took:.0f} s"
