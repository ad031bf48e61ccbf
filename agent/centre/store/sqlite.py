"""The SQLite backend: the file agent/centre/db.py opens for every part (WAL, FULL, explicit
BEGIN IMMEDIATE). SQLite takes the shared SQL as written: `?` marks, REAL and INTEGER, an
`INTEGER PRIMARY KEY` that numbers itself."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from agent.centre import db
from agent.centre.store.base import Cursor, Database, Params


class SQLite(Database):
    engine = "sqlite"
    error = sqlite3.Error
    unavailable = sqlite3.OperationalError
    unindexed = "+"
    insertion_order = " ORDER BY rowid"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = db.connect(path, "", any_thread=True)

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def inserted(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[bool]:
        # In-process calls: one statement per row costs no round trip.
        return [bool(self.conn.execute(sql, row).fetchall()) for row in rows]

    def rows(self, sql: str, params: Params = ()) -> list[Mapping[str, Any]]:
        cur = self.conn.execute(sql, params)
        cur.row_factory = sqlite3.Row
        return list(cur.fetchall())

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with db.transaction(self.conn):
            yield

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self._transaction()

    def rollback(self) -> None:
        db.rollback(self.conn)

    def close(self) -> None:
        self.conn.close()

    def tables(self) -> set[str]:
        rows = self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
        return {r[0] for r in rows}

    def columns(self, table: str) -> set[str]:
        return {r[1] for r in self.conn.execute(f"PRAGMA table_info({table})")}

    def after_copy(self, table: str) -> None:
        return None  # an INTEGER PRIMARY KEY goes on from the largest id by itself

    def ddl(self, statement: str) -> str:
        return statement
