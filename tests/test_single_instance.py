"""One daemon per state directory, one `centre serve` per (database, instance), and worker
children that die with their parent. Real processes throughout: the agent and the centre as
commands against a real mosquitto, `kill -9`, a probe hung on a real TCP connect."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import AlreadyRunning
from agent.messages import render
from agent.runtime.control import ask, socket_path
from agent.system.lockfile import hold
from agent.system.workers import WORKER_OF_ENV
from tests.fixtures.broker import ROOT, AgentProcess, agent_config, dump_toml, wait_until
from tests.test_centre import centre_config

pytestmark = pytest.mark.broker

AGENT_MSG = "run.already_running"
AGENT_HINT = "stop it first"


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 30):
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def _alive(pid: int) -> bool:
    """Running (a zombie counts as gone: here PID 1 need not reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.append(int(entry.name))
    return out


def _availability(messages) -> list[str]:
    return [m.json()["status"] for m in messages if m.topic.endswith("/availability")]


# ---- one daemon per state directory ------------------------------------------------------


def test_lock_names_the_holder_in_the_users_language_and_dies_with_it(tmp_path, monkeypatch):
    path = tmp_path / "state" / "agent.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import pathlib, sys, time; from agent.system.lockfile import hold; "
         "hold(pathlib.Path(sys.argv[1]), '', ''); print('held', flush=True); time.sleep(60)",
         str(path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(AlreadyRunning) as refused:
            hold(path, AGENT_MSG, "")
        assert f"pid {holder.pid}, {path})" in str(refused.value)
        # The reader renders it in its own language.
        assert refused.value.msg is not None
        assert f"đang chạy với thư mục trạng thái này (pid {holder.pid}," in render(
            refused.value.msg, "vi"
        )
    finally:
        holder.kill()
        holder.wait(5)
    # The file is still there with the dead holder's pid: it must not block.
    assert path.read_text() == f"{holder.pid}\n"
    fd = hold(path, AGENT_MSG, "")
    try:
        assert path.read_text() == f"{os.getpid()}\n"
    finally:
        os.close(fd)


def test_second_run_on_one_state_dir_exits_3_and_leaves_the_first_alone(broker, centre, tmp_path):
    live = centre(broker)
    first = AgentProcess(agent_config(broker, tmp_path / "state"), tmp_path).start()
    try:
        assert live.wait_for(lambda ms: "online" in _availability(ms), 15), first.log()
        control = socket_path(first.state_dir)
        assert ask(control, {"op": "status"}) is not None
        live.clear()
        # Before the lock, the second ran (here for 4 s), took the broker session from the
        # first and removed its control socket on the way out.
        second = _cli("--config", str(first.config_path), "run", "--duration", "4")
        assert second.returncode == 3, second.stderr
        assert f"pid {first.proc.pid}," in second.stderr, second.stderr  # type: ignore[union-attr]
        assert AGENT_HINT in second.stderr and "Traceback" not in second.stderr
        time.sleep(1.0)  # a knocked-off first reconnects within 0.1-0.5 s: give it the time
        assert _availability(live.messages()) == [], "the first was knocked off the broker"
        reply = ask(control, {"op": "status"})
        assert reply is not None and reply["ok"], "the first's control socket is gone"
        assert first.proc.poll() is None  # type: ignore[union-attr]
    finally:
        assert first.terminate() == 0, first.log()


# ---- worker children die with the daemon -------------------------------------------------


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port whose TCP connects hang: a listen(0) backlog kept full."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(0)
        port = server.getsockname()[1]
        fillers = []
        for _ in range(3):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        time.sleep(0.1)
        yield port
        for s in fillers:
            s.close()


def _connecting_to(port: int, pid: int) -> bool:
    """Process `pid` has a socket in SYN_SENT to `port` (stuck in connect)."""
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if fields[3] == "02" and remote_port == port and fields[9] in inodes:
                return True
    return False


def test_kill_9_of_the_daemon_ends_its_hung_selftest_child(broker, tmp_path, black_hole):
    config = agent_config(broker, tmp_path / "state")
    config["network"].update(
        connect_timeout_s=120.0,
        timeout_s=120.0,
        targets=[{"name": "hole", "host": "127.0.0.1", "port": black_hole}],
    )
    agent = AgentProcess(config, tmp_path).start()
    try:
        assert wait_until(lambda: bool(_children(agent.proc.pid)), 15), agent.log()  # type: ignore[union-attr]
        (child,) = _children(agent.proc.pid)  # type: ignore[union-attr]
        assert wait_until(lambda: _connecting_to(black_hole, child), 20), "the probe never started"
        agent.kill()
        killed_at = time.monotonic()
        assert wait_until(lambda: not _alive(child), 5, step=0.02), "the child outlived it"
        gone_after = time.monotonic() - killed_at
        assert gone_after < 1.5, f"the child lived {gone_after:.2f} s after the daemon"
    finally:
        if agent.proc is not None and agent.proc.poll() is None:
            agent.kill()


def test_kill_9_of_the_parent_ends_its_attendance_child_stuck_opening_the_camera(
    tmp_path, black_hole
):
    settings = {
        "site": {"site_id": "a1", "name": "a1", "tier": "commune"},
        "paths": {"state_dir": str(tmp_path / "state")},
        "camera": {"source": f"http://127.0.0.1:{black_hole}/video", "open_timeout_s": 120},
        "attendance": {"enabled": True, "models_dir": str(ROOT / "models")},
    }
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import json, sys; from agent.config import Settings; "
         "from agent.attendance.worker import count_burst_isolated; "
         "count_burst_isolated(Settings.model_validate(json.loads(sys.argv[1])))",
         json.dumps(settings)],
        cwd=ROOT,
    )  # fmt: skip
    try:
        assert wait_until(lambda: bool(_children(parent.pid)), 15)
        (child,) = _children(parent.pid)
        assert wait_until(lambda: _connecting_to(black_hole, child), 30), "no camera open"
        parent.kill()
        parent.wait(5)
        killed_at = time.monotonic()
        assert wait_until(lambda: not _alive(child), 5, step=0.02), "the child outlived it"
        assert time.monotonic() - killed_at < 1.5
    finally:
        parent.kill()
        parent.wait(5)


HUNG_WORKER = """
import signal, subprocess, time
from agent.system.workers import die_with_parent
die_with_parent()
if sys.argv[-1] == "ignore-sigio":  # as a library with its own SIGIO use might
    signal.signal(signal.SIGIO, signal.SIG_IGN)
subprocess.Popen(["sleep", "60"])
time.sleep(60)
"""


@pytest.mark.parametrize("sigio", ["default", "ignore-sigio"])
def test_a_worker_and_its_children_end_with_the_parent_even_ignoring_sigio(tmp_path, sigio):
    (tmp_path / "hung_worker.py").write_text(HUNG_WORKER.replace("sys.argv[-1]", repr(sigio)))
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import pathlib, sys; from agent.system.workers import run_worker; "
         "print(run_worker('hung_worker', b'', 60, pathlib.Path(sys.argv[1]))[1].decode(), "
         "flush=True)", str(tmp_path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": f"{ROOT}:{tmp_path}"},
    )  # fmt: skip
    try:
        assert wait_until(lambda: len(_children(parent.pid)) == 1, 10)
        (worker,) = _children(parent.pid)
        assert wait_until(lambda: len(_children(worker)) == 1, 10)
        (grandchild,) = _children(worker)
        parent.kill()
        parent.wait(5)
        assert wait_until(lambda: not _alive(worker) and not _alive(grandchild), 1.5, 0.01)
    finally:
        parent.kill()
        parent.wait(5)


def test_run_kills_the_worker_group_a_previous_life_left_and_only_that(broker, tmp_path):
    state = tmp_path / "state"
    state.mkdir()

    def leftover(owner: Path) -> subprocess.Popen[bytes]:
        # A worker and its own child, in their own process group, as run_worker makes them.
        return subprocess.Popen(
            ["sh", "-c", "sleep 60 & exec sleep 60"],
            env={**os.environ, WORKER_OF_ENV: str(owner.resolve())},
            start_new_session=True,
        )

    ours, other = leftover(state), leftover(tmp_path / "another-agent")
    time.sleep(0.2)
    grandchild = _children(ours.pid)
    assert len(grandchild) == 1
    try:
        config = agent_config(broker, state)
        (tmp_path / "agent.toml").write_text(dump_toml(config))
        run = _cli("--config", str(tmp_path / "agent.toml"), "run", "--duration", "0.5")
        assert run.returncode == 0, run.stderr
        assert ours.wait(5) == -signal.SIGKILL
        assert wait_until(lambda: not _alive(grandchild[0]), 2)
        assert "killed 1 worker process group(s) left by a previous run" in run.stderr
        assert other.poll() is None, "another agent's worker was killed"
    finally:
        for proc in (ours, other):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# ---- one centre serve per (database, instance) ------------------------------------------


def test_second_centre_serve_on_one_db_and_instance_exits_3(broker, tmp_path):
    config = tmp_path / "centre.toml"
    config.write_text(dump_toml(centre_config(broker, tmp_path)))
    first = subprocess.Popen(
        [sys.executable, "-m", "agent", "centre", "serve", "--config", str(config),
         "--instance", "a", "--seconds", "30"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert first.stdout is not None
        assert first.stdout.readline().startswith("centre: storing"), first.stderr
        second = _cli("centre", "serve", "--config", str(config), "--instance", "a",
                      "--seconds", "3")  # fmt: skip
        assert second.returncode == 3, second.stderr
        assert f"--instance 'a' is already running (pid {first.pid}," in second.stderr
        # Another instance on the same database is the designed way to share the load.
        other = _cli("centre", "serve", "--config", str(config), "--instance", "b",
                     "--seconds", "1")  # fmt: skip
        assert other.returncode == 0, other.stderr
        bad = _cli("centre", "serve", "--config", str(config), "--instance", "../x")
        assert bad.returncode == 2 and "letters, digits" in bad.stderr
        assert first.poll() is None
    finally:
        first.terminate()
        first.wait(10)
