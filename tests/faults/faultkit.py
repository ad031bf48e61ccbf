"""Shared pieces of the fault suite (tests/faults/test_*_faults.py): the replayable seed, the
on-disk views a test takes of a killed agent, and a `systemctl` stand-in that records every
run of the `reboot-host` action, so a command run twice shows up as two lines in a file.

Everything here reads the agent's real files (SQLite, the audit log); nothing is mocked.
"""

from __future__ import annotations

import os
import random
import sqlite3
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.commands.store import DB_NAME
from agent.contract.envelope import public_key_b64
from agent.sim.broker import Mosquitto
from agent.transport.listener import Received
from agent.transport.outbox import FILENAME as OUTBOX_NAME
from tests.commands_kit import KEY_ID
from tests.fixtures.broker import agent_config

SEED_ENV = "EDGE_AGENT_FAULT_SEED"
QUEUED = ("state", "checks", "attendance", "cmd/reply")


def seeded(test: str) -> tuple[random.Random, int]:
    """A random generator whose seed is printed and can be replayed with EDGE_AGENT_FAULT_SEED."""
    text = os.environ.get(SEED_ENV)
    seed = int(text) if text else int.from_bytes(os.urandom(4), "big")
    say(test, f"seed {seed} (replay: {SEED_ENV}={seed})")
    return random.Random(seed), seed


def say(test: str, *lines: str) -> None:
    """What a fault test injected and observed: shown by `pytest -s`, kept in messages."""
    for line in lines:
        print(f"[{test}] {line}", flush=True)


# ---- the agent's files, read while it is dead (or through WAL while it runs) ---------------


def integrity(path: Path) -> str:
    """`PRAGMA integrity_check` of one SQLite file ("ok" when sound)."""
    db = sqlite3.connect(path, timeout=5)
    try:
        rows = db.execute("PRAGMA integrity_check").fetchall()
    finally:
        db.close()
    return "; ".join(str(r[0]) for r in rows)


def integrity_all(state_dir: Path) -> dict[str, str]:
    return {
        name: integrity(state_dir / name)
        for name in (OUTBOX_NAME, DB_NAME)
        if (state_dir / name).exists()
    }


@dataclass(frozen=True)
class OutboxView:
    last_seq: int
    boot: int
    dropped: int
    pending: list[int]
    refused: list[int]


def outbox_view(state_dir: Path) -> OutboxView:
    """The outbox as the agent left it (a plain reader: WAL lets it run alongside)."""
    db = sqlite3.connect(state_dir / OUTBOX_NAME, timeout=5)
    try:
        counters = dict(db.execute("SELECT name, value FROM counters").fetchall())
        pending = [int(r[0]) for r in db.execute("SELECT seq FROM outbox ORDER BY seq")]
        refused = [
            int(r[0]) for r in db.execute("SELECT seq FROM outbox WHERE refused IS NOT NULL")
        ]
    finally:
        db.close()
    return OutboxView(
        int(counters["seq"]), int(counters["boot"]), int(counters["dropped_checks"]),
        pending, refused,
    )  # fmt: skip


def seen_status(state_dir: Path, command_id: str) -> str | None:
    """The command store's status of one command id (None: never accepted)."""
    path = state_dir / DB_NAME
    if not path.exists():
        return None
    db = sqlite3.connect(path, timeout=5)
    try:
        row = db.execute("SELECT status FROM seen WHERE id = ?", (command_id,)).fetchone()
    finally:
        db.close()
    return None if row is None else str(row[0])


def queued_seqs(messages: list[Received]) -> list[int]:
    """seq of every queued report the centre received (all copies, in arrival order)."""
    out = []
    for m in messages:
        if any(m.topic.endswith("/" + n) for n in QUEUED):
            out.append(int(m.json()["seq"]))
    return out


def lost(view: OutboxView, received: list[int]) -> list[int]:
    """Seqs handed out by the outbox that neither reached the centre nor are still queued."""
    return sorted(set(range(1, view.last_seq + 1)) - set(received) - set(view.pending))


# ---- commands with an observable side effect -------------------------------------------------


def systemctl_shim(directory: Path, runs: Path) -> Path:
    """A `systemctl` first on PATH that appends "<agent pid> <unix time>" per run to `runs`.

    `reboot-host` runs `systemctl start --no-block edge-agent-reboot.service` through the
    real runner (a subprocess), so this counts every execution of the action, including one
    cut short by a kill -9 of the agent after the action started."""
    directory.mkdir(parents=True, exist_ok=True)
    shim = directory / "systemctl"
    shim.write_text(f'#!/bin/sh\necho "$PPID $(date +%s.%N)" >> {runs}\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return directory


def shim_runs(runs: Path) -> list[tuple[int, float]]:
    if not runs.exists():
        return []
    out = []
    for line in runs.read_text().splitlines():
        pid, at = line.split()
        out.append((int(pid), float(at)))
    return out


def command_agent_config(
    broker: Mosquitto, state_dir: Path, key: Ed25519PrivateKey, **report: Any
) -> dict[str, Any]:
    """A network-only agent that reports fast and takes signed commands (reboot-host allowed)."""
    config = agent_config(broker, state_dir, **report)
    config["commands"] = {
        "keys": [{"key_id": KEY_ID, "public_key": public_key_b64(key.public_key())}],
        "allow_reboot_host": True,
        "fleet": False,
    }
    return config


def replies(messages: list[Received], command_id: str, *, reasons: bool = False) -> list[str]:
    """Statuses of the replies to one command, in arrival order (copies included); with
    `reasons`, "rejected:<reason>" for refusals."""
    out = []
    for m in messages:
        if m.topic.endswith("/cmd/reply"):
            data = m.json()
            if data.get("command_id") == command_id:
                status = str(data["status"])
                if reasons and status == "rejected":
                    status += ":" + str(data["reason"]).split(":", 1)[0]
                out.append(status)
    return out


def elapsed(since: float) -> str:
    return f"{time.monotonic() - since:.1f} s"
