"""The state directory fills up: a real 2 MB tmpfs mounted on it (root only), filled to ENOSPC
by another file while the agent reports.

The agent must degrade cleanly: keep running (no exit, no crash loop: a kill -9 while the disk
is full must come back up and stay up), say so in its log, stay connected and keep what it
can publish without the disk (`availability`, `meta`; a reconnect after a broker restart
while full gets a new `boot` in memory), never corrupt its SQLite files, and once space
returns store and deliver reports again with contiguous seqs (reports that could not be
stored never took a seq, so the centre sees no gap and no loss).

Without permission to mount (not root), the test falls back to the outbox's own bounds and
says so.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.checks.model import Verdict
from agent.contract.payloads import ChecksPayload
from agent.errors import TransportError
from agent.transport.listener import Received
from agent.transport.outbox import Outbox
from tests.faults.faultkit import integrity, integrity_all, lost, outbox_view, queued_seqs, say
from tests.fixtures.broker import AgentProcess, agent_config, wait_until

SIZE = "2m"
FILL_LIMIT = 16 * 1024 * 1024  # a guard: the filler never writes more than this
NO_MOUNT_ENV = "EDGE_AGENT_FAULT_NO_MOUNT"  # force the fallback (to test it where mount works)


def _mount_tmpfs(where: Path) -> str | None:
    """Mount a small tmpfs; the reason it cannot be done, or None."""
    where.mkdir(parents=True, exist_ok=True)
    if os.environ.get(NO_MOUNT_ENV):
        return f"{NO_MOUNT_ENV} is set"
    if os.geteuid() != 0:
        return "not root: cannot mount a size-limited tmpfs"
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return f"mount -t tmpfs refused: {done.stderr.strip()}"
    # Never fill a real disk: only a filesystem of about SIZE may be filled.
    fs = os.statvfs(where)
    if fs.f_blocks * fs.f_frsize > FILL_LIMIT:
        subprocess.run(["umount", "-l", str(where)], check=False)
        return f"the tmpfs on {where} did not take effect ({fs.f_blocks * fs.f_frsize} bytes)"
    return None


def _fill(directory: Path) -> int:
    """Write a filler file until the filesystem says ENOSPC; its size."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    size = 0
    try:
        for chunk in (65536, 4096, 512, 1):
            with contextlib.suppress(OSError):
                while size < FILL_LIMIT:
                    size += os.write(fd, b"\0" * chunk)
        assert size < FILL_LIMIT, f"{directory}: not a small filesystem; stopped filling it"
        try:
            os.write(fd, b"\0")
        except OSError as exc:
            assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
    return size


def _online(messages: list[Received]) -> list[dict]:
    return [
        m.json()
        for m in messages
        if m.topic.endswith("/availability") and m.json()["status"] == "online"
    ]


@pytest.mark.broker
def test_state_dir_full_degrades_cleanly_and_recovers(broker, centre, tmp_path):
    name = "disk-full"
    state = tmp_path / "state"
    why_not = _mount_tmpfs(state)
    if why_not is not None:
        say(name, f"fallback to the outbox bounds: {why_not}")
        _outbox_bounds_fallback(broker, centre, tmp_path)
        return
    agent: AgentProcess | None = None
    began = time.monotonic()
    try:
        live = centre(broker, ("vc/s1/#",))
        config = agent_config(
            broker, state, check_interval_s=0.2, state_heartbeat_s=0.5, drain_rate_per_s=50
        )
        agent = AgentProcess(config, tmp_path).start()
        assert live.wait_for(lambda ms: len(queued_seqs(ms)) >= 4, 10), agent.log()
        assert agent.proc is not None
        pid = agent.proc.pid

        filler = _fill(state)
        full_at = len(live.messages())
        assert wait_until(lambda: "cannot store reports" in agent.log(), 10), agent.log()[-3000:]
        time.sleep(1.0)  # a few more check intervals with the disk full
        alive_full = agent.proc.poll() is None and agent.proc.pid == pid
        boot_full = max(a["boot"] for a in _online(live.messages()))
        wills_full = [
            m
            for m in live.messages()[full_at:]
            if m.topic.endswith("/availability") and m.json()["status"] == "offline"
        ]

        # The broker restarts while the disk is full: the agent must reconnect anyway.
        broker.stop()
        broker.start()
        assert live.wait_for(lambda ms: any(a["boot"] > boot_full for a in _online(ms)), 10), (
            agent.log()[-3000:]
        )
        boot_reconnect = max(a["boot"] for a in _online(live.messages()))

        # Killed while full: it must come back up, stay up and connect.
        agent.kill()
        damaged_full = {f: r for f, r in integrity_all(state).items() if r != "ok"}
        agent.start()
        assert live.wait_for(lambda ms: any(a["boot"] > boot_reconnect for a in _online(ms)), 15), (
            agent.log()[-3000:]
        )
        time.sleep(1.0)
        alive_restarted = agent.proc.poll() is None
        made_full = outbox_view(state).last_seq

        (state / "filler").unlink()
        assert live.wait_for(lambda ms: any(s > made_full for s in queued_seqs(ms)), 15), (
            agent.log()[-3000:]
        )
        assert wait_until(lambda: "reports are stored again" in agent.log(), 10), agent.log()
        assert agent.terminate() == 0
        view = outbox_view(state)
        wait_until(lambda: not lost(view, queued_seqs(live.messages())), 5)
        missing = lost(view, queued_seqs(live.messages()))
        damaged_end = {f: r for f, r in integrity_all(state).items() if r != "ok"}
        log = agent.log()
    finally:
        if agent is not None and agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
        subprocess.run(["umount", "-l", str(state)], check=False)
    lines = [line for line in log.splitlines() if "stor" in line or "not saved" in line]
    figures = (
        f"injected: {SIZE} tmpfs state_dir filled to ENOSPC ({filler} bytes of filler); broker "
        "restarted while full; agent killed -9 and restarted while full; space freed",
        f"observed: while full: same process alive {alive_full}, wills {len(wills_full)}, "
        f"reconnected with boot {boot_full} -> {boot_reconnect}; after kill -9: back up and "
        f"alive {alive_restarted}; integrity while full {damaged_full or 'ok'}",
        f"observed: after space returned: {view.last_seq} reports made, delivery resumed, lost "
        f"{len(missing)} {missing[:10]}, integrity {damaged_end or 'ok'}",
        "observed log: " + " | ".join(line[9:140] for line in lines[:6]),
        f"took {time.monotonic() - began:.1f} s",
    )
    say(name, *figures)
    assert alive_full and not wills_full, figures
    assert alive_restarted, figures
    assert not damaged_full and not damaged_end, figures
    assert not missing, figures
    assert "Traceback" not in log, figures


def _outbox_bounds_fallback(broker, centre, tmp_path) -> None:
    """The same contract when no disk can be filled: the outbox's own bounds (10 reports)
    with the broker away; checks are dropped and counted, the agent keeps running and the
    backlog drains once the broker is back."""
    name = "outbox-bounds"
    live = centre(broker, ("vc/s1/#",))
    state = tmp_path / "state"
    config = agent_config(broker, state, check_interval_s=0.1, outbox_max_messages=10)
    agent = AgentProcess(config, tmp_path).start()
    try:
        assert live.wait_for(lambda ms: len(queued_seqs(ms)) >= 2, 10), agent.log()
        broker.stop()
        assert wait_until(lambda: outbox_view(state).dropped >= 5, 20), agent.log()[-3000:]
        assert agent.proc is not None and agent.proc.poll() is None
        broker.start()
        made = outbox_view(state).last_seq
        assert live.wait_for(lambda ms: any(s > made for s in queued_seqs(ms)), 10)
        assert agent.terminate() == 0
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()
    view = outbox_view(state)
    missing = lost(view, queued_seqs(live.messages()))
    states = [m.json() for m in live.messages() if m.topic.endswith("/state")]
    reported = max(s["outbox"]["dropped_checks"] for s in states)
    figures = (
        "injected: outbox bounded to 10 reports, broker stopped until 5 checks were dropped",
        f"observed: {view.last_seq} seqs, {view.dropped} dropped (state reports "
        f"{reported}), unexplained gaps {len(set(missing)) - view.dropped}, integrity "
        f"{integrity_all(state)}",
    )
    say(name, *figures)
    assert len(missing) == view.dropped, figures
    assert reported > 0, figures
    assert set(integrity_all(state).values()) == {"ok"}, figures


def test_a_write_refused_for_lack_of_space_leaves_the_outbox_consistent(tmp_path):
    """At the outbox itself: a put that fails on ENOSPC (after evicting a check to respect
    its bound) raises the outbox's own error, takes no seq, and leaves its counts equal to
    what is on disk; once space returns it goes on where it was."""
    name = "disk-full-outbox"
    where = tmp_path / "small"
    why_not = _mount_tmpfs(where)
    if why_not is not None:
        pytest.skip(why_not)
    try:
        outbox = Outbox(
            where / "outbox.sqlite", prefix="vc", site_id="s1", max_messages=10,
            max_bytes=1_000_000,
        )  # fmt: skip
        for _ in range(10):
            outbox.put(_checks())
        _fill(where)
        errors = []
        for _ in range(3):
            try:
                outbox.put(_checks())
            except TransportError as exc:
                errors.append(exc.message)
        stats = outbox.stats()
        on_disk = len(outbox.all_seqs())
        (where / "filler").unlink()
        after = outbox.put(_checks()).seq
        final, final_disk = outbox.stats().pending, len(outbox.all_seqs())
        outbox.close()
        checked = integrity(where / "outbox.sqlite")
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
    figures = (
        "injected: an outbox at its bound (10 checks) on a full 2 MB tmpfs; 3 puts",
        f"observed: {len(errors)} refused ({errors[:1]}); counted pending {stats.pending} vs "
        f"{on_disk} rows on disk; last seq {stats.last_seq}; after space returned: next seq "
        f"{after}, pending {final} vs {final_disk} on disk, integrity {checked}",
    )
    say(name, *figures)
    assert len(errors) == 3, figures
    assert stats.pending == on_disk and stats.last_seq == 10, figures
    assert after == 11 and final == final_disk, figures
    assert checked == "ok", figures


def _checks() -> ChecksPayload:
    now = datetime.now(UTC)
    return ChecksPayload(
        site_id="s1", ts=now, trigger="interval", verdict=Verdict.READY, started_at=now,
        duration_s=0.1, results=[],
    )  # fmt: skip


def test_a_command_accepted_while_replies_cannot_be_stored_still_runs_once(tmp_path):
    """The outbox on a full tmpfs, the command memory on the normal disk: the `accepted`
    reply cannot be stored. The command must still run (it is already remembered as seen,
    so failing here would leave it neither run nor answered) and a replay must not."""
    from agent.commands.service import CommandService, Route  # noqa: PLC0415
    from tests.commands_kit import signed  # noqa: PLC0415
    from tests.test_commands_envelope import KEY, NOW, Hooks, make_settings  # noqa: PLC0415

    name = "disk-full-command"
    where = tmp_path / "small"
    why_not = _mount_tmpfs(where)
    if why_not is not None:
        pytest.skip(why_not)
    hooks = Hooks()
    settings = make_settings(tmp_path / "state", allow_reboot_host=False)
    try:
        outbox = Outbox(
            where / "outbox.sqlite", prefix="vc", site_id="s1", max_messages=100,
            max_bytes=1_000_000,
        )  # fmt: skip
        service = CommandService(settings, outbox, hooks.context(settings), clock=lambda: NOW)
        _fill(where)
        raw = signed(KEY, action="rebirth", issued=NOW)
        first = service.on_message(raw, Route("vc/s1/cmd/reply", None))
        again = service.on_message(raw, Route("vc/s1/cmd/reply", None))
        service.close(wait=True)
        outbox.close()
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
    figures = (
        "injected: a signed rebirth while the outbox's 2 MB tmpfs is full, then its replay",
        f"observed: first {type(first).__name__}, replay {type(again).__name__} "
        f"({getattr(again, 'reason', '')}); actions run {hooks.calls}",
    )
    say(name, *figures)
    assert hooks.calls == ["rebirth"], figures
    assert type(first).__name__ == "Command", figures
    assert type(again).__name__ == "Rejection", figures
