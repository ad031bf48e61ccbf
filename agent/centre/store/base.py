"""What the centre's stores need from a database, whichever it is (docs/store.md).

The queries are written once, in the SQL both engines take (`?` marks, `INSERT ...
ON CONFLICT DO NOTHING`, upserts with a conflict target, comparisons rather than integers
used as booleans); a backend (sqlite.py, postgres.py) turns the marks into its own, maps the
schema's types and says how a write transaction is taken. What still differs per engine is a
named fragment here (`unindexed`), not an `if` in the queries.

A versioned schema: `schema_version` holds one row per part (the fleet store, the alerts...);
a part's migrations run in one write transaction at open, so two processes opening an older
database at once apply each step once.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

Params = Sequence[Any] | Mapping[str, Any]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Database(ABC):
    """One connection to the centre's database."""

    engine: str  # "sqlite" or "postgresql"
    # Put before a column to keep the planner off its index (SQLite: unary plus).
    unindexed: str = ""

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> Cursor: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def rows(self, sql: str, params: Params = ()) -> list[Mapping[str, Any]]:
        """The result's rows by column name."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction: one writer at a time, as SQLite's BEGIN IMMEDIATE."""

    @abstractmethod
    def rollback(self) -> None:
        """End a transaction a failure left open, so the next one can begin."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def columns(self, table: str) -> set[str]: ...

    @abstractmethod
    def ddl(self, statement: str) -> str:
        """A schema statement in this engine's types."""

    def row(self, sql: str, params: Params = ()) -> Mapping[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def create(self, schema: str) -> None:
        """Run a schema script, statement by statement (inside the caller's transaction:
        SQLite's executescript would commit it)."""
        for statement in schema.split(";"):
            if statement.strip():
                self.execute(self.ddl(statement))

    def add_column(self, table: str, name: str, kind: str) -> bool:
        """Add a column unless the table has it (a database made before the versioned
        schema may have some of a migration's columns); whether it was added."""
        if name in self.columns(table):
            return False
        self.execute(self.ddl(f"ALTER TABLE {table} ADD COLUMN {name} {kind}"))
        return True


Migration = Callable[[Database], None]

_VERSIONS = "CREATE TABLE IF NOT EXISTS schema_version (part TEXT PRIMARY KEY, version INTEGER)"


def migrate(db: Database, part: str, schema: str, migrations: Sequence[Migration]) -> int:
    """Bring `part` to its newest version: `schema` is version 1 (CREATE ... IF NOT EXISTS,
    so a database made before versions existed keeps its tables), `migrations[i]` takes it
    from version i+1 to i+2. The version reached."""
    with db.transaction():
        db.execute(_VERSIONS)
        found = db.row("SELECT version FROM schema_version WHERE part = ?", (part,))
        version = int(found["version"]) if found else 0
        if version == 0:
            db.create(schema)
            version = 1
        newest = len(migrations) + 1
        if version > newest:
            raise SchemaTooNew(part, version, newest)
        for step in migrations[version - 1 :]:
            step(db)
        db.execute(
            "INSERT INTO schema_version (part, version) VALUES (?, ?) ON CONFLICT (part)"
            " DO UPDATE SET version = excluded.version",
            (part, newest),
        )
    return newest


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer edge-agent than this one."""

    def __init__(self, part: str, version: int, newest: int) -> None:
        super().__init__(f"{part}: schema version {version}, this edge-agent knows up to {newest}")
        self.part, self.version, self.newest = part, version, newest


def open_database(where: Path | str) -> Database:
    """The database at `where`: a `postgresql://` URL, else an SQLite file."""
    if isinstance(where, str) and where.startswith(("postgresql://", "postgres://")):
        from agent.centre.store.postgres import PostgreSQL  # noqa: PLC0415 - only with a URL

        return PostgreSQL(where)
    from agent.centre.store.sqlite import SQLite  # noqa: PLC0415 - it imports this module

    return SQLite(Path(where))


_WORD = re.compile(r"\b(REAL|INTEGER)\b")


def map_types(statement: str, types: Mapping[str, str]) -> str:
    return _WORD.sub(lambda m: types.get(m.group(1), m.group(1)), statement)
