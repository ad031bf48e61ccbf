"""Shared pieces of the command tests: keys, signed envelopes, agents with a recording
runner for `reboot-host` (the one boundary replaced: it would reboot the test machine)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.config import Settings
from agent.contract.envelope import public_key_b64, sign
from agent.runtime.daemon import Agent
from agent.sim.broker import Mosquitto
from tests.fixtures.broker import agent_config

KEY_ID = "centre-test"


class RecordingRunner:
    """Stands in for `systemctl`: records the argv it was asked to run."""

    def __init__(self, rc: int = 0, output: str = "") -> None:
        self.calls: list[list[str]] = []
        self.rc = rc
        self.output = output
        self._lock = threading.Lock()

    def __call__(self, argv: Sequence[str], timeout_s: float) -> tuple[int, str]:
        with self._lock:
            self.calls.append(list(argv))
        return self.rc, self.output


def signed(
    key: Ed25519PrivateKey,
    *,
    action: str = "reboot-host",
    args: dict[str, Any] | None = None,
    target: dict[str, Any] | None = None,
    command_id: str = "cmd-00000001",
    nonce: str = "0123456789abcdef0123456789abcdef",
    issued: datetime | None = None,
    valid_s: float = 300.0,
    key_id: str = KEY_ID,
) -> bytes:
    issued = issued or datetime.now(UTC)
    return sign(
        key,
        key_id,
        command_id=command_id,
        action=action,
        args=args or {},
        target=target or {"site": "s1"},
        issued_at=issued,
        expires_at=issued + timedelta(seconds=valid_s),
        nonce=nonce,
    )


def commands_config(
    broker: Mosquitto,
    state_dir: Path,
    key: Ed25519PrivateKey,
    site_id: str = "s1",
    tier: str = "commune",
    **commands: Any,
) -> dict[str, Any]:
    config = agent_config(broker, state_dir, site_id, check_interval_s=3600.0)
    config["site"]["tier"] = tier
    config["commands"] = {
        "keys": [{"key_id": KEY_ID, "public_key": public_key_b64(key.public_key())}],
        "allow_reboot_host": True,
        **commands,
    }
    return config


class CommandAgent:
    """The real daemon on a thread, with the reboot runner recorded."""

    def __init__(self, config: dict[str, Any], runner: RecordingRunner | None = None) -> None:
        self.settings = Settings.model_validate(config)
        self.runner = runner or RecordingRunner()
        self.agent = Agent(self.settings, command_runner=self.runner)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.agent.run, args=(self.stop_event,))

    def start(self) -> CommandAgent:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(15)
        assert not self.thread.is_alive(), "agent did not stop"
