"""The commands' memory on disk: ids and nonces seen (replay), and the audit log.

`commands.sqlite` (state dir) remembers every accepted command's id and nonce until a week
after its validity window (plus the clock skew) has passed: a replay inside the window is
refused, one after it is refused as expired (the week covers wall-clock jumps). The id is
committed (`synchronous=FULL`) BEFORE the action runs, so a command delivered twice, or again
after a crash or restart, runs at most once.

`commands-audit.jsonl`: one JSON line per command received and per outcome, refused ones
included. Rotated to `.1` at 10 MB so a flood of garbage cannot fill the disk.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.errors import AgentError
from agent.messages import message

log = logging.getLogger(__name__)

DB_NAME = "commands.sqlite"
AUDIT_NAME = "commands-audit.jsonl"
AUDIT_MAX_BYTES = 10_000_000
# Ids are forgotten this long after their window closed, not at once: a wall clock that
# jumps forward (hours, a dead RTC) and is then corrected would otherwise have purged the
# ids of commands that are inside their window again, and a replay would run them twice.
FORGET_AFTER_S = 7 * 86400.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS seen (
    id        TEXT PRIMARY KEY,
    nonce     TEXT NOT NULL UNIQUE,
    action    TEXT NOT NULL,
    keep_until REAL NOT NULL,
    received  REAL NOT NULL,
    status    TEXT NOT NULL
);
"""


class CommandStoreError(AgentError):
    pass


class SeenStore:
    """Thread-safe: the link thread records, the worker thread updates the status."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise CommandStoreError(
                message("command.site.store_cannot_open", path=str(path), error=str(exc)),
                message("command.site.hint.state_dir_writable"),
            ) from None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def remember(
        self, command_id: str, nonce: str, action: str, keep_until: float, now: float
    ) -> str | None:
        """Record a command as seen (durably) and return None; or, when its id or nonce was
        seen before, record nothing and return the earlier command's status."""
        with self._lock:
            self._db.execute("DELETE FROM seen WHERE keep_until < ?", (now - FORGET_AFTER_S,))
            row = self._db.execute(
                "SELECT status FROM seen WHERE id = ? OR nonce = ? LIMIT 1", (command_id, nonce)
            ).fetchone()
            if row is not None:
                return str(row[0])
            self._db.execute(
                "INSERT INTO seen VALUES (?, ?, ?, ?, ?, 'accepted')",
                (command_id, nonce, action, keep_until, now),
            )
            return None

    def interrupted(self) -> list[tuple[str, str]]:
        """(id, action) of commands accepted but never finished: at start-up, those the
        previous run was running when it died (kill -9, power cut, watchdog)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, action FROM seen WHERE status = 'accepted' ORDER BY received"
            ).fetchall()
        return [(str(r[0]), str(r[1])) for r in rows]

    def set_status(self, command_id: str, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE seen SET status = ? WHERE id = ?", (status, command_id))

    def status(self, command_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT status FROM seen WHERE id = ?", (command_id,)).fetchone()
        return None if row is None else str(row[0])


class AuditLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, event: str, **fields: Any) -> None:
        record = {"ts": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "event": event}
        record |= fields
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            try:
                if self.path.exists() and self.path.stat().st_size > AUDIT_MAX_BYTES:
                    os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                with self.path.open("a", encoding="utf-8") as fh:
                    fh.write(line)
            except OSError as exc:
                # The audit must not stop the agent answering: log and go on.
                log.error("cannot write the command audit log %s: %s", self.path, exc)

    def read(self) -> list[dict[str, Any]]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        # "\n" only: splitlines() also splits on U+2028, \x1c... that a refused command's
        # echoed text may carry inside a JSON string.
        lines = text.split("\n")
        if not text.endswith("\n"):
            lines = lines[:-1]  # being written right now: not a whole line yet
        return [json.loads(line) for line in lines if line.strip()]
