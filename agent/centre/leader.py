"""One leader among the centre processes sharing a store (docs/scaling.md, "The leader").

Several `centre serve` processes may share the store and the broker's shared subscription:
each stores the reports it is given and serves the page. Work that must happen once (the
alert engine's evaluation, the silence and condition sweep, retention pruning, marking
overdue page commands `no_answer`, the dead-man ping) runs only in the process that leads.

The store chooses how a leader is elected:
- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock(LOCK_KEY)`) held on a
  connection of its own. The server drops it when that session ends: the process killed
  (its socket closes at once), its backend terminated, or its host gone (the session's TCP
  keepalives, set short here, end it within SERVER_GONE_S). Over TCP the client side has
  keepalives and a `tcp_user_timeout` too, so a leader cut off from the database notices
  within CLIENT_GONE_S and steps down rather than act on a lock it may no longer hold.
- SQLite: an exclusive `flock` on `<db>.leader.lock` beside the database (one host; the kernel
  drops it when the process dies).

A process that does not lead tries again every TRY_EVERY_S; the leader checks its connection
at each tick (TICK_S) and steps down at once when it is gone. The leader records who it is
(instance, host, pid, since) in the store, refreshed every RECORD_EVERY_S, so `centre status`
and the page can say who leads; a record older than STALE_S is a leader that died.

The decisions (when to try, when to step down) are pure functions (`due`, `after`), apart
from the I/O (`PgLock`, `_FileLock`), and tested directly.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from agent.centre.store.base import Database, StoreError, open_database, open_part

log = logging.getLogger(__name__)

# The advisory lock's number (any fixed bigint; not the store's WRITE_LOCK).
LOCK_KEY = 0x6564_6C64  # "edld"
TICK_S = 0.5
TRY_EVERY_S = 1.0
RECORD_EVERY_S = 5.0
STALE_S = 3 * RECORD_EVERY_S
# Over TCP. Client side: a query unanswered for CLIENT_GONE_S fails (tcp_user_timeout), and
# an idle link is probed (keepalives) so a dead path is seen without a query.
CLIENT_GONE_S = 3
CONNECT_TIMEOUT_S = 3
# Server side, set for the lock's session only: idle 2 s, then 3 probes 1 s apart, so a dead
# leader host's session (and its lock) ends within SERVER_GONE_S.
_SERVER_KEEPALIVE = {"tcp_keepalives_idle": 2, "tcp_keepalives_interval": 1,
                     "tcp_keepalives_count": 3}  # fmt: skip
SERVER_GONE_S = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS centre_leader (
    role TEXT PRIMARY KEY, instance TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    since REAL NOT NULL, updated REAL NOT NULL
)
"""
_ROLE = "leader"


# ---- the pure decisions ------------------------------------------------------------------


class Change(enum.Enum):
    NONE = "none"
    LEADS = "leads"
    STEPPED_DOWN = "stepped down"


@dataclass(frozen=True)
class State:
    leading: bool = False
    next_try: float = 0.0  # monotonic: when a follower tries the lock again


def due(state: State, now: float) -> bool:
    """Whether to touch the database at this tick: the leader checks its connection every
    tick (it must stop acting as soon as it is gone); a follower tries every TRY_EVERY_S."""
    return state.leading or now >= state.next_try


def after(state: State, now: float, holds: bool) -> tuple[State, Change]:
    """The state once the lock was found held (or not) at `now`, and the change to tell."""
    if holds:
        return State(True, now), Change.NONE if state.leading else Change.LEADS
    following = State(False, now + TRY_EVERY_S)
    return following, Change.STEPPED_DOWN if state.leading else Change.NONE


# ---- the locks -----------------------------------------------------------------------------


class _Lock(Protocol):
    def acquire(self) -> bool: ...  # one try; True: held now
    def check(self) -> bool: ...  # still held (the connection that holds it is alive)
    def release(self) -> None: ...


def _is_tcp(url: str) -> bool:
    """Whether libpq reaches this URL over TCP (a host that is not a socket directory)."""
    parts = urlsplit(url)
    hosts = [parts.hostname or "", *parse_qs(parts.query).get("host", [])]
    if not any(hosts):
        hosts = [os.environ.get("PGHOST", "")]  # libpq's default when the URL names none
    return any(h and not h.startswith(("/", "@")) for hs in hosts for h in hs.split(","))


def lock_url(url: str, name: str = "") -> str:
    """The URL of the lock's connection: a connect timeout, and over TCP keepalives and a
    tcp_user_timeout, unless the URL sets its own; `name` its application_name (who holds a
    lock, as another process reads it in pg_stat_activity)."""
    options: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if name:
        options["application_name"] = name
    if _is_tcp(url):
        options |= {"keepalives": 1, "keepalives_idle": 1, "keepalives_interval": 1,
                    "keepalives_count": CLIENT_GONE_S,
                    "tcp_user_timeout": CLIENT_GONE_S * 1000}  # fmt: skip
    given = parse_qs(urlsplit(url).query)
    added = urlencode({k: v for k, v in options.items() if k not in given}, quote_via=quote)
    return f"{url}{'&' if '?' in url else '?'}{added}" if added else url


# A session-level advisory lock shows in pg_locks as (classid, objid, objsubid): on one bigint
# its high and low 32 bits and 1, on two int4 keys the two (as unsigned) and 2.
_HELD = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND classid = ? AND objid = ? AND objsubid = ? AND pid = pg_backend_pid())"
)
_HOLDER = (
    "SELECT a.application_name FROM pg_stat_activity a WHERE a.pid IN (SELECT pid FROM pg_locks"
    " WHERE locktype = 'advisory' AND granted AND classid = ? AND objid = ? AND objsubid = ?)"
)


class PgLock:
    """The lock's own session, through the store's PostgreSQL backend (the one psycopg user).
    `key`: the leader's bigint, or two int4 keys (the serve locks, centre/instance_lock.py);
    `name`: the session's application_name, which `holder()` reads back."""

    def __init__(self, url: str, key: int | tuple[int, int] = LOCK_KEY, name: str = "") -> None:
        self.url = lock_url(url, name)
        self.db: Database | None = None
        self._key = (key,) if isinstance(key, int) else key
        self._try = f"SELECT pg_try_advisory_lock({', '.join('?' * len(self._key))})"
        if isinstance(key, int):
            self._where = ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF, 1)
        else:
            self._where = (key[0] & 0xFFFFFFFF, key[1] & 0xFFFFFFFF, 2)

    def acquire(self) -> bool:
        if self.db is None:
            try:
                self.db = open_database(self.url)
            except StoreError as exc:
                log.debug("leader: cannot reach the database: %s", exc)
                return False
        try:
            for name, value in _SERVER_KEEPALIVE.items():
                self.db.execute(f"SET {name} = {int(value)}")
            row = self.db.execute(self._try, self._key).fetchone()
        except self.db.error as exc:
            log.debug("leader: cannot try the lock: %s", exc)
            self.release()
            return False
        return bool(row and row[0])

    def check(self) -> bool:
        """Whether this connection's session holds the lock. Asked of the server, not taken
        from the query succeeding: the store's connection reopens itself after the server
        dropped it, and a new session holds nothing."""
        if self.db is None:
            return False
        try:
            row = self.db.execute(_HELD, self._where).fetchone()
        except self.db.error:
            row = None
        if not (row and row[0]):
            self.release()
            return False
        return True

    def holder(self) -> str | None:
        """The application_name of the session that holds the lock (not this one's, which
        asks after acquire() found it taken); None when nobody holds it or the query fails."""
        if self.db is None:
            return None
        try:
            row = self.db.execute(_HOLDER, self._where).fetchone()
        except self.db.error:
            return None
        return str(row[0]) if row else None

    def backend_pid(self) -> int | None:
        if self.db is None:
            return None
        row = self.db.execute("SELECT pg_backend_pid()").fetchone()
        return int(row[0]) if row else None

    def release(self) -> None:
        if self.db is not None:
            with contextlib.suppress(Exception):
                self.db.close()  # the session ends: the server drops the lock
            self.db = None


def lock_path(db_path: Path) -> Path:
    return db_path.with_name(f"{db_path.name}.leader.lock")


class _FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        if self.fd is not None:
            return True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            log.debug("leader: cannot open %s: %s", self.path, exc)
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return True

    def check(self) -> bool:
        return self.fd is not None  # the kernel holds it while the file is open

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # the kernel drops the lock: another process may lead
            self.fd = None


def _is_pg(location: Path | str) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def _lock_for(location: Path | str) -> _Lock:
    if isinstance(location, str) and _is_pg(location):
        return PgLock(location)
    return _FileLock(lock_path(Path(location)))


# ---- who leads -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Leader:
    instance: str
    host: str
    pid: int
    since: float

    def to_json(self) -> dict[str, object]:
        return {"instance": self.instance, "host": self.host, "pid": self.pid,
                "since": self.since}  # fmt: skip


def open_record(location: Path | str) -> Database:
    return open_part(location, "centre_leader", _SCHEMA)


def read(db: Database, now: float) -> Leader | None:
    """Who leads, as recorded; None when nobody does (or the record is a dead leader's)."""
    if not db.columns("centre_leader"):
        return None  # no serve has led on this database yet
    row = db.row(
        "SELECT instance, host, pid, since FROM centre_leader WHERE role = ? AND updated >= ?",
        (_ROLE, now - STALE_S),
    )
    if row is None:
        return None
    return Leader(str(row["instance"]), str(row["host"]), int(row["pid"]), float(row["since"]))


# ---- the process's leadership ------------------------------------------------------------


class Leadership:
    """This process's part in the election: `start()` a thread that keeps it up to date, then
    `is_leader()` (a read of one attribute) wherever once-only work is decided."""

    def __init__(
        self,
        location: Path | str,
        instance: str = "",
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.location = location
        # The record's connection is bounded as the lock's is: a write to a database gone
        # silent must not hold up the check that steps a cut-off leader down.
        self._record_at = (
            lock_url(location) if isinstance(location, str) and _is_pg(location) else location
        )
        self.me = Leader(instance, socket.gethostname(), os.getpid(), 0.0)
        self._lock = _lock_for(location)
        self._clock = clock
        self._state = State()
        self._mutex = threading.Lock()
        self._record: Database | None = None
        self._recorded = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Bumped at each taking of the lead: work that keeps state in memory (the alert
        # engine's pending groups) starts again from the store when it changes.
        self.term = 0

    def is_leader(self) -> bool:
        return self._state.leading

    def poll(self) -> bool:
        """One tick: try the lock or check it, as due; whether this process leads."""
        with self._mutex:
            now = self._clock()
            if due(self._state, now):
                holds = self._lock.check() if self._state.leading else self._lock.acquire()
                self._state, change = after(self._state, now, holds)
                self._tell(change)
            if self._state.leading:
                self._keep_record(time.time())
            return self._state.leading

    def _tell(self, change: Change) -> None:
        where = f"instance {self.me.instance or '-'}, host {self.me.host}, pid {self.me.pid}"
        if change is Change.LEADS:
            self.term += 1
            self.me = Leader(self.me.instance, self.me.host, self.me.pid, time.time())
            self._recorded = 0.0
            log.info("centre: this process leads (%s)", where)
        elif change is Change.STEPPED_DOWN:
            log.warning("centre: stepped down: lost the connection that held the lead (%s)", where)

    def _keep_record(self, now: float) -> None:
        """Who leads, in the store (refreshed: a stale record is a dead leader's)."""
        if now - self._recorded < RECORD_EVERY_S:
            return
        me = self.me
        try:
            if self._record is None:
                self._record = open_record(self._record_at)
            self._record.execute(
                "INSERT INTO centre_leader (role, instance, host, pid, since, updated)"
                " VALUES (?,?,?,?,?,?) ON CONFLICT (role) DO UPDATE SET"
                " instance = excluded.instance, host = excluded.host, pid = excluded.pid,"
                " since = excluded.since, updated = excluded.updated",
                (_ROLE, me.instance, me.host, me.pid, me.since, now),
            )
            self._recorded = now
        except Exception as exc:  # a busy or lost database: the record waits, the lead not
            log.warning("centre: cannot record who leads: %s", exc)
            self._drop_record()

    def _drop_record(self) -> None:
        if self._record is not None:
            with contextlib.suppress(Exception):
                self._record.close()
            self._record = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:  # never let the election thread die
                log.error("centre: leader election failed, trying again: %r", exc)
            self._stop.wait(TICK_S)

    def start(self) -> Leadership:
        self._thread = threading.Thread(target=self._run, name="centre-leader", daemon=True)
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self) -> None:
        """Give the lead up (another process takes it at its next try) and forget the record."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        with self._mutex:
            if self._state.leading:
                with contextlib.suppress(Exception):
                    if self._record is None:
                        self._record = open_record(self._record_at)
                    self._record.execute(
                        "DELETE FROM centre_leader WHERE role = ? AND host = ? AND pid = ?",
                        (_ROLE, self.me.host, self.me.pid),
                    )
                log.info("centre: stepped down: stopping")
            self._state = State()
            self._lock.release()
            self._drop_record()


__all__ = ["LOCK_KEY", "Leader", "Leadership", "State", "after", "due", "lock_path", "read"]
