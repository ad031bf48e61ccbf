"""No secret in logs: the real agent (a child process, debug logging) with a broker password,
a codec password and a command key runs its checks and a command; the passwords never appear
in its stdout/stderr, its state files (outbox SQLite and WAL included), anything it published,
the command's reply, `edge-agent config check|status|check` output, or the argv of the
self-test worker it starts (read from /proc while the worker runs). A TLS client key's
contents likewise stay out of every CLI output.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.centre.sender import Sender
from agent.cli import main
from agent.contract.envelope import public_key_b64
from agent.sim.broker import Mosquitto
from agent.sim.serial_device import PtyDevice, load_recording
from agent.transport.listener import Listener
from tests.fixtures.broker import ROOT, AgentProcess, agent_config, dump_toml

KEY_ID = "centre-test"


class CapturedAgent(AgentProcess):
    """AgentProcess with stdout kept too (the fixture sends it to /dev/null)."""

    def start(self) -> CapturedAgent:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.out_path = self.log_path.with_name("agent.stdout")
        with self.log_path.open("ab") as err, self.out_path.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "--config", str(self.config_path), "run"],
                stdout=out,
                stderr=err,
                env=env,
                cwd=ROOT,
            )
        return self


class WorkerWatch:
    """Reads /proc/<pid>/cmdline (and environ) of every self-test worker child while it runs."""

    def __init__(self, parent: int) -> None:
        self.parent = parent
        self.seen: dict[int, tuple[bytes, bytes]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> WorkerWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _watch(self) -> None:
        while not self._stop.wait(0.005):
            for entry in Path("/proc").iterdir():
                if not entry.name.isdigit() or int(entry.name) in self.seen:
                    continue
                try:
                    stat = (entry / "stat").read_text()
                    ppid = int(stat.rsplit(")", 1)[1].split()[1])
                    if ppid != self.parent:
                        continue
                    cmdline = (entry / "cmdline").read_bytes()
                    if b"agent.selftest.worker" in cmdline:
                        self.seen[int(entry.name)] = (cmdline, (entry / "environ").read_bytes())
                except (OSError, ValueError, IndexError):
                    continue


def leaks(secret: bytes, *blobs: bytes) -> list[int]:
    return [i for i, blob in enumerate(blobs) if secret in blob]


def files_under(root: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out + out.err


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_running_agent_never_writes_its_secrets(
    broker_password: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "bp-" + secrets.token_hex(12)
    codec_password = "cp-" + secrets.token_hex(12)
    broker_password.add_user("s1", password)
    recording = load_recording("cisco-roomos_ce9.15")
    assert recording.login is not None
    login = recording.login.model_copy(update={"password": codec_password})
    codec = PtyDevice(recording.model_copy(update={"login": login})).start()
    key = Ed25519PrivateKey.generate()
    config: dict[str, Any] = agent_config(
        broker_password, tmp_path / "state", "s1", user="s1", check_interval_s=1.0
    )
    config["log_level"] = "debug"  # the most the agent ever says
    config["codec"] = {
        "enabled": True,
        "profile": "cisco-roomos",
        "port": codec.port,
        "username": "admin",
        "password": codec_password,
        "timeout_s": 3.0,
    }
    config["commands"] = {
        "keys": [{"key_id": KEY_ID, "public_key": public_key_b64(key.public_key())}]
    }
    centre = Listener(broker_password.endpoint(), ("vc/#",)).start()
    agent = CapturedAgent(config, tmp_path)
    assert password in agent.config_path.read_text()  # the secret is really configured
    agent.start()
    assert agent.proc is not None
    watch = WorkerWatch(agent.proc.pid).start()
    try:

        def checked_codec() -> bool:
            return any(
                m.topic == "vc/s1/checks" and b'"codec"' in m.payload for m in centre.messages()
            )

        assert wait_until(checked_codec, 30), agent.log()[-2000:]
        with Sender(broker_password.endpoint(), "vc") as sender:
            command_id, _ = sender.send(key, KEY_ID, "run-checks", {}, {"site": "s1"})
            outcome = sender.collect(command_id, {"s1"}, 20)
        statuses = [r.status for r in outcome.replies]
        assert statuses[-1] == "succeeded", outcome.replies
        reply_text = repr([(r.reason, r.output) for r in outcome.replies]).encode()

        code, status_text = cli(["--config", str(agent.config_path), "status", "--json"], capsys)
        assert code in (0, 1, 2), status_text
        code, check_text = cli(["--config", str(agent.config_path), "check", "--json"], capsys)
        assert code in (0, 1, 2), check_text
        code, config_text = cli(["--config", str(agent.config_path), "config", "check"], capsys)
        assert code == 0, config_text
    finally:
        watch.stop()
        rc = agent.terminate()
        centre.stop()
        codec.stop()
    assert rc == 0, agent.log()[-2000:]

    # The secrets were in play: the codec got its password on the line, the worker ran.
    assert any(codec_password.encode() in r for r in codec.requests)
    assert watch.seen, "no self-test worker was seen running"
    log = agent.log_path.read_bytes()
    stdout = agent.out_path.read_bytes()
    published = b"\n".join(m.topic.encode() + b" " + m.payload for m in centre.messages())
    state = files_under(agent.state_dir)
    argvs = b"\n".join(cmdline for cmdline, _ in watch.seen.values())
    environs = b"\n".join(environ for _, environ in watch.seen.values())
    outputs = [status_text.encode(), check_text.encode(), config_text.encode(), reply_text]
    first_argv = [c.replace(b"\0", b" ").decode() for c, _ in watch.seen.values()][:1]
    print(
        f"\n[secrets] agent log {len(log)} B, stdout {len(stdout)} B, {len(centre.messages())} "
        f"messages published ({len(published)} B), {len(state)} state files "
        f"({sum(map(len, state.values()))} B), {len(watch.seen)} worker argv(s) read: "
        f"{first_argv}"
    )
    for secret in (password, codec_password):
        raw = secret.encode()
        assert not leaks(raw, log, stdout), f"{secret} in the agent's stderr/stdout"
        assert not leaks(raw, published), f"{secret} published"
        bad = [name for name, data in state.items() if raw in data]
        assert not bad, f"{secret} in state files {bad}"
        assert not leaks(raw, argvs), f"{secret} on a worker's command line"
        assert not leaks(raw, environs), f"{secret} in a worker's environment"
        assert not leaks(raw, *outputs), f"{secret} in CLI output or the command reply"


def test_tls_key_and_password_stay_out_of_cli_output(
    tls_broker: Mosquitto, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    password = "bp-" + secrets.token_hex(12)
    config = agent_config(tls_broker, tmp_path / "state", "s1")
    config["broker"]["username"] = "s1"
    config["broker"]["password"] = password
    key_path = Path(config["broker"]["tls_key"])
    key_body = key_path.read_text().splitlines()[1].encode()  # a line of the PEM body
    path = tmp_path / "agent.toml"
    path.write_text(dump_toml(config))
    texts = []
    for argv in (["config", "check"], ["check", "--local", "--json"], ["check", "--local"]):
        code, text = cli(["--config", str(path), *argv], capsys)
        assert code in (0, 1, 2), text
        texts.append(text.encode())
    code, text = cli(["--config", str(path), "status"], capsys)
    assert code == 3 and "not running" in text  # no daemon here: a clear refusal
    texts.append(text.encode())
    print(f"\n[secrets] TLS: {len(texts)} CLI outputs, {sum(map(len, texts))} B checked")
    for secret in (password.encode(), key_body):
        assert not leaks(secret, *texts)
