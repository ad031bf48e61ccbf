"""The durable notification queue: table `notifications` in the centre's database (SQLite
or PostgreSQL, docs/store.md).

A notification is committed here before any attempt to send it, and marked sent only after
its channel took it, so a kill -9 of the centre loses none: at worst the one in flight is
sent again after the restart (at least once; the receiver sees the same idempotency key).
The key is unique: the same event queued twice (an engine restarted, two centre processes)
is one row.

A worker claims what it takes (`due(..., lease_s=)` pushes `next_at` past the send), so
two centre processes sharing the database do not send the same row at once, and a row
claimed by a process that died is taken again when its lease runs out.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from agent.centre.alerts.model import Notification, NotificationStatus
from agent.centre.store.base import open_part, readable

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, body TEXT NOT NULL,
    created_at REAL NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', sent_at REAL,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_at);
CREATE INDEX IF NOT EXISTS notifications_done ON notifications (done_at);
"""

_COLUMNS = "id, body, status, attempts, next_at, last_error, sent_at"


class NotificationQueue:
    """One connection (one thread); open one per thread on the same database file."""

    def __init__(self, db_path: Path | str) -> None:
        """`db_path`: the SQLite file or a PostgreSQL URL (settings.store_location)."""
        self._db = open_part(db_path, "notifications", _SCHEMA)

    def _tx(self) -> contextlib.AbstractContextManager[None]:
        # One writer at a time: a claim reads and writes in one step, never two workers on
        # one row.
        return self._db.transaction()

    def enqueue(self, items: Sequence[Notification]) -> int:
        """Insert what is new by key; the number inserted (a key seen before is ignored)."""
        added = 0
        db = self._db
        with self._tx():
            for n in items:
                body = n.model_copy(update={"id": None}).model_dump_json()
                cur = db.execute(
                    "INSERT INTO notifications (key, body, created_at, status, "
                    "attempts, next_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (n.key, body, n.created_at, NotificationStatus.PENDING, 0, n.next_at),
                )
                added += cur.rowcount
        return added

    @staticmethod
    def _row(row: tuple[object, ...]) -> Notification:
        nid, body, status, attempts, next_at, last_error, sent_at = row
        return Notification.model_validate_json(str(body)).model_copy(
            update={
                "id": nid,
                "status": NotificationStatus(str(status)),
                "attempts": attempts,
                "next_at": next_at,
                "last_error": last_error,
                "sent_at": sent_at,
            }
        )

    def due(self, now: float, limit: int = 100, lease_s: float = 0.0) -> list[Notification]:
        """Pending notifications whose time has come, oldest first. With `lease_s` they are
        claimed: no other call returns them for that long (the send's time, with margin)."""
        db = self._db
        with self._tx():
            rows = db.execute(
                f"SELECT {_COLUMNS} FROM notifications WHERE status = ? AND next_at <= ? "  # noqa: S608 - constant columns
                "ORDER BY next_at, id LIMIT ?",
                (NotificationStatus.PENDING, now, limit),
            ).fetchall()
            if lease_s > 0 and rows:
                db.executemany(
                    "UPDATE notifications SET next_at = ? WHERE id = ?",
                    [(now + lease_s, r[0]) for r in rows],
                )
        return self._readable(rows, now)

    def _readable(self, rows: list[tuple[object, ...]], now: float) -> list[Notification]:
        """The rows as notifications; one this release cannot read (an older build's shape,
        a hand edit) is given up with the reason, not left to come back with its batch at
        every claim, holding the others up for ever."""
        out: list[Notification] = []
        for row in rows:
            try:
                out.append(self._row(row))
            except (ValueError, TypeError) as exc:
                log.error("notification %s unreadable, given up: %s", row[0], exc)
                self.failed(int(str(row[0])), f"unreadable: {str(exc)[:200]}", now)
        return out

    def sent(self, nid: int, at: float) -> None:
        self._db.execute(
            "UPDATE notifications SET status = ?, attempts = attempts + 1, sent_at = ?, "
            "done_at = ?, last_error = '' WHERE id = ?",
            (NotificationStatus.SENT, at, at, nid),
        )

    def retry(self, nid: int, error: str, next_at: float) -> None:
        self._db.execute(
            "UPDATE notifications SET attempts = attempts + 1, last_error = ?, next_at = ? "
            "WHERE id = ? AND status = ?",
            (error, next_at, nid, NotificationStatus.PENDING),
        )

    def failed(self, nid: int, error: str, at: float | None = None) -> None:
        self._db.execute(
            "UPDATE notifications SET status = ?, attempts = attempts + 1, last_error = ?, "
            "done_at = ? WHERE id = ?",
            (NotificationStatus.FAILED, error, time.time() if at is None else at, nid),
        )

    def get(self, nid: int) -> Notification | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM notifications WHERE id = ?",  # noqa: S608 - constant columns
            (nid,),
        ).fetchone()
        return None if row is None else self._row(row)

    def backlog(self) -> int:
        """Notifications not yet sent nor given up."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM notifications WHERE status = ?", (NotificationStatus.PENDING,)
        ).fetchone()
        return int(row[0])

    def recent(self, limit: int = 20) -> list[Notification]:
        """The last notifications sent or given up, newest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM notifications WHERE status != ? "  # noqa: S608 - constant columns
            "ORDER BY done_at DESC, id DESC LIMIT ?",
            (NotificationStatus.PENDING, limit),
        ).fetchall()
        return readable(rows, self._row, "notifications")

    def close(self) -> None:
        self._db.close()
