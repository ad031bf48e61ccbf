"""The on-disk outbox: every report is committed here before anyone is told it is queued,
and deleted only when the broker has acknowledged it (PUBACK).

SQLite in WAL mode. Durability choice, per operation:
- enqueue, the seq and boot counters: `synchronous=FULL`, so a commit has reached the disk
  (fsync of the WAL) before `put()` returns: a power cut, not only a kill -9, loses nothing
  that was acknowledged as queued. It costs one fsync per report, and the agent makes a few
  reports a minute.
- deleting acknowledged rows: `synchronous=NORMAL` (no fsync). A delete lost in a power cut
  only makes the report go out again: the contract is at-least-once and the centre drops
  duplicates by seq. This keeps the drain of a long backlog from fsyncing every PUBACK.

Bounded in messages and bytes. When full, the oldest `checks` reports are dropped first (they
are superseded by later checks and summarised in `state`); `state` and `attendance` are never
dropped: if nothing else can go, a new `checks` report is dropped instead, and state or
attendance are admitted beyond the bound (logged). Every drop is counted on disk and reported
in `state.outbox.dropped_checks`, so the centre can tell a counted drop from a loss.

Why one file past 400 lines: one SQLite table and its counters, with the durability of each
operation chosen in one place; the transaction helper at the end serves only this file.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from agent.config import Settings
from agent.contract.payloads import Envelope
from agent.contract.topics import OUT_BY_PAYLOAD, TOPICS, topic_for
from agent.errors import TransportError
from agent.messages import message

log = logging.getLogger(__name__)

DROPPABLE = "checks"
FILENAME = "outbox.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq       INTEGER PRIMARY KEY,
    name      TEXT    NOT NULL,
    topic     TEXT    NOT NULL,
    qos       INTEGER NOT NULL,
    retain    INTEGER NOT NULL,
    payload   BLOB    NOT NULL,
    live_boot INTEGER,
    created   REAL    NOT NULL,
    refused   TEXT
);
CREATE INDEX IF NOT EXISTS outbox_by_name ON outbox (name, seq);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('seq', 0), ('boot', 0), ('dropped_checks', 0),
    ('refused_total', 0);
CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""

E = TypeVar("E", bound=Envelope)


@dataclass(frozen=True)
class Row:
    seq: int
    name: str
    topic: str
    qos: int
    retain: bool
    payload: bytes
    live_boot: int | None  # connection that was up when queued; None: queued while down
    created: float
    correlation: bytes | None = None  # MQTT 5 correlation data of a command reply


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    pending_bytes: int
    dropped_checks: int
    refused: int
    oldest_created: float | None
    last_seq: int
    boot: int


class Outbox:
    """Thread-safe: the reporting loop enqueues while the link thread drains."""

    def __init__(
        self,
        path: Path,
        *,
        prefix: str,
        site_id: str,
        max_messages: int,
        max_bytes: int,
    ) -> None:
        self.path = path
        self.prefix = prefix
        self.site_id = site_id
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._inflight: set[int] = set()
        self._live_boot: int | None = None
        self._listeners: list[Callable[[], None]] = []
        self._db = self._open(path)
        count, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM outbox"
        ).fetchone()
        self._count: int = int(count)
        self._bytes: int = int(size)
        self._seq = self._counter("seq")
        self._boot = self._counter("boot")
        self._warned_over_bound = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Outbox:
        return cls(
            settings.paths.state_dir / FILENAME,
            prefix=settings.broker.prefix,
            site_id=settings.site.site_id,
            max_messages=settings.report.outbox_max_messages,
            max_bytes=settings.report.outbox_max_bytes,
        )

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            columns = {row[1] for row in db.execute("PRAGMA table_info(outbox)")}
            if "correlation" not in columns:  # an outbox made before command replies
                db.execute("ALTER TABLE outbox ADD COLUMN correlation BLOB")
            if "aside" not in columns:  # an outbox made before unsendable rows were set aside
                db.execute("ALTER TABLE outbox ADD COLUMN aside INTEGER NOT NULL DEFAULT 0")
        except PermissionError:
            raise TransportError(
                message("outbox.permission", path=str(path)), message("outbox.hint.writable")
            ) from None
        except (sqlite3.Error, OSError) as exc:
            raise TransportError(
                message("outbox.cannot_open", path=str(path), error=str(exc)),
                message("outbox.hint.corrupt"),
            ) from None
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- counters -------------------------------------------------------------------

    def _counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    def _bump(self, name: str, by: int = 1) -> int:
        row = self._db.execute(
            "UPDATE counters SET value = value + ? WHERE name = ? RETURNING value", (by, name)
        ).fetchone()
        return int(row[0])

    def next_boot(self) -> int:
        """A new connection counter, on disk before the CONNECT that carries it goes out.

        When it cannot be written (state_dir full) the link still connects, with the wall
        clock in milliseconds as the counter: above every boot handed out before, saved or not
        (an earlier process may have used unsaved ones too), since the centre ignores an
        `online` whose boot is below the last it saw. The disk catches up at the next write."""
        with self._lock:
            try:
                with self._transaction("FULL"):
                    row = self._db.execute(
                        "UPDATE counters SET value = MAX(value + 1, ?) WHERE name = 'boot' "
                        "RETURNING value",
                        (self._boot + 1,),
                    ).fetchone()
                boot = int(row[0])
            except TransportError as exc:
                boot = max(self._boot + 1, int(time.time() * 1000))
                log.warning("connection counter not saved (using %d): %s", boot, exc)
            self._boot = boot
            return boot

    @property
    def boot(self) -> int:
        return self._boot

    @property
    def last_seq(self) -> int:
        return self._seq

    def set_live_boot(self, boot: int | None) -> None:
        """The link says which connection is up (None: none), to tell live from historical."""
        with self._lock:
            self._live_boot = boot

    def add_listener(self, callback: Callable[[], None]) -> None:
        """Called (without locks held) after every enqueue: the link wakes up to send."""
        self._listeners.append(callback)

    # ---- enqueue --------------------------------------------------------------------

    def put(self, payload: E, *, topic: str | None = None, correlation: bytes | None = None) -> E:
        """Stamp `seq` and `boot`, commit to disk, and only then return the stamped payload.

        `topic` overrides the table's topic (a command's MQTT 5 response topic), and
        `correlation` is sent as the MQTT 5 correlation data (command replies)."""
        name = OUT_BY_PAYLOAD.get(payload.kind, payload.kind)
        spec = TOPICS[name]
        full_topic = topic or topic_for(self.prefix, self.site_id, name)
        if not spec.queued:
            raise ValueError(f"{payload.kind} is not a queued topic")
        with self._lock:
            try:
                with self._transaction("FULL"):
                    seq = self._bump("seq")
                    stamped = payload.model_copy(update={"seq": seq, "boot": self._boot})
                    data = stamped.to_bytes()
                    admitted = self._make_room(len(data), payload.kind)
                    if admitted:
                        self._db.execute(
                            "INSERT INTO outbox (seq, name, topic, qos, retain, payload, "
                            "live_boot, created, correlation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            (
                                seq,
                                payload.kind,
                                full_topic,
                                spec.qos,
                                int(spec.retained),
                                data,
                                self._live_boot,
                                time.time(),
                                correlation,
                            ),
                        )
            except TransportError:
                # _make_room counted evictions that the rollback has undone.
                self._recount()
                raise
        # Counters change only once the commit has succeeded.
        self._seq = seq
        if admitted:
            self._count += 1
            self._bytes += len(data)
        for callback in self._listeners:
            callback()
        return stamped

    def _recount(self) -> None:
        count, size = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(length(payload)), 0) FROM outbox"
        ).fetchone()
        self._count, self._bytes = int(count), int(size)

    def _make_room(self, size: int, kind: str) -> bool:
        """Evict the oldest droppable reports until `size` more bytes fit; False: drop it."""

        def fits() -> bool:
            return self._count + 1 <= self.max_messages and self._bytes + size <= self.max_bytes

        while not fits():
            # Reports in flight are skipped: their PUBACK may already be on its way.
            victims = self._db.execute(
                "SELECT seq, length(payload) FROM outbox WHERE name = ? ORDER BY seq LIMIT ?",
                (DROPPABLE, 64 + len(self._inflight)),
            ).fetchall()
            victims = [(s, n) for s, n in victims if s not in self._inflight]
            if not victims:
                break
            for seq, length in victims:
                self._db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
                self._count -= 1
                self._bytes -= length
                self._bump("dropped_checks")
                if fits():
                    break
        if fits():
            return True
        if kind == DROPPABLE:
            self._bump("dropped_checks")
            log.warning("outbox full of state/attendance: dropped a new checks report")
            return False
        if not self._warned_over_bound:
            log.error(
                "outbox full (%d reports, %d bytes) with nothing droppable: keeping %s anyway",
                self._count,
                self._bytes,
                kind,
            )
            self._warned_over_bound = True
        return True

    # ---- drain ----------------------------------------------------------------------

    def pending(self, after_seq: int, limit: int) -> list[Row]:
        """The next reports to send, in seq order; they count as in flight until acked."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, name, topic, qos, retain, payload, live_boot, created, correlation "
                "FROM outbox WHERE seq > ? AND refused IS NULL ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
            self._inflight.update(r[0] for r in rows)
        return [
            Row(s, n, t, q, bool(r), p, lb, c, None if cd is None else bytes(cd))
            for s, n, t, q, r, p, lb, c, cd in rows
        ]

    def ack(self, seqs: Iterable[int]) -> None:
        """The broker has them: delete (a lost delete only causes a duplicate, see above)."""
        batch = list(seqs)
        if not batch:
            return
        with self._lock:
            freed = 0
            gone = 0
            try:
                with self._transaction("NORMAL"):
                    for seq in batch:
                        row = self._db.execute(
                            "DELETE FROM outbox WHERE seq = ? RETURNING length(payload)", (seq,)
                        ).fetchone()
                        if row is not None:
                            freed += int(row[0])
                            gone += 1
            except TransportError as exc:
                # Even a delete needs room in the WAL. Kept rows are sent again on the next
                # connection: a duplicate, which the centre drops by seq; never a loss.
                log.warning("acknowledged reports not deleted (sent again later): %s", exc)
                freed = gone = 0
            self._inflight.difference_update(batch)
            self._count -= gone
            self._bytes -= freed

    def refuse(self, seq: int, reason: str) -> None:
        """The broker refused it (e.g. ACL): keep it, but stop sending it on this connection."""
        with self._lock:
            try:
                with self._transaction("NORMAL"):
                    self._db.execute("UPDATE outbox SET refused = ? WHERE seq = ?", (reason, seq))
                    self._bump("refused_total")
            except TransportError as exc:
                log.warning("refused report %d not marked (sent again later): %s", seq, exc)
            self._inflight.discard(seq)

    def set_aside(self, seq: int, reason: str) -> None:
        """It can never be sent (paho refuses it): keep it on disk, counted as refused, and never
        offer it again, so one such row cannot stop the queue behind it."""
        with self._lock:
            try:
                with self._transaction("NORMAL"):
                    self._db.execute(
                        "UPDATE outbox SET refused = ?, aside = 1 WHERE seq = ?", (reason, seq)
                    )
                    self._bump("refused_total")
            except TransportError as exc:
                log.warning("unsendable report %d not set aside (offered again): %s", seq, exc)
            self._inflight.discard(seq)

    def release(self) -> None:
        """The connection is gone: nothing is in flight any more."""
        with self._lock:
            self._inflight.clear()

    def retry_refused(self) -> int:
        """On a new connection, give refused reports another chance (the ACL may be fixed)."""
        with self._lock:
            try:
                with self._transaction("NORMAL"):
                    cur = self._db.execute(
                        "UPDATE outbox SET refused = NULL WHERE refused IS NOT NULL AND aside = 0"
                    )
            except TransportError as exc:
                log.warning("refused reports not retried this time: %s", exc)
                return 0
            return cur.rowcount

    # ---- inspection -----------------------------------------------------------------

    def stats(self) -> OutboxStats:
        with self._lock:
            # Rows set aside can never be sent: counted as refused, not as waiting (else the
            # site would show a backlog, oldest months ago, that never drains).
            refused, aside, aside_bytes, oldest = self._db.execute(
                "SELECT COUNT(refused), COALESCE(SUM(aside), 0), "
                "COALESCE(SUM(CASE WHEN aside THEN length(payload) END), 0), "
                "MIN(CASE WHEN aside = 0 THEN created END) FROM outbox"
            ).fetchone()
            return OutboxStats(
                pending=self._count - int(aside),
                pending_bytes=self._bytes - int(aside_bytes),
                dropped_checks=self._counter("dropped_checks"),
                refused=int(refused),
                oldest_created=oldest,
                last_seq=self._seq,
                boot=self._boot,
            )

    def refused_rows(self) -> list[tuple[int, str, str]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, topic, refused FROM outbox WHERE refused IS NOT NULL ORDER BY seq"
            ).fetchall()
        return [(int(s), str(t), str(r)) for s, t, r in rows]

    def all_seqs(self) -> list[int]:
        with self._lock:
            return [int(r[0]) for r in self._db.execute("SELECT seq FROM outbox ORDER BY seq")]

    def get_kv(self, key: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def put_kv(self, key: str, value: bytes) -> None:
        with self._lock, self._transaction("NORMAL"):
            self._db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    # ---- plumbing -------------------------------------------------------------------

    def _transaction(self, synchronous: str) -> _Transaction:
        return _Transaction(self._db, synchronous)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on error), at the given durability."""

    def __init__(self, db: sqlite3.Connection, synchronous: str) -> None:
        self._db = db
        self._synchronous = synchronous

    def __enter__(self) -> None:
        try:
            self._db.execute(f"PRAGMA synchronous={self._synchronous}")
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise TransportError(
                message("outbox.failed", error=str(exc)), message("outbox.hint.disk")
            ) from exc

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as err:
                self._rollback()
                raise TransportError(
                    message("outbox.commit_failed", error=str(err)), message("outbox.hint.disk")
                ) from err
        self._rollback()
        if isinstance(exc, sqlite3.Error):
            # A full disk fails the statements too (SQLITE_FULL), not only the commit.
            raise TransportError(
                message("outbox.write_failed", error=str(exc)), message("outbox.hint.disk")
            ) from exc

    def _rollback(self) -> None:
        # SQLite has already rolled back after some errors (SQLITE_FULL at COMMIT): a second
        # ROLLBACK would raise "no transaction is active" and hide the real error.
        if self._db.in_transaction:
            try:
                self._db.execute("ROLLBACK")
            except sqlite3.Error as err:
                log.warning("outbox: rollback failed: %s", err)
