"""One daemon per state directory, one `centre serve` per (database, instance). Real
processes throughout: the agent and the centre as commands against a real mosquitto."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from agent.control import ask, socket_path
from agent.errors import AlreadyRunning
from agent.lockfile import hold
from tests.fixtures.broker import ROOT, AgentProcess, agent_config, dump_toml
from tests.test_centre import centre_config

pytestmark = pytest.mark.broker

AGENT_MSG = "edge-agent is already running with this state directory (pid %(pid)s, %(path)s)"
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


def _availability(messages) -> list[str]:
    return [m.json()["status"] for m in messages if m.topic.endswith("/availability")]


# ---- one daemon per state directory ------------------------------------------------------


def test_lock_names_the_holder_in_the_users_language_and_dies_with_it(tmp_path, monkeypatch):
    path = tmp_path / "state" / "agent.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import pathlib, sys, time; from agent.lockfile import hold; "
         "hold(pathlib.Path(sys.argv[1]), '', ''); print('held', flush=True); time.sleep(60)",
         str(path)],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(AlreadyRunning) as refused:
            hold(path, AGENT_MSG, "")
        assert f"pid {holder.pid}, {path})" in str(refused.value)
        monkeypatch.setenv("LC_ALL", "vi_VN.UTF-8")
        with pytest.raises(AlreadyRunning, match=f"đang chạy .*pid {holder.pid},"):
            hold(path, AGENT_MSG, "")
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
