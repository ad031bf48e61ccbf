"""The PostgreSQL backend (psycopg 3), for a centre of several processes or hosts sharing one
store (docs/store.md).

Differences from SQLite, all here: `%s` marks where the shared SQL has `?` (and `%(name)s`
for `:name`); DOUBLE PRECISION for REAL (PostgreSQL's REAL is 4 bytes: an epoch time would
lose its seconds) and BIGINT for INTEGER; an identity column where SQLite's `INTEGER PRIMARY
KEY` numbers rows, and a `rowid` identity on the tables read in insertion order. A write
transaction takes one advisory lock for its duration, so writers queue one after another
exactly as SQLite's BEGIN IMMEDIATE makes them (the ingest's read-then-write of a site's row,
the live revision counter), while readers never wait.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row

from agent.centre.store.base import Cursor, Database, Params, StoreError, map_types, shown
from agent.messages import message

log = logging.getLogger(__name__)
T = TypeVar("T")
CONNECT_TIMEOUT_S = 10
_TYPES = {"REAL": "DOUBLE PRECISION", "INTEGER": "BIGINT"}
# One number for every write transaction of the centre's store (any fixed bigint would do).
WRITE_LOCK = 0x6564_6765  # "edge"
_NAMED = re.compile(r"(?<![:\w]):(\w+)")
_ROWID_TABLES = ("attendance",)


@functools.lru_cache(maxsize=512)
def _marks(sql: str) -> str:
    """The shared SQL with psycopg's placeholders (no literal in our SQL holds `?` or `:`)."""
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%").replace("?", "%s"))


class PostgreSQL(Database):
    engine = "postgresql"
    error = psycopg.Error
    unavailable = psycopg.OperationalError

    def __init__(self, url: str, application_name: str = "edge-agent") -> None:
        self.url = url
        self._name = application_name
        self._closed = False
        self._in_transaction = False
        try:
            self._conn = self._connect()
        except psycopg.Error as exc:
            # The driver's text names host and database, never the URL's password.
            raise StoreError(
                message("store.error.connect", problem=str(exc).strip().splitlines()[0]),
                message("store.hint.connect"),
            ) from None

    def _connect(self) -> psycopg.Connection[Any]:
        # Autocommit with explicit transactions, as the SQLite side: a read outside
        # transaction() holds no snapshot open between batches. A bounded wait for a server
        # that does not answer, unless the URL says otherwise.
        extra: dict[str, Any] = {}
        if "application_name=" not in self.url:  # a lock's session names its holder there
            extra["application_name"] = self._name
        if "connect_timeout" not in self.url:
            extra["connect_timeout"] = CONNECT_TIMEOUT_S
        return psycopg.connect(self.url, autocommit=True, **extra)

    @property
    def conn(self) -> psycopg.Connection[Any]:
        """The connection; a new one once the server dropped the last (restarted, failed
        over): psycopg's connection is dead for good then, and every part of the centre
        (ingest, page, alerts) goes on by itself when the server is back. While it is away
        this raises psycopg.OperationalError (`unavailable`), as the lost query did."""
        # Not inside a transaction: its earlier statements died with the old connection, so
        # the dead one answers (psycopg's "the connection is closed").
        if self._conn.closed and not self._closed and not self._in_transaction:
            self._conn = self._connect()
            log.info("store: connected to PostgreSQL again (%s)", shown(self.url))
        return self._conn

    def _again(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`work` on the connection; once more on a new one when the old turns out dead only
        now (an idle connection learns of a server restart at its next query), unless inside
        a transaction, whose earlier statements died with it: that one fails, and its caller
        writes it again."""
        try:
            return work(self.conn)
        except psycopg.OperationalError:
            if self._in_transaction or not self._conn.closed:
                raise
        return work(self.conn)

    def execute(self, sql: str, params: Params = ()) -> Cursor:
        return self._again(lambda conn: conn.execute(_marks(sql), params))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        def many(conn: psycopg.Connection[Any]) -> None:
            with conn.cursor() as cur:
                cur.executemany(_marks(sql), rows)

        self._again(many)

    def inserted(self, sql: str, rows: Sequence[Sequence[Any]]) -> list[bool]:
        def many(conn: psycopg.Connection[Any]) -> list[bool]:
            # One pipeline for every row; a result set per row, empty for a duplicate.
            with conn.cursor() as cur:
                cur.executemany(_marks(sql), rows, returning=True)
                out = [cur.fetchone() is not None]
                while cur.nextset():
                    out.append(cur.fetchone() is not None)
                return out

        return self._again(many) if rows else []

    def pipeline(self) -> contextlib.AbstractContextManager[Any]:
        return self.conn.pipeline()

    def rows(self, sql: str, params: Params = ()) -> list[Mapping[str, Any]]:
        def read(conn: psycopg.Connection[Any]) -> list[Mapping[str, Any]]:
            with conn.cursor(row_factory=dict_row) as cur:
                cur.execute(_marks(sql), params)
                return list(cur.fetchall())

        return self._again(read)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        def begin(conn: psycopg.Connection[Any]) -> None:
            with conn.pipeline():  # one round trip for both
                conn.execute("BEGIN")
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))

        try:
            self._again(begin)
        except BaseException:
            self.rollback()
            raise
        self._in_transaction = True
        try:
            yield
            self.conn.execute("COMMIT")
        except BaseException:
            self.rollback()
            raise
        finally:
            self._in_transaction = False

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self._transaction()

    def rollback(self) -> None:
        if self._conn.closed:
            return  # the server's side of it ended with the connection
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):
                self.conn.execute("ROLLBACK")

    def close(self) -> None:
        self._closed = True
        self._conn.close()

    def tables(self) -> set[str]:
        rows = self.conn.execute(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
        return {r[0] for r in rows}

    def columns(self, table: str) -> set[str]:
        rows = self.conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s",
            (table,),
        )
        return {r[0] for r in rows}

    def after_copy(self, table: str) -> None:
        if "id" not in self.columns(table):
            return
        sequence = self.conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
        if sequence and sequence[0]:  # an identity id (a contact's id is its own text)
            self.conn.execute(
                f"SELECT setval(%s, coalesce(max(id), 0) + 1, false) FROM {table}",  # noqa: S608
                (sequence[0],),
            )

    def ddl(self, statement: str) -> str:
        out = (
            map_types(statement, _TYPES)
            .replace(" AUTOINCREMENT", "")
            .replace(
                "id BIGINT PRIMARY KEY", "id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
            )
        )
        for table in _ROWID_TABLES:
            # Last, so an INSERT without a column list fills the others as on SQLite.
            if f"CREATE TABLE IF NOT EXISTS {table} (" in out:
                body = out.rstrip()
                out = body[:-1] + ", rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE)"
        return out
