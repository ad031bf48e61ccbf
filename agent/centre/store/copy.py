"""`centre store migrate`: copy a store into another (an SQLite file into PostgreSQL), table
by table, in one transaction on the destination: all of it or nothing."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from agent.centre.store.base import Database, StoreError
from agent.messages import message

_BATCH = 1000


def _chunks(rows: Iterator[Any]) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(tuple(row))
        if len(chunk) == _BATCH:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def copy_tables(src: Database, dst: Database, tables: Sequence[str]) -> dict[str, int]:
    """Rows copied per table. The destination's tables must be empty: a copy never merges
    into a store already in use."""
    copied: dict[str, int] = {}
    with dst.transaction():
        for table in tables:
            if dst.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():  # noqa: S608
                raise StoreError(
                    message("store.error.not_empty", table=table), message("store.hint.not_empty")
                )
        for table in tables:
            have = dst.columns(table)
            # In the source's own order (SQLite's rowid): the destination numbers its rows
            # (attendance read in insertion order) the same way.
            cols = ", ".join(c for c in sorted(src.columns(table)) if c in have)
            marks = ", ".join("?" * len(cols.split(", ")))
            n = 0
            rows = src.execute(f"SELECT {cols} FROM {table}{src.insertion_order}")  # noqa: S608
            for chunk in _chunks(iter(rows)):
                dst.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", chunk)  # noqa: S608
                n += len(chunk)
            dst.after_copy(table)
            copied[table] = n
    return copied
