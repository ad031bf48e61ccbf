"""Wall-clock jumps of hours, forward and back (a dead RTC battery, a bad NTP answer, a
technician setting the time by hand).

The daemon's loops run on time.monotonic; the schedule and command expiry run on wall time.
First the pure logic, fed with a seeded random walk of wall-clock values (and restarts from
the run record on disk); then the real agent process under libfaketime
(FAKETIME_TIMESTAMP_FILE + FAKETIME_NO_CACHE=1, monotonic left alone), its clock moved while
it runs: each pre-session check runs once, and command expiry and replay refusal hold.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.commands.actions import ActionContext
from agent.commands.service import CommandService
from agent.config import Settings
from agent.contract.envelope import Command, Rejection, public_key_b64
from agent.schedule.model import PlannedRun
from agent.schedule.presession import PreSession
from agent.transport.listener import Received
from agent.transport.outbox import Outbox
from tests.commands_kit import signed
from tests.faults.faultkit import (
    command_agent_config,
    replies,
    say,
    seeded,
    shim_runs,
    systemctl_shim,
)
from tests.fixtures.broker import ROOT, AgentProcess

# libfaketime 0.9.10 with FAKETIME_DONT_FAKE_MONOTONIC=1 fails clock_nanosleep(TIMER_ABSTIME)
# with EINVAL, and that is what time.sleep calls (subprocess waits, for one). The agent
# process gets this sitecustomize, which sleeps in select() instead: same wait, real clock.
_SLEEP_FIX = """\
import select
import time


def _sleep(seconds):
    if seconds > 0:
        select.select([], [], [], seconds)


time.sleep = _sleep
"""


class FakeTimeAgent(AgentProcess):
    """The agent under libfaketime: its wall clock follows `offset_file`, monotonic is real."""

    def __init__(self, config: dict, workdir: Path, offset_file: Path) -> None:
        super().__init__(config, workdir)
        self.site_dir = workdir / "faketime-site"
        self.site_dir.mkdir(exist_ok=True)
        (self.site_dir / "sitecustomize.py").write_text(_SLEEP_FIX)
        self.offset_file = offset_file

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "PYTHONPATH": f"{self.site_dir}:{ROOT}",
            "LD_PRELOAD": str(LIBFAKETIME),
            "FAKETIME_TIMESTAMP_FILE": str(self.offset_file),
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }


T0 = datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
LIBFAKETIME = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def _settings(tmp_path: Path, key: Ed25519PrivateKey | None = None) -> Settings:
    data: dict = {
        "site": {"site_id": "s1", "name": "s", "tier": "commune"},
        "paths": {"state_dir": str(tmp_path / "state")},
        "schedule": {"local_file": str(tmp_path / "none.toml")},
    }
    if key is not None:
        data["commands"] = {
            "keys": [{"key_id": "centre-test", "public_key": public_key_b64(key.public_key())}],
            "allow_reboot_host": True,
            "max_validity_s": 86400,
        }
    return Settings.model_validate(data)


def _schedule(sessions: list[tuple[str, datetime, timedelta]]) -> bytes:
    entries = [
        {"session_id": sid, "start": start.isoformat(), "end": (start + length).isoformat()}
        for sid, start, length in sessions
    ]
    return json.dumps({"schema_version": "1", "entries": entries}).encode()


# ---- pure: the scheduler under a random walk of the wall clock ----------------------------


def test_schedule_random_clock_walk_runs_each_check_once(tmp_path):
    name = "clock-walk"
    rng, _seed = seeded(name)
    sessions = []
    for i in range(8):
        start = T0 + timedelta(hours=3 * i, minutes=rng.randrange(0, 120, 5))
        sessions.append((f"s-{i}", start, timedelta(minutes=rng.choice([45, 90, 120]))))
    pre = PreSession(_settings(tmp_path))
    pre.on_schedule("all", _schedule(sessions))
    leads = pre.scheduler.settings.lead_minutes  # [60, 15]

    now = T0 - timedelta(hours=2)
    due: Counter[tuple[str, int]] = Counter()
    visited: set[tuple[str, int]] = set()  # (session, lead) whose window the clock was in
    jumps = {"forward": 0, "back": 0, "restart": 0}
    outside: list[str] = []
    for _ in range(3000):
        roll = rng.random()
        if roll < 0.08:
            now += timedelta(minutes=rng.randrange(60, 6 * 60))
            jumps["forward"] += 1
        elif roll < 0.16:
            now -= timedelta(minutes=rng.randrange(60, 6 * 60))
            jumps["back"] += 1
        elif roll < 0.18:
            pre = PreSession(_settings(tmp_path))  # restart: record and schedule from disk
            jumps["restart"] += 1
        else:
            now += timedelta(minutes=rng.randrange(1, 12))
        now = min(now, T0 + timedelta(hours=30))
        tick = pre.tick(now)
        for sid, start, _length in sessions:
            for lead in leads:
                if start - timedelta(minutes=lead) <= now < start:
                    visited.add((sid, lead))
        for run in tick.due:
            due[(run.session.session_id, run.lead_minutes)] += 1
            if not run.run_at <= now < run.session.start:
                outside.append(f"{run.key} due at {now}")

    twice = {k: n for k, n in due.items() if n > 1}
    uncovered = []
    for sid, lead in sorted(visited):
        session = next(s for s in pre.scheduler.sessions if s.session_id == sid)
        outcome = pre.scheduler.outcome(PlannedRun(session, lead))
        later_done = any(
            pre.scheduler.outcome(PlannedRun(session, other)) == "done"
            for other in leads
            if other < lead
        )
        if outcome not in ("done", "superseded") and not later_done:
            uncovered.append(f"{sid} lead {lead}: {outcome}")
    figures = (
        f"injected: 3000 ticks, {jumps['forward']} jumps forward and {jumps['back']} back "
        f"(1-6 h), {jumps['restart']} restarts from disk",
        f"observed: {sum(due.values())} pre-session checks due for {len(visited)} visited "
        f"run windows; due twice: {twice or 0}; due outside its window: {len(outside)}; "
        f"visited but neither run nor covered: {uncovered or 0}",
    )
    say(name, *figures)
    assert not twice, figures
    assert not outside, (figures, outside[:3])
    assert not uncovered, figures
    assert sum(due.values()) >= len(sessions), figures


# ---- pure: command expiry and replay refusal under clock jumps ----------------------------


def _service(tmp_path: Path, key: Ed25519PrivateKey) -> tuple[CommandService, Outbox]:
    settings = _settings(tmp_path, key)
    outbox = Outbox.from_settings(settings)
    context = ActionContext(
        settings=settings,
        run_checks=lambda _only: None,
        rebirth=lambda: None,
        exit_agent=lambda: None,
    )
    return CommandService(settings, outbox, context), outbox


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:+.2f}h"


def _verdict(result: Command | Rejection) -> str:
    return "accepted" if isinstance(result, Command) else result.reason.value


def test_command_expiry_and_replay_hold_across_clock_jumps(tmp_path):
    name = "clock-commands"
    key = Ed25519PrivateKey.generate()
    service, outbox = _service(tmp_path, key)
    try:
        short = signed(key, command_id="cmd-short-01", nonce="a" * 32, issued=T0, valid_s=600)
        long = signed(key, command_id="cmd-long-001", nonce="b" * 32, issued=T0, valid_s=86400)
        ahead = signed(key, command_id="cmd-ahead-01", nonce="c" * 32, issued=T0, valid_s=600)
        steps = [
            ("short", short, T0 + timedelta(minutes=1), "accepted"),
            ("short", short, T0 + timedelta(hours=3), "expired"),  # jumped forward 3 h
            # A valid long-lived command at the jumped time purges the store's old entries...
            ("long", long, T0 + timedelta(hours=3), "accepted"),
            # ...and when the clock comes back, the short one is inside its window again.
            ("short", short, T0 + timedelta(minutes=2), "replay"),
            ("ahead", ahead, T0 - timedelta(hours=2), "not_yet_valid"),  # jumped back 2 h
            ("ahead", ahead, T0 + timedelta(minutes=3), "accepted"),  # clock corrected
            ("ahead", ahead, T0 + timedelta(hours=5), "expired"),
            ("ahead", ahead, T0 + timedelta(minutes=4), "replay"),
            ("long", long, T0 - timedelta(hours=1), "not_yet_valid"),
            ("long", long, T0 + timedelta(hours=20), "replay"),
        ]
        observed = [
            (label, _hours(when - T0), _verdict(service.decide(raw, now=when)))
            for label, raw, when, _ in steps
        ]
    finally:
        service.close()
        outbox.close()
    wrong = [
        f"{label} at T0 {offset}: {got}, expected {want}"
        for (label, offset, got), (_, _, _, want) in zip(observed, steps, strict=True)
        if got != want
    ]
    say(
        name,
        "injected: the same signed commands decided at T0+1 min, +3 h, +2 min, -2 h, +5 h, "
        "+20 h (one clock, jumping)",
        "observed: " + ", ".join(f"{label}@{offset}={got}" for label, offset, got in observed),
    )
    accepted = Counter(label for label, _, got in observed if got == "accepted")
    assert not wrong, wrong
    assert max(accepted.values()) == 1, accepted


# ---- the real agent under libfaketime -----------------------------------------------------


@pytest.mark.broker
@pytest.mark.skipif(
    not LIBFAKETIME.exists() or shutil.which("faketime") is None,
    reason="libfaketime not installed (Debian package faketime)",
)
def test_agent_clock_jumps_run_each_presession_check_once(broker, centre, tmp_path, monkeypatch):
    name = "clock-agent"
    key = Ed25519PrivateKey.generate()
    offset_file = tmp_path / "faketime"
    offset_file.write_text("+0\n")
    runs = tmp_path / "runs.txt"
    monkeypatch.setenv("PATH", f"{systemctl_shim(tmp_path / 'bin', runs)}:{os.environ['PATH']}")

    real0 = datetime.now(UTC).replace(microsecond=0)
    start = real0 + timedelta(hours=2)
    live = centre(broker, ("vc/s1/#",))
    live.publish("vc/schedule", _schedule([("meet-1", start, timedelta(hours=1))]), retain=True)
    config = command_agent_config(
        broker, tmp_path / "state", key, check_interval_s=3600.0, state_heartbeat_s=0.3
    )
    config["schedule"] = {"local_file": str(tmp_path / "none.toml"), "max_sleep_s": 0.2}
    config["commands"]["max_validity_s"] = 86400
    agent = FakeTimeAgent(config, tmp_path, offset_file).start()
    t_start = time.monotonic()

    def states(ms: list[Received]) -> list[dict]:
        return [m.json() for m in ms if m.topic.endswith("/state")]

    def presession(ms: list[Received]) -> int:
        return len(
            {
                m.json()["seq"]
                for m in ms
                if m.topic.endswith("/checks") and m.json()["trigger"] == "pre-session"
            }
        )

    log: list[str] = []

    def jump(offset: timedelta) -> None:
        """Move the agent's wall clock; return once its loop has looked at the new time (a
        heartbeat state stamped after it: the loop ticks before it sends a heartbeat)."""
        offset_file.write_text(f"{int(offset.total_seconds()):+d}\n")
        target = datetime.now(UTC) + offset - timedelta(seconds=1)
        n = len(live.messages())

        def ticked(ms: list[Received]) -> bool:
            return any(
                m.topic.endswith("/state")
                and m.json()["cause"] == "heartbeat"
                and datetime.fromisoformat(m.json()["ts"].replace("Z", "+00:00")) >= target
                for m in ms[n:]
            )

        assert live.wait_for(ticked, 10), agent.log()[-3000:]

    def command(label: str, raw: bytes, command_id: str, want: str) -> None:
        n = len(live.messages())
        live.publish("vc/s1/cmd", raw)
        terminal = {"succeeded", "failed", "rejected"}
        assert live.wait_for(lambda ms: bool(terminal & set(replies(ms[n:], command_id))), 10), (
            agent.log()[-3000:]
        )
        got = next(
            s
            for s in replies(live.messages()[n:], command_id, reasons=True)
            if s.split(":")[0] in terminal
        )
        log.append(f"{label}={got}")
        assert got == want, (label, got, want, log)

    try:
        assert live.wait_for(lambda ms: len(states(ms)) >= 1, 10), agent.log()
        short = signed(key, command_id="cmd-short-01", nonce="a" * 32, valid_s=600)
        long = signed(key, command_id="cmd-long-001", nonce="b" * 32, valid_s=86400)
        ahead = signed(key, command_id="cmd-ahead-01", nonce="c" * 32, valid_s=600)
        command("short@+0", short, "cmd-short-01", "succeeded")
        plan = [
            # offset from the real clock, pre-session checks expected so far
            (timedelta(minutes=65), 1),  # 55 min before the session: the 60-min check
            (timedelta(hours=-3), 1),
            (timedelta(minutes=70), 1),  # back in the 60-min window: already done
            (timedelta(minutes=110), 2),  # 10 min before: the 15-min check
            (timedelta(hours=-1), 2),
            (timedelta(minutes=112), 2),
            (timedelta(hours=5), 2),  # the session is over
        ]
        for offset, want in plan:
            jump(offset)
            if want > presession(live.messages()):
                assert live.wait_for(lambda ms, w=want: presession(ms) >= w, 10), agent.log()
            got = presession(live.messages())
            log.append(f"clock {_hours(offset)} -> pre-session checks {got}")
            assert got == want, log
            if offset == timedelta(hours=5):
                command("short@+5h", short, "cmd-short-01", "rejected:expired")
                command("long@+5h", long, "cmd-long-001", "succeeded")
        jump(timedelta(hours=-2))
        command("ahead@-2h", ahead, "cmd-ahead-01", "rejected:not_yet_valid")
        jump(timedelta(0))
        command("short@+0 again", short, "cmd-short-01", "rejected:replay")
        command("ahead@+0", ahead, "cmd-ahead-01", "succeeded")
        command("ahead@+0 again", ahead, "cmd-ahead-01", "rejected:replay")
        assert agent.terminate() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
    executed = len(shim_runs(runs))
    figures = (
        "injected: agent clock +0, +65 min, -3 h, +70 min, +110 min, -1 h, +112 min, +5 h, "
        "-2 h, +0 (session 2 h ahead, leads 60/15 min); commands signed on the real clock",
        "observed: " + "; ".join(log),
        f"observed: reboot-host executions {executed} (expected 3: short, long, ahead); "
        f"took {time.monotonic() - t_start:.1f} s",
    )
    say(name, *figures)
    assert presession(live.messages()) == 2, figures
    assert executed == 3, figures
