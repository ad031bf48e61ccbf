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

import logging
import re
import sqlite3
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from agent.errors import AgentError, ConfigError
from agent.messages import message

log = logging.getLogger(__name__)
T = TypeVar("T")
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
    error: type[Exception]  # what the driver raises (sqlite3.Error, psycopg.Error)
    # The database's trouble, not a row's: locked past the timeout, disk full, the server
    # gone. Whatever was being written is written again later, never dropped.
    unavailable: type[Exception]
    # Put before a column to keep the planner off its index (SQLite: unary plus).
    unindexed: str = ""
    # Appended to a SELECT to read a table in the order its rows were stored.
    insertion_order: str = ""

    @abstractmethod
    def execute(self, sql: str, params: Params = ()) -> Cursor: ...

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    @abstractmethod
    def rows(self, sql: str, params: Params = ()) -> list[Mapping[str, Any]]:
        """The result's rows by column name."""

    @abstractmethod
    def inserted(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[bool]:
        """Run an `INSERT ... ON CONFLICT DO NOTHING RETURNING ...` once per row, in order;
        per row, whether it was inserted (not a duplicate, also of an earlier row here)."""

    def pipeline(self) -> AbstractContextManager[Any]:
        """Statements sent together, their results awaited once at the end (where the engine
        talks over a socket); the statements inside must not read their results."""
        return nullcontext()

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
    def tables(self) -> set[str]: ...

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

    @abstractmethod
    def after_copy(self, table: str) -> None:
        """After rows were copied in with their ids: numbering goes on after the last."""

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
    newest = len(migrations) + 1
    if _version(db, part) == newest:
        return newest  # the usual open: a read, no write transaction
    with db.transaction():
        db.execute(_VERSIONS)
        version = _version(db, part)
        if version == 0:
            db.create(schema)
            version = 1
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


def _version(db: Database, part: str) -> int:
    """A part's schema version; 0 before it has one (or before any part has)."""
    if not db.columns("schema_version"):
        return 0
    found = db.row("SELECT version FROM schema_version WHERE part = ?", (part,))
    return int(found["version"]) if found else 0


class StoreError(AgentError):
    """The centre's database cannot be opened or written as asked."""


class SchemaTooNew(StoreError):
    """The database was migrated by a newer edge-agent than this one: writing it with older
    columns would lose what the newer one keeps."""

    def __init__(self, part: str, version: int, newest: int) -> None:
        super().__init__(
            message("store.error.too_new", part=part, version=version, newest=newest),
            message("store.hint.too_new"),
        )
        self.part, self.version, self.newest = part, version, newest


def open_database(where: Path | str) -> Database:
    """The database at `where`: a `postgresql://` URL, else an SQLite file."""
    if is_url(where):
        from agent.centre.store.postgres import PostgreSQL  # noqa: PLC0415 - only with a URL

        return PostgreSQL(str(where))
    from agent.centre.store.sqlite import SQLite  # noqa: PLC0415 - it imports this module

    return SQLite(Path(where))


def driver_errors() -> tuple[type[Exception], ...]:
    """What either driver raises (psycopg only where it is installed: the centre extra)."""
    try:
        from agent.centre.store.postgres import PostgreSQL  # noqa: PLC0415 - optional
    except ImportError:
        return (sqlite3.Error,)
    return (sqlite3.Error, PostgreSQL.error)


def unavailable_errors() -> tuple[type[Exception], ...]:
    """What either driver raises when the database, not the data, is the trouble."""
    try:
        from agent.centre.store.postgres import PostgreSQL  # noqa: PLC0415 - optional
    except ImportError:
        return (sqlite3.OperationalError,)
    return (sqlite3.OperationalError, PostgreSQL.unavailable)


def is_url(where: Path | str) -> bool:
    return isinstance(where, str) and where.startswith(("postgresql://", "postgres://"))


def shown(where: Path | str) -> str:
    """The store's location to print or log: a URL without its password (in the user part
    or as a `password=` parameter)."""
    if not is_url(where):
        return str(where)
    parts = urlsplit(str(where))
    netloc = parts.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}@{host}"
    query = urlencode(
        [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "password"],
        safe="/",
    )
    # Not urlunsplit: it drops the `//` of an empty host (a Unix socket's URL).
    return f"{parts.scheme}://{netloc}{parts.path}{'?' + query if query else ''}"


def made(where: Path | str) -> bool:
    """Whether the centre has made its store there yet (`centre serve` makes it): the SQLite
    file exists; the PostgreSQL database has any part's tables. A read that must not create
    one (`centre status` with a wrong --config) asks this first."""
    if not is_url(where):
        return Path(where).exists()
    db = open_database(where)
    try:
        # Any part, as any part's first open makes the SQLite file.
        versions = db.columns("schema_version")
        return bool(versions) and db.row("SELECT 1 FROM schema_version") is not None
    finally:
        db.close()


def existing(where: Path | str) -> Path | str:
    """`where`, once the centre has made its store there; else a clear error rather than a
    new, empty store (a wrong --config)."""
    if not made(where):
        raise ConfigError(
            message("centre.status.no_database", path=shown(where)),
            message("centre.status.no_database_hint"),
        )
    return where


def open_part(
    where: Path | str, part: str, schema: str, migrations: Sequence[Migration] = ()
) -> Database:
    """The database at `where`, with `part`'s tables brought to their newest version."""
    try:
        db = open_database(where)
    except (sqlite3.Error, OSError) as exc:  # PostgreSQL's backend says its own
        raise _cannot_open(where, exc) from None
    try:
        migrate(db, part, schema, migrations)
    except db.error as exc:
        db.close()
        raise _cannot_open(where, exc) from None
    except BaseException:
        db.close()
        raise
    return db


def _cannot_open(where: Path | str, exc: Exception) -> StoreError:
    # The driver's first line names the trouble (locked, read-only, disk full), not the data.
    problem = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StoreError(
        message("store.error.open", where=shown(where), problem=problem),
        message("store.hint.open"),
    )


_WORD = re.compile(r"\b(REAL|INTEGER)\b")


def map_types(statement: str, types: Mapping[str, str]) -> str:
    return _WORD.sub(lambda m: types.get(m.group(1), m.group(1)), statement)


def readable(rows: Iterable[Any], parse: Callable[[Any], T], what: str) -> list[T]:
    """The rows this release can read; one it cannot (a newer release's kind, a hand edit) is
    logged and left out, never a reason for a loop or a page to stop."""
    out: list[T] = []
    for row in rows:
        try:
            out.append(parse(row))
        except (ValueError, TypeError, KeyError) as exc:
            log.warning("%s: a row of the database left out, unreadable: %s", what, exc)
    return out


class Outage:
    """The database away, seen by a loop that retries it (the ingest every second, the page,
    the alerts): said once when it begins and once when it ends, the retries between at debug
    level, so the journal keeps one line per outage and not one per retry."""

    def __init__(self, logger: logging.Logger) -> None:
        self._log = logger
        self.since: float | None = None  # wall-clock time it began; None while all is well
        self.back_at: float | None = None  # wall-clock time the last one ended

    def failed(self, msg: str, *args: object) -> None:
        if self.since is None:
            self.since = time.time()
            self._log.error(msg, *args)
        else:
            self._log.debug(msg, *args)

    def ended(self, msg: str) -> None:
        """`msg` takes the outage's length in seconds (one %-format field)."""
        if self.since is None:
            return
        self._log.warning(msg, time.time() - self.since)
        self.since, self.back_at = None, time.time()

    def steady(self, for_s: float, now: float) -> bool:
        """No outage now, nor one that ended in the last `for_s`."""
        return self.since is None and (self.back_at is None or now - self.back_at >= for_s)
