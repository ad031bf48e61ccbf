"""The fleet database (SQLite, WAL): sites, the roster of expected sites, the latest state
of each component, report history with its verdicts, attendance samples, seq gaps and
condition changes.

Everything the centre knows lives here, committed per batch, so a restart (or a second
centre process on the same host, sharing the load) loses nothing. Each report is keyed by
(site_id, seq): a duplicate (at-least-once delivery, a retained state seen again) is caught by
the key and changes nothing.

The same store on SQLite (a file, the default) or PostgreSQL (`db_url`, several centre
processes sharing it): the queries here are written once in the SQL both take; what differs
per engine lives in store/sqlite.py and store/postgres.py (docs/store.md).

Why one file past 400 lines: the schema, its forward migrations and every query that reads
or writes it sit together, so a column is changed in one place; the accounts' tables are
apart (centre/web/accounts.py).
"""

from __future__ import annotations

import contextlib
import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from agent.centre import fleet, seqs
from agent.centre.store.base import Database, Migration, open_part
from agent.contract.payloads import (
    AttendancePayload,
    AvailabilityPayload,
    ChecksPayload,
    Envelope,
    LiveEventPayload,
    LivePayload,
    MetaPayload,
    StatePayload,
)
from agent.messages import Message, dump_message, load_message
from agent.schedule.model import SchedulePayload

# A live state only moves the `rev` (what the page's watch re-reads) when one of these changes:
# the figures alone, republished every minute, do not.
_LIVE_KEYS = ("session_id", "verdict", "since", "reason", "reason_msg", "hint", "hint_msg")

SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (
    site_id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', tier TEXT NOT NULL DEFAULT 'commune',
    parent TEXT, expected INTEGER, agent_version TEXT, check_interval_s REAL, heartbeat_s REAL,
    availability TEXT, avail_boot INTEGER, avail_ts REAL, avail_reason TEXT NOT NULL DEFAULT '',
    last_seen REAL, verdict TEXT, state_seq INTEGER, state_ts REAL, state_cause TEXT,
    state_retained INTEGER NOT NULL DEFAULT 0, pending INTEGER,
    next_seq INTEGER, dropped_base INTEGER, dropped_last INTEGER, condition TEXT,
    cond_since REAL
);
CREATE TABLE IF NOT EXISTS roster (
    site_id TEXT PRIMARY KEY, name TEXT NOT NULL, tier TEXT NOT NULL, parent TEXT,
    summoned INTEGER, added_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS regions (
    region TEXT PRIMARY KEY, up INTEGER NOT NULL, since REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS components (
    site_id TEXT NOT NULL, component TEXT NOT NULL, status TEXT NOT NULL,
    reason TEXT NOT NULL, hint TEXT NOT NULL, reason_msg TEXT, hint_msg TEXT,
    PRIMARY KEY (site_id, component)
);
CREATE TABLE IF NOT EXISTS metrics (
    site_id TEXT NOT NULL, component TEXT NOT NULL, ts REAL NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (site_id, component)
);
CREATE TABLE IF NOT EXISTS reports (
    site_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, ts REAL NOT NULL,
    stored_at REAL NOT NULL, historical INTEGER NOT NULL, verdict TEXT,
    PRIMARY KEY (site_id, seq)
);
CREATE INDEX IF NOT EXISTS reports_by_time ON reports (stored_at);
CREATE TABLE IF NOT EXISTS attendance (
    site_id TEXT NOT NULL, seq INTEGER NOT NULL, session_id TEXT, ts REAL NOT NULL,
    count INTEGER, expected INTEGER, peak INTEGER, median REAL, detector TEXT,
    historical INTEGER NOT NULL, PRIMARY KEY (site_id, seq)
);
CREATE INDEX IF NOT EXISTS attendance_by_session ON attendance (session_id, site_id);
CREATE TABLE IF NOT EXISTS gaps (
    site_id TEXT NOT NULL, first INTEGER NOT NULL, last INTEGER NOT NULL,
    detected_at REAL NOT NULL, filled INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (site_id, first)
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, site_id TEXT NOT NULL, old TEXT, new TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS live (
    site_id TEXT PRIMARY KEY, session_id TEXT, session_title TEXT NOT NULL DEFAULT '',
    session_start REAL, session_end REAL, verdict TEXT, since REAL,
    reason TEXT NOT NULL DEFAULT '', hint TEXT NOT NULL DEFAULT '', reason_msg TEXT,
    hint_msg TEXT, seq INTEGER NOT NULL, ts REAL NOT NULL, rev INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS live_by_rev ON live (rev);
CREATE TABLE IF NOT EXISTS schedule (
    scope TEXT PRIMARY KEY, issued_at REAL, body TEXT NOT NULL, stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS live_events (
    site_id TEXT NOT NULL, seq INTEGER NOT NULL, session_id TEXT NOT NULL, ts REAL NOT NULL,
    before TEXT, after TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', reason_msg TEXT,
    historical INTEGER NOT NULL, PRIMARY KEY (site_id, seq)
);
CREATE INDEX IF NOT EXISTS live_events_by_session ON live_events (session_id, site_id);
CREATE TABLE IF NOT EXISTS live_media (
    site_id TEXT NOT NULL, session_id TEXT NOT NULL, minute INTEGER NOT NULL, ts REAL NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (session_id, site_id, minute)
);
"""
# Columns added since a release (schema version 1 → 2): a database made before gets them.
_ADDED_COLUMNS = {
    "sites": {"heartbeat_s": "REAL", "cond_since": "REAL"},
    # The reason and hint as messages (JSON), when the site sent them.
    "components": {"reason_msg": "TEXT", "hint_msg": "TEXT"},
    # The regional broker a site connects to (docs/brokers.md), from the roster.
    "roster": {"region": "TEXT"},
}
# Filled once when the column is added: an older database knows it from its events.
_BACKFILL = {
    ("sites", "cond_since"): "UPDATE sites SET cond_since = "
    "(SELECT max(at) FROM events e WHERE e.site_id = sites.site_id AND e.new = sites.condition)",
}


def _v2_added_columns(db: Database) -> None:
    # Column by column: a database made before the versioned schema may have some of them.
    for table, columns in _ADDED_COLUMNS.items():
        have = db.columns(table)
        for name, kind in columns.items():
            if (
                db.add_column(table, name, kind)
                and (table, name) in _BACKFILL
                and ("condition" in have)
            ):
                db.execute(_BACKFILL[table, name])


# The fleet store's schema: SCHEMA is version 1, each step here the next version.
MIGRATIONS: list[Migration] = [_v2_added_columns]
# The interval a site is judged by (fleet.silent_window, in SQL for the periodic scan):
# the heartbeat its meta promises, else its check interval capped by the centre's default.
_INTERVAL_SQL = (
    "coalesce(heartbeat_s, CASE WHEN check_interval_s < :d THEN check_interval_s ELSE :d END)"
)
_MAYBE_SILENT = (  # built from constants only
    "SELECT site_id FROM sites"  # noqa: S608
    # Unreachable too: a cut region's sites are judged again when its bridge state changes
    # (Store._region touches them all), not re-read by every sweep while it is down.
    " WHERE coalesce(condition, '') NOT IN ('silent', 'offline', 'never_seen', 'unreachable')"
    f" AND (coalesce(last_seen, 0) < :now - :k * {_INTERVAL_SQL}"
    f"  OR (state_retained != 0 AND state_ts < :now - :k * {_INTERVAL_SQL}))"
)


# A site as the page and `centre status` see it: what it reported, overridden by the roster
# where the roster lists it (the province's official list: its names, tiers and parents are
# the ones the operator knows, whatever a site's own settings say).
_SITES_SQL = (
    "SELECT sites.*, roster.name AS r_name, roster.tier AS r_tier, roster.parent AS r_parent,"
    " roster.summoned AS r_summoned, roster.region AS r_region, regions.up AS reg_up,"
    " regions.since AS reg_since FROM sites LEFT JOIN roster USING (site_id)"
    " LEFT JOIN regions ON regions.region = roster.region"
)


@dataclass(frozen=True)
class RosterEntry:
    """One expected site of the province's list (`centre sites import`)."""

    site_id: str
    name: str
    tier: str
    parent: str | None
    summoned: int | None
    region: str | None = None  # the regional broker it connects to (bridged brokers)


@dataclass(frozen=True)
class RegionState:
    """A regional broker's bridge to the central broker, as its state topic said: up or
    down since `at` (docs/brokers.md)."""

    region: str
    up: bool
    at: float


class Summoned(NamedTuple):
    tier: str
    expected: int | None  # people summoned at the site
    from_roster: bool = False  # the roster's number (else the site's own expected_attendance)


class Recorded(NamedTuple):
    condition: str | None
    since: float | None
    pending: int | None  # reports queued at the site, from its latest state


@dataclass(frozen=True)
class RosterChange:
    added: int
    updated: int
    removed: list[str]


@dataclass(frozen=True)
class Incoming:
    payload: Envelope
    retained: bool
    received_at: float


@dataclass(frozen=True)
class PublishedSchedule:
    """The schedule the centre itself published (retained), as the ingest read it back: the
    alert rules know the sessions from it without a broker round trip per evaluation."""

    scope: str  # "" every site (`<prefix>/schedule`), else the site id
    payload: SchedulePayload
    received_at: float


@dataclass(frozen=True)
class Event:
    at: float
    site_id: str
    old: str | None
    new: str
    detail: str


@dataclass(frozen=True)
class LiveEventRow:
    site_id: str
    session_id: str
    ts: float
    before: str | None
    after: str
    reason: str
    reason_msg: Message | None


@dataclass(frozen=True)
class AttendanceRow:
    site_id: str
    session_id: str | None
    ts: float
    count: int | None
    expected: int | None
    peak: int | None
    median: float | None


def _only(site_ids: Iterable[str] | None) -> tuple[str, tuple[str, ...]]:
    """A WHERE clause for some sites (None: all). `IN (?,?,...)` on both engines: PostgreSQL's
    `= ANY(?)` with one array parameter would be one query text whatever the number, yet
    measured slower (bench/ingest_store.py: a batch took twice as long with it)."""
    if site_ids is None:
        return "", ()
    ids = tuple(site_ids)
    return f" WHERE site_id IN ({','.join('?' * len(ids))})", ids


def _one_site(site_id: str | None) -> tuple[str, tuple[str, ...]]:
    """An `AND` for one site (None: all); two texts rather than `? IS NULL OR site_id = ?`,
    whose NULL PostgreSQL cannot type."""
    return ("", ()) if site_id is None else (" AND site_id = ?", (site_id,))


def _has_report(p: Envelope) -> bool:
    """Whether a payload is kept in the report history (keyed by site and seq): all but a
    site's availability and meta."""
    return not isinstance(p, AvailabilityPayload | MetaPayload)


class _Writes:
    """One ingest batch (Store.apply_batch): what it needs read at once, in a few statements
    rather than several per report, and its writes held until the end, rows of one kind
    together. The site and live rows are kept up to date in memory as the reports are
    judged, so each report sees what the ones before it in the batch did."""

    def __init__(self, db: Database, items: list[Incoming]) -> None:
        self.db = db
        self.sites: dict[str, dict[str, Any]] = {}
        self.live: dict[str, Mapping[str, Any]] = {}
        self.components: dict[str, list[tuple[Any, ...]]] = {}  # the latest state's, per site
        self._dirty: dict[str, dict[str, Any]] = {}  # per site: the columns changed
        self._writes: dict[str, list[tuple[Any, ...]]] = {}  # per statement: its rows, in order
        self._top: int | None = None  # the live table's highest revision
        ids = list(dict.fromkeys(i.payload.site_id for i in items))  # first seen first
        reports = [
            (p.site_id, p.seq, p.kind, p.ts.timestamp(), i.received_at, int(p.historical),
             verdict.value if (verdict := getattr(p, "verdict", None)) is not None else None)
            for i in items
            if _has_report(p := i.payload)
        ]  # fmt: skip
        # Per report with a history row, in order: whether it is new (the key caught a
        # duplicate, also one earlier in this batch).
        self.new: deque[bool] = deque()
        if not ids:
            return
        self.sites = self._site_rows(ids)
        # A site heard of for the first time gets its row (the write lock keeps it ours).
        if missing := [s for s in ids if s not in self.sites]:
            db.executemany(
                "INSERT INTO sites (site_id) VALUES (?) ON CONFLICT DO NOTHING",
                [(s,) for s in missing],
            )
            self.sites |= self._site_rows(missing)
        self.new.extend(
            db.inserted(
                "INSERT INTO reports VALUES (?,?,?,?,?,?,?) ON CONFLICT DO NOTHING RETURNING seq",
                reports,
            )
        )
        live = [i.payload.site_id for i in items if isinstance(i.payload, LivePayload)]
        if live:
            where, args = _only(dict.fromkeys(live))
            found = db.rows("SELECT * FROM live" + where, args)  # noqa: S608
            self.live = {r["site_id"]: r for r in found}

    def _site_rows(self, ids: list[str]) -> dict[str, dict[str, Any]]:
        where, args = _only(ids)
        found = self.db.rows("SELECT * FROM sites" + where, args)  # noqa: S608 - constants, marks
        return {r["site_id"]: dict(r) for r in found}

    def update(self, site_id: str, **values: Any) -> None:
        self.sites[site_id].update(values)
        self._dirty.setdefault(site_id, {}).update(values)

    def add(self, sql: str, *rows: tuple[Any, ...]) -> None:
        self._writes.setdefault(sql, []).extend(rows)

    def next_rev(self) -> int:
        """The next live revision (`max(rev) + 1`, counted on in memory: the write
        transaction keeps every other writer out of the table)."""
        if self._top is None:
            found = self.db.execute("SELECT coalesce(max(rev), 0) FROM live").fetchone()
            self._top = int(found[0])
        self._top += 1
        return self._top

    def flush(self) -> None:
        """Every held write, in one pipeline where the engine has them."""
        with self.db.pipeline():
            by_columns: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
            for site_id, values in self._dirty.items():
                by_columns.setdefault(tuple(values), []).append((*values.values(), site_id))
            for columns, rows in by_columns.items():
                sets = ", ".join(f"{c} = ?" for c in columns)
                self.db.executemany(f"UPDATE sites SET {sets} WHERE site_id = ?", rows)  # noqa: S608
            if self.components:
                where, args = _only(self.components)
                self.db.execute("DELETE FROM components" + where, args)  # noqa: S608
                self.add(
                    "INSERT INTO components (site_id, component, status, reason, hint,"
                    " reason_msg, hint_msg) VALUES (?,?,?,?,?,?,?)",
                    *[row for rows in self.components.values() for row in rows],
                )
            for sql, rows in self._writes.items():
                if rows:
                    self.db.executemany(sql, rows)


class Store:
    def __init__(self, where: Path | str) -> None:
        """`where`: the SQLite file, or a `postgresql://` URL (settings.store_location)."""
        self.path = where
        # One opening for every table of the centre's database: agent/centre/db.py says why
        # (explicit transactions, WAL, FULL: a commit is on disk before the centre
        # acknowledges its reports to the broker, which then lets the sites delete them).
        # Migrated in one write transaction: two processes opening an older database at
        # once (ingest, `centre status`, a second centre) apply each step once.
        self.db = open_part(where, "fleet", SCHEMA, MIGRATIONS)

    def close(self) -> None:
        self.db.close()

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        return self.db.transaction()

    def rollback(self) -> None:
        self.db.rollback()

    # ---- ingest -------------------------------------------------------------------------

    def apply_batch(self, batch: Iterable[Incoming | PublishedSchedule | RegionState]) -> set[str]:
        """Store a batch in one transaction; the site ids it touched (a schedule touches
        none: it changes no site's condition; a region's state, every site behind it).

        A few statements per batch, not several per report (on PostgreSQL each is a round
        trip to the server, while the write lock is held): the batch's site rows, live rows
        and new-or-duplicate verdicts are read at once, each report is judged against those
        rows in memory (kept up to date as it goes, so a batch holding several reports of one
        site judges each as if stored one by one), and the writes go out together at the end,
        rows of one kind in one `executemany`, in the order they were made."""
        items = list(batch)
        touched: set[str] = set()
        with self.transaction():
            w = _Writes(self.db, [i for i in items if isinstance(i, Incoming)])
            for item in items:
                if isinstance(item, PublishedSchedule):
                    self._schedule(item)
                    continue
                if isinstance(item, RegionState):
                    touched |= self._region(item)
                    continue
                self._apply(w, item)
                touched.add(item.payload.site_id)
            w.flush()
        return touched

    def _region(self, item: RegionState) -> set[str]:
        """Record a change of the region's bridge (a repeat keeps its first `since`); the
        sites the roster puts behind it."""
        self.db.execute(
            "INSERT INTO regions (region, up, since) VALUES (?,?,?) ON CONFLICT (region)"
            " DO UPDATE SET up = excluded.up, since = excluded.since"
            " WHERE regions.up != excluded.up",
            (item.region, int(item.up), item.at),
        )
        rows = self.db.execute("SELECT site_id FROM roster WHERE region = ?", (item.region,))
        return {r[0] for r in rows}

    def _apply(self, w: _Writes, item: Incoming) -> None:
        p = item.payload
        site = w.sites[p.site_id]
        new = w.new.popleft() if _has_report(p) else False
        ts = p.ts.timestamp()
        # A retained message may be old: it proves the site was alive when it was made.
        seen = min(ts, item.received_at) if item.retained else item.received_at
        if isinstance(p, AvailabilityPayload):
            self._availability(w, site, p, ts, seen)
            return
        if not (site["last_seen"] or 0) >= seen:
            w.update(p.site_id, last_seen=seen)
        if isinstance(p, MetaPayload):
            w.update(
                p.site_id,
                name=p.site.name,
                tier=p.site.tier,
                parent=p.site.parent,
                expected=p.site.expected_attendance,
                agent_version=p.agent_version,
                check_interval_s=p.check_interval_s,
                heartbeat_s=p.heartbeat_s,
            )
            return
        if not new:
            return  # a duplicate
        self._track(w, site, p, item.received_at)
        if isinstance(p, StatePayload):
            self._state(w, site, p, ts, item.retained)
        elif isinstance(p, ChecksPayload):
            # Only the newest measurement per component: a historical report drained late
            # must not overwrite what the site measured since.
            w.add(
                "INSERT INTO metrics VALUES (?,?,?,?) ON CONFLICT (site_id, component) "
                "DO UPDATE SET ts = excluded.ts, data = excluded.data "
                "WHERE excluded.ts >= metrics.ts",
                *[(p.site_id, r.component, ts, json.dumps(dict(r.metrics))) for r in p.results],
            )
        elif isinstance(p, AttendancePayload):
            w.add(
                "INSERT INTO attendance VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (
                    p.site_id,
                    p.seq,
                    p.session_id,
                    ts,
                    p.count,
                    p.expected,
                    p.peak,
                    p.median,
                    p.detector,
                    int(p.historical),
                ),
            )
        elif isinstance(p, LivePayload):
            self._live(w, p, ts)
        elif isinstance(p, LiveEventPayload):
            w.add(
                "INSERT INTO live_events VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING",
                (
                    p.site_id,
                    p.seq,
                    p.session.session_id,
                    ts,
                    p.before.value if p.before else None,
                    p.after.value,
                    p.reason,
                    dump_message(p.reason_msg),
                    int(p.historical),
                ),
            )

    def _schedule(self, item: PublishedSchedule) -> None:
        # The newest issued wins: the retained copy read at start may arrive after a newer
        # one published meanwhile. One without issued_at (a cleared topic) always replaces.
        issued = item.payload.issued_at.timestamp() if item.payload.issued_at else None
        self.db.execute(
            "INSERT INTO schedule VALUES (?,?,?,?) ON CONFLICT (scope) DO UPDATE SET"
            " issued_at = excluded.issued_at, body = excluded.body, stored_at = excluded.stored_at"
            " WHERE excluded.issued_at IS NULL OR schedule.issued_at IS NULL"
            " OR excluded.issued_at >= schedule.issued_at",
            (item.scope, issued, item.payload.model_dump_json(), item.received_at),
        )

    def _live(self, w: _Writes, p: LivePayload, ts: float) -> None:
        if p.session is not None and (p.call is not None or p.path):
            # One media point per site and minute (the session report's curve): the newest
            # of the minute, whatever order a drained outbox brings them in.
            data = {
                "verdict": p.verdict.value,
                # who and how (the page's site detail shows the latest point's)
                "far_end": p.call.far_end if p.call else None,
                "protocol": p.call.protocol if p.call else None,
                "media": [m.model_dump(mode="json") for m in p.call.media] if p.call else [],
                "path": [x.model_dump(mode="json") for x in p.path],
            }
            w.add(
                "INSERT INTO live_media VALUES (?,?,?,?,?)"
                " ON CONFLICT (session_id, site_id, minute) DO UPDATE SET"
                " ts = excluded.ts, data = excluded.data WHERE excluded.ts >= live_media.ts",
                (p.site_id, p.session.session_id, int(ts // 60), ts, json.dumps(data)),
            )
        old = w.live.get(p.site_id)
        # The current state is the newest one made: a historical one drained late is history.
        if p.historical or (old is not None and (old["seq"], old["ts"]) > (p.seq, ts)):
            return
        s = p.session
        row = {
            "site_id": p.site_id,
            "session_id": s.session_id if s else None,
            "session_title": s.title if s else "",
            "session_start": s.start.timestamp() if s else None,
            "session_end": s.end.timestamp() if s else None,
            "verdict": p.verdict.value,
            "since": p.since.timestamp(),
            "reason": p.reason,
            "hint": p.hint,
            "reason_msg": dump_message(p.reason_msg),
            "hint_msg": dump_message(p.hint_msg),
            "seq": p.seq,
            "ts": ts,
        }
        moved = old is None or any(old[k] != row[k] for k in _LIVE_KEYS)
        row["rev"] = old["rev"] if old is not None and not moved else w.next_rev()
        w.live[p.site_id] = row
        cols = ", ".join(row)
        update = ", ".join(f"{k} = excluded.{k}" for k in row if k != "site_id")
        w.add(
            f"INSERT INTO live ({cols}) VALUES ({','.join('?' * len(row))})"  # noqa: S608
            f" ON CONFLICT (site_id) DO UPDATE SET {update}",
            tuple(row.values()),
        )

    def _availability(
        self, w: _Writes, site: Mapping[str, Any], p: AvailabilityPayload, ts: float, seen: float
    ) -> None:
        # A late will from an older connection (smaller boot) must not hide the live one. The
        # will of a connection is made before its `online` (older ts) yet ends it: within one
        # boot, offline wins, whatever order the retained pass and the live stream bring them.
        boot = site["avail_boot"]
        if boot is not None and (
            p.boot < boot
            or (p.boot == boot and site["availability"] == "offline" and p.status == "online")
        ):
            return
        values: dict[str, Any] = {
            "availability": p.status,
            "avail_boot": p.boot,
            "avail_ts": ts,
            "avail_reason": p.reason,
        }
        if p.status == "online" and not (site["last_seen"] or 0) >= seen:
            values["last_seen"] = seen
        w.update(p.site_id, **values)

    def _track(self, w: _Writes, site: Mapping[str, Any], p: Envelope, now: float) -> None:
        """Seq tracking of a new (not duplicate) report."""
        step = seqs.track(site["next_seq"], p.seq)
        # Gaps are rare (a lost report): written at once, in order with their fills.
        if step.step is seqs.Step.GAP:
            self.db.execute(
                "INSERT INTO gaps (site_id, first, last, detected_at) VALUES (?,?,?,?)"
                " ON CONFLICT DO NOTHING",
                (p.site_id, step.gap_first, step.gap_last, now),
            )
        elif step.step is seqs.Step.LATE:
            self.db.execute(
                "UPDATE gaps SET filled = filled + 1 "
                "WHERE site_id = ? AND ? BETWEEN first AND last",
                (p.site_id, p.seq),
            )
        if step.next_seq != site["next_seq"]:
            w.update(p.site_id, next_seq=step.next_seq)

    def _state(
        self, w: _Writes, site: Mapping[str, Any], p: StatePayload, ts: float, retained: bool
    ) -> None:
        dropped = p.outbox.dropped_checks
        if site["dropped_base"] is None:
            w.update(p.site_id, dropped_base=dropped, dropped_last=dropped)
        elif dropped > (site["dropped_last"] or 0):
            w.update(p.site_id, dropped_last=dropped)
        # Historical states go to history only; the live picture is the newest live one.
        if p.historical or (site["state_seq"] is not None and p.seq < site["state_seq"]):
            return
        w.update(
            p.site_id,
            verdict=p.verdict.value if p.verdict else None,
            state_seq=p.seq,
            state_ts=ts,
            state_cause=p.cause,
            state_retained=int(retained),
            pending=p.outbox.pending,
        )
        w.components[p.site_id] = [
            (
                p.site_id,
                n,
                c.status.value,
                c.reason,
                c.hint,
                dump_message(c.reason_msg),
                dump_message(c.hint_msg),
            )
            for n, c in p.components.items()
        ]

    # ---- conditions and events ----------------------------------------------------------

    def record_conditions(
        self,
        now: float,
        silent_after: float,
        default_interval: float,
        grace_s: float,
        site_ids: set[str] | None = None,
    ) -> list[Event]:
        """Compare sites' conditions with the ones last recorded; log the changes."""
        events: list[Event] = []
        with self.transaction():
            # The recorded condition comes with each site's row: one read fewer.
            for row, recorded in self._site_rows(now, default_interval, grace_s, site_ids):
                cond = fleet.condition(row, now, silent_after)
                if recorded == cond.value:
                    continue
                detail = "; ".join(fleet.problems(row, cond, now, silent_after)[:3])
                events.append(Event(now, row.site_id, recorded, cond.value, detail))
            if events:
                with self.db.pipeline():
                    self.db.executemany(
                        "INSERT INTO events (at, site_id, old, new, detail) VALUES (?,?,?,?,?)",
                        [(ev.at, ev.site_id, ev.old, ev.new, ev.detail) for ev in events],
                    )
                    self.db.executemany(
                        "UPDATE sites SET condition = ?, cond_since = ? WHERE site_id = ?",
                        [(ev.new, now, ev.site_id) for ev in events],
                    )
        return events

    def maybe_silent(self, now: float, silent_after: float, default_interval: float) -> set[str]:
        """Sites whose recorded condition may have turned silent since: unheard (or their
        retained state older) for longer than the window, not yet recorded silent or offline.
        A scan in SQL, so the periodic sweep costs little at ten thousand sites."""
        rows = self.db.execute(
            _MAYBE_SILENT, {"now": now, "k": silent_after, "d": default_interval}
        ).fetchall()
        return {r[0] for r in rows}

    def events(self, site_id: str | None = None, limit: int = 1000) -> list[Event]:
        one = "" if site_id is None else " WHERE site_id = ?"
        rows = self.db.execute(
            f"SELECT at, site_id, old, new, detail FROM events{one} ORDER BY id DESC LIMIT ?",  # noqa: S608
            (limit,) if site_id is None else (site_id, limit),
        ).fetchall()
        return [Event(*r) for r in reversed(rows)]

    # ---- reading ------------------------------------------------------------------------

    def gaps(self, site_id: str) -> list[seqs.Gap]:
        rows = self.db.execute(
            "SELECT first, last, detected_at, filled FROM gaps WHERE site_id = ? ORDER BY first",
            (site_id,),
        ).fetchall()
        return [seqs.Gap(*r) for r in rows]

    def loss(self, site_id: str, now: float, grace_s: float) -> seqs.Loss:
        row = self.db.execute(
            "SELECT dropped_base, dropped_last FROM sites WHERE site_id = ?", (site_id,)
        ).fetchone()
        dropped = (row[1] or 0) - (row[0] or 0) if row else 0
        return seqs.loss(self.gaps(site_id), dropped, now, grace_s)

    def sites(
        self,
        now: float,
        default_interval: float,
        grace_s: float,
        site_ids: set[str] | None = None,
    ) -> list[fleet.SiteRow]:
        return [row for row, _ in self._site_rows(now, default_interval, grace_s, site_ids)]

    def _site_rows(
        self, now: float, default_interval: float, grace_s: float, site_ids: set[str] | None
    ) -> list[tuple[fleet.SiteRow, str | None]]:
        """The sites, each with its recorded condition."""
        # Only the sites asked for (after each batch: a few), or all of them.
        where, args = _only(site_ids)
        comps: dict[str, dict[str, fleet.ComponentRow]] = {}
        columns = "site_id, component, status, reason, hint, reason_msg, hint_msg"
        for sid, name, status, reason, hint, reason_msg, hint_msg in self.db.execute(
            f"SELECT {columns} FROM components" + where,  # noqa: S608 - constants and ? marks
            args,
        ):
            comps.setdefault(sid, {})[name] = fleet.ComponentRow(
                status, reason, hint, load_message(reason_msg), load_message(hint_msg)
            )
        gaps: dict[str, list[seqs.Gap]] = {}
        for sid, *gap in self.db.execute(
            "SELECT site_id, first, last, detected_at, filled FROM gaps" + where,  # noqa: S608
            args,
        ):
            gaps.setdefault(sid, []).append(seqs.Gap(*gap))
        live = self._live_rows(where, args)
        out = []
        for r in self.db.rows(_SITES_SQL + where + " ORDER BY site_id", args):
            interval = min(default_interval, r["check_interval_s"] or default_interval)
            dropped = (r["dropped_last"] or 0) - (r["dropped_base"] or 0)
            loss = seqs.loss(gaps.get(r["site_id"], []), dropped, now, grace_s)
            listed = r["r_tier"] is not None
            out.append(
                (
                    fleet.SiteRow(
                        site_id=r["site_id"],
                        name=r["r_name"] if listed else r["name"],
                        tier=r["r_tier"] if listed else r["tier"],
                        parent=r["r_parent"] if listed else r["parent"],
                        availability=r["availability"],
                        avail_reason=r["avail_reason"],
                        last_seen=r["last_seen"],
                        verdict=r["verdict"],
                        state_ts=r["state_ts"],
                        state_retained=bool(r["state_retained"]),
                        interval_s=interval,
                        heartbeat_s=r["heartbeat_s"],
                        components=comps.get(r["site_id"], {}),
                        lost=loss.lost,
                        dropped=loss.explained,
                        summoned=r["r_summoned"] if r["r_summoned"] is not None else r["expected"],
                        on_roster=listed,
                        since=r["cond_since"],
                        live=live.get(r["site_id"]),
                        region=r["r_region"],
                        region_down_since=r["reg_since"] if r["reg_up"] == 0 else None,
                    ),
                    r["condition"],
                )
            )
        return out

    def _live_rows(self, where: str, args: tuple[str, ...]) -> dict[str, fleet.LiveRow]:
        return {
            r["site_id"]: fleet.LiveRow(
                session_id=r["session_id"],
                title=r["session_title"],
                start=r["session_start"],
                end=r["session_end"],
                verdict=r["verdict"],
                since=r["since"],
                reason=r["reason"],
                hint=r["hint"],
                reason_msg=load_message(r["reason_msg"]),
                hint_msg=load_message(r["hint_msg"]),
                ts=r["ts"],
            )
            for r in self.db.rows("SELECT * FROM live" + where, args)  # noqa: S608
        }

    def live_changed_since(self, after_rev: int) -> tuple[int, set[str]]:
        """(the newest live revision, the sites whose live state moved after `after_rev`)."""
        newest = self.db.execute("SELECT coalesce(max(rev), 0) FROM live").fetchone()[0]
        rows = self.db.execute(
            "SELECT site_id FROM live WHERE rev > ? AND rev <= ?", (after_rev, newest)
        ).fetchall()
        return int(newest), {r[0] for r in rows}

    def live_events(self, session_id: str, site_id: str | None = None) -> list[LiveEventRow]:
        """A session's live transitions, by site then time; only `site_id`'s when given."""
        one, args = _one_site(site_id)
        rows = self.db.execute(
            "SELECT site_id, session_id, ts, before, after, reason, reason_msg FROM live_events"  # noqa: S608
            f" WHERE session_id = ?{one} ORDER BY site_id, ts, seq",
            (session_id, *args),
        ).fetchall()
        return [LiveEventRow(r[0], r[1], r[2], r[3], r[4], r[5], load_message(r[6])) for r in rows]

    def live_media(self, session_id: str, site_id: str) -> list[tuple[int, dict[str, Any]]]:
        """A site's media points in a session, one per minute: (epoch minute, figures)."""
        rows = self.db.execute(
            "SELECT minute, data FROM live_media WHERE session_id = ? AND site_id = ?"
            " ORDER BY minute",
            (session_id, site_id),
        ).fetchall()
        return [(r[0], json.loads(r[1])) for r in rows]

    def known(self, site_ids: set[str]) -> set[str]:
        """Those of `site_ids` the centre has heard of or has on its roster (a listed site
        is the province's own, even before its first report)."""
        where, args = _only(site_ids)
        return {r[0] for r in self.db.execute("SELECT site_id FROM sites" + where, args)}  # noqa: S608

    def expected_of(self) -> dict[str, Summoned]:
        """site_id -> (tier, people summoned, whether the roster said it): the roster's
        number where it has one, else the expected attendance the site's meta reported."""
        rows = self.db.execute(
            "SELECT site_id, coalesce(roster.tier, sites.tier), coalesce(summoned, expected),"
            " summoned IS NOT NULL FROM sites LEFT JOIN roster USING (site_id)"
        ).fetchall()
        return {r[0]: Summoned(r[1], r[2], bool(r[3])) for r in rows}

    # ---- the roster of expected sites ---------------------------------------------------

    def roster(self) -> list[RosterEntry]:
        rows = self.db.execute(
            "SELECT site_id, name, tier, parent, summoned, region FROM roster ORDER BY site_id"
        ).fetchall()
        return [RosterEntry(*r) for r in rows]

    def import_roster(
        self, entries: list[RosterEntry], now: float, *, replace: bool = False
    ) -> RosterChange:
        """Add or update the entries in one transaction (all or nothing); with `replace`,
        also take off the roster the sites the list does not name. A listed site the centre
        never heard from gets its row now, condition `never_seen` since `now`, so it shows,
        counts and can be chosen like any other."""
        with self.transaction():
            before = {r[0] for r in self.db.execute("SELECT site_id FROM roster")}
            self.db.executemany(
                "INSERT INTO roster (site_id, name, tier, parent, summoned, added_at, region)"
                " VALUES (?,?,?,?,?,?,?) ON CONFLICT (site_id) DO UPDATE SET"
                " name = excluded.name, tier = excluded.tier, parent = excluded.parent,"
                " summoned = excluded.summoned, region = excluded.region",
                [(e.site_id, e.name, e.tier, e.parent, e.summoned, now, e.region) for e in entries],
            )
            for e in entries:
                cur = self.db.execute(
                    "INSERT INTO sites (site_id, condition, cond_since) VALUES (?,?,?)"
                    " ON CONFLICT DO NOTHING",
                    (e.site_id, fleet.Condition.NEVER_SEEN.value, now),
                )
                if cur.rowcount:
                    self.db.execute(
                        "INSERT INTO events (at, site_id, old, new) VALUES (?,?,NULL,?)",
                        (now, e.site_id, fleet.Condition.NEVER_SEEN.value),
                    )
            named = {e.site_id for e in entries}
            removed = self._unlist(before - named) if replace else []
        return RosterChange(added=len(named - before), updated=len(named & before), removed=removed)

    def remove_from_roster(self, site_ids: list[str]) -> tuple[list[str], list[str]]:
        """(the ids taken off the roster, the ids it did not list)."""
        with self.transaction():
            where, args = _only(set(site_ids))
            listed = {r[0] for r in self.db.execute("SELECT site_id FROM roster" + where, args)}  # noqa: S608
            removed = self._unlist(listed)
        return removed, sorted(set(site_ids) - listed)

    def _unlist(self, site_ids: set[str]) -> list[str]:
        """Take sites off the roster. One never heard from is forgotten with it (nothing but
        the roster made it); one heard from stays, under the names it reported."""
        if not site_ids:
            return []
        where, args = _only(site_ids)
        self.db.execute("DELETE FROM roster" + where, args)  # noqa: S608
        unheard = [
            r[0]
            for r in self.db.execute(
                "SELECT site_id FROM sites" + where + " AND last_seen IS NULL"  # noqa: S608
                " AND availability IS NULL AND state_seq IS NULL",
                args,
            )
        ]
        if unheard:
            w, a = _only(set(unheard))
            self.db.execute("DELETE FROM sites" + w, a)  # noqa: S608
            self.db.execute("DELETE FROM events" + w, a)  # noqa: S608
        return sorted(site_ids)

    def attendance(self, session_id: str, site_id: str | None = None) -> list[AttendanceRow]:
        """A session's samples, by site then time; only `site_id`'s when given."""
        one, args = _one_site(site_id)
        rows = self.db.execute(
            "SELECT site_id, session_id, ts, count, expected, peak, median FROM attendance "  # noqa: S608
            f"WHERE session_id = ?{one} ORDER BY site_id, ts",
            (session_id, *args),
        ).fetchall()
        return [AttendanceRow(*r) for r in rows]

    def verdicts(self, site_id: str, limit: int = 50) -> list[tuple[float, str | None]]:
        """A site's latest live state verdicts, oldest first: (ts, verdict)."""
        rows = self.db.execute(
            "SELECT ts, verdict FROM reports WHERE site_id = ? AND kind = 'state' "
            "AND historical = 0 ORDER BY ts DESC LIMIT ?",
            (site_id, limit),
        ).fetchall()
        return [(r[0], r[1]) for r in reversed(rows)]

    def changed_since(self, after_id: int) -> tuple[int, set[str]]:
        """(the newest event id, the sites with a condition change after `after_id`)."""
        newest = self.db.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()[0]
        rows = self.db.execute(
            "SELECT DISTINCT site_id FROM events WHERE id > ? AND id <= ?", (after_id, newest)
        ).fetchall()
        return int(newest), {r[0] for r in rows}

    def latest_session(self) -> str | None:
        """The session of the last stored attendance sample (the one running now, or the
        last); by rowid (SQLite's own, PostgreSQL's identity column), so the table is read
        backwards from its end, not scanned."""
        row = self.db.execute(
            "SELECT session_id FROM attendance WHERE session_id IS NOT NULL "
            "ORDER BY rowid DESC LIMIT 1"
        ).fetchone()
        return str(row[0]) if row else None

    def attendance_since(
        self, session_id: str, after_rowid: int
    ) -> list[tuple[int, AttendanceRow]]:
        """A session's samples stored after `after_rowid`, with their rowids (`+session_id`
        keeps SQLite on the rowid range instead of the session index)."""
        rows = self.db.execute(
            "SELECT rowid, site_id, session_id, ts, count, expected, peak, median "  # noqa: S608
            f"FROM attendance WHERE rowid > ? AND {self.db.unindexed}session_id = ?"
            " ORDER BY rowid",
            (after_rowid, session_id),
        ).fetchall()
        return [(r[0], AttendanceRow(*r[1:])) for r in rows]

    def schedules(self) -> dict[str, SchedulePayload]:
        """The schedules last published: "" for every site's, else by site id."""
        rows = self.db.execute("SELECT scope, body FROM schedule").fetchall()
        return {r[0]: SchedulePayload.model_validate_json(r[1]) for r in rows}

    def recorded(self) -> dict[str, Recorded]:
        """site_id -> its recorded condition, since when, and its outbox backlog."""
        rows = self.db.execute("SELECT site_id, condition, cond_since, pending FROM sites")
        return {r[0]: Recorded(*r[1:]) for r in rows}

    def latest_counts(self, session_id: str) -> dict[str, int | None]:
        """site_id -> the count of its newest attendance sample in the session."""
        rows = self.db.execute(
            "SELECT site_id, count FROM attendance a WHERE session_id = ? AND ts ="
            " (SELECT max(ts) FROM attendance b"
            "  WHERE b.session_id = a.session_id AND b.site_id = a.site_id)",
            (session_id,),
        )
        return {r[0]: r[1] for r in rows}

    def metrics(self, site_id: str) -> dict[str, dict[str, Any]]:
        """The latest measured metrics of each of a site's components (from `checks`)."""
        rows = self.db.execute(
            "SELECT component, data FROM metrics WHERE site_id = ?", (site_id,)
        ).fetchall()
        return {r[0]: json.loads(r[1]) for r in rows}

    def prune(self, before: float) -> int:
        """Forget report history and attendance older than `before` (epoch seconds)."""
        with self.transaction():
            n = self.db.execute("DELETE FROM reports WHERE stored_at < ?", (before,)).rowcount
            self.db.execute("DELETE FROM attendance WHERE ts < ?", (before,))
            self.db.execute("DELETE FROM events WHERE at < ?", (before,))
            self.db.execute("DELETE FROM live_events WHERE ts < ?", (before,))
            self.db.execute("DELETE FROM live_media WHERE ts < ?", (before,))
        return int(n)
