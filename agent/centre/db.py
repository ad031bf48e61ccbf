"""The centre's SQLite database, opened one way by every part that keeps tables in it (the
fleet store, alerts and incidents, contacts, the notification queue).

Autocommit mode with explicit `BEGIN IMMEDIATE` transactions, so two processes sharing the
file serialise their writes instead of failing half-way; WAL, so readers never wait for the
writer; synchronous FULL, so what the centre has said is stored (a report acknowledged to the
broker, a notification queued, an acknowledgement) survives a power cut, not only a kill.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)


def connect(
    path: Path, schema: str, *, any_thread: bool = False, rows: bool = False
) -> sqlite3.Connection:
    """Open (creating the folder and the tables if need be) one connection; `any_thread` for
    a connection handed between threads under the caller's own lock; `rows`: results as
    sqlite3.Row (by column name) rather than tuples."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=not any_thread)
    if rows:
        db.row_factory = sqlite3.Row
    _wal(db)
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


def _wal(db: sqlite3.Connection, wait_s: float = 30.0) -> None:
    """Switch a file to WAL. Several processes opening a new file at once (two centre
    processes started together) race for it, and SQLite answers the loser "database is
    locked" at once, without waiting as it does for a write: wait here instead."""
    end = time.monotonic() + wait_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= end:
                raise
            time.sleep(0.05)


def rollback(db: sqlite3.Connection) -> None:
    """End a transaction a failure left open (SQLite rolls some back by itself: a second
    ROLLBACK would raise), so the next BEGIN does not fail for ever."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        rollback(db)
        raise
