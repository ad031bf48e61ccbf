"""The alerts', incidents' and silences' tables, in the centre's database (SQLite or
PostgreSQL: agent/centre/store/, docs/store.md).

- `alerts`: one row per alert key (rule + site): the firing ones, and the last resolved one
  of each key, so the page can say "recovered at".
- `incidents`: one per firing of an alert, opened at its first firing, acknowledged (who,
  when: the first acknowledgement is kept) and closed at recovery. Kept with the fleet's
  retention (`prune`). The reason is a catalogue message (JSON), rendered in each reader's
  language.
- `silences`: no notifications for a site, a district, a tier or everything, from one time
  until another; a maintenance window is a silence that starts in the future.

The style of the fleet store: a versioned schema, one connection per thread, explicit write
transactions (one writer at a time) so the engine, the CLI and the page (each its own
connection) serialise their writes.
"""

from __future__ import annotations

import contextlib
import math
import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent.centre.alerts.model import Alert, AlertKind, AlertState, Incident, Severity
from agent.centre.store.base import open_part, readable
from agent.errors import ConfigError
from agent.messages import Message, dump_message, load_message, message

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    key TEXT PRIMARY KEY,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    site_id TEXT NOT NULL,
    site_name TEXT NOT NULL DEFAULT '',
    district TEXT NOT NULL DEFAULT '',
    tier TEXT NOT NULL DEFAULT 'commune',
    state TEXT NOT NULL,
    since REAL NOT NULL,
    fired_at REAL,
    resolved_at REAL,
    reason TEXT NOT NULL,
    session_id TEXT,
    escalated INTEGER NOT NULL DEFAULT 0,
    incident_id INTEGER
);
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_key TEXT NOT NULL,
    rule TEXT NOT NULL,
    kind TEXT NOT NULL,
    severity TEXT NOT NULL,
    site_id TEXT NOT NULL,
    district TEXT NOT NULL DEFAULT '',
    tier TEXT NOT NULL DEFAULT 'commune',
    opened_at REAL NOT NULL,
    acked_at REAL,
    acked_by TEXT,
    closed_at REAL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_opened ON incidents (opened_at);
CREATE INDEX IF NOT EXISTS incidents_open ON incidents (alert_key) WHERE closed_at IS NULL;
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    scope TEXT NOT NULL,
    value TEXT NOT NULL DEFAULT '',
    starts_at REAL NOT NULL,
    ends_at REAL NOT NULL,
    created_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


_ALERT_COLUMNS = (
    "key, rule, kind, severity, site_id, site_name, district, tier, state, since, fired_at,"
    " resolved_at, reason, session_id, escalated, incident_id"
)
# The whole row replaced (SQLite's INSERT OR REPLACE, in the SQL both engines take).
_ALERT_REPLACE = ", ".join(
    f"{c} = excluded.{c}" for c in _ALERT_COLUMNS.replace(" ", "").split(",") if c != "key"
)


class Scope(StrEnum):
    """What a silence covers."""

    SITE = "site"
    DISTRICT = "district"
    TIER = "tier"
    ALL = "all"


@dataclass(frozen=True)
class Silence:
    id: int
    scope: Scope
    value: str  # the site id, district id or tier; "" for all
    starts_at: float
    ends_at: float
    created_by: str
    reason: str  # the operator's own words, shown as typed
    created_at: float

    def active(self, at: float) -> bool:
        return self.starts_at <= at < self.ends_at

    def covers(self, alert: Alert) -> bool:
        if self.scope is Scope.ALL:
            return True
        return (
            self.value
            == {
                Scope.SITE: alert.site_id,
                Scope.DISTRICT: alert.district,
                Scope.TIER: alert.tier,
            }[self.scope]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "scope": self.scope.value,
            "value": self.value,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "created_by": self.created_by,
            "reason": self.reason,
            "created_at": self.created_at,
        }


class GroupBy(StrEnum):
    SITE = "site"
    DISTRICT = "district"
    TIER = "tier"


_GROUP_COLUMN = {GroupBy.SITE: "site_id", GroupBy.DISTRICT: "district", GroupBy.TIER: "tier"}


@dataclass(frozen=True)
class Durations:
    """Seconds: median and 90th percentile (nearest rank) of the incidents that have one."""

    count: int
    median_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Durations:
        if not values:
            return cls(0, None, None)
        ordered = sorted(values)
        # Nearest rank: the p90 is a time some incident really took, not an interpolation.
        rank = max(1, math.ceil(0.9 * len(ordered)))
        return cls(len(ordered), statistics.median(ordered), ordered[rank - 1])

    def to_json(self) -> dict[str, Any]:
        return {"count": self.count, "median_s": self.median_s, "p90_s": self.p90_s}


@dataclass(frozen=True)
class GroupStats:
    """Time to acknowledge and time to repair of one site, district or tier's incidents."""

    group: str
    incidents: int
    open: int
    to_ack: Durations
    to_repair: Durations

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "incidents": self.incidents,
            "open": self.open,
            "time_to_ack": self.to_ack.to_json(),
            "time_to_repair": self.to_repair.to_json(),
        }


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_NAME_MAX = 80
_REASON_MAX = 500


def _clean(text: str, limit: int) -> str:
    """Typed by a person (CLI, page): one line, no control characters, bounded, so a table
    or a notification that shows it stays whole."""
    return " ".join(_CONTROL.sub(" ", text).split())[:limit]


def _name(who: str) -> str:
    name = _clean(who, _NAME_MAX)
    if not name:
        raise ConfigError(message("incidents.no_name"), message("incidents.no_name_hint"))
    return name


def _reason(text: str) -> Message:
    # A row whose message cannot be read (written by a newer release, damaged) still shows.
    return load_message(text) or message("incidents.unreadable_reason")


def _incident(row: Mapping[str, Any]) -> Incident:
    return Incident(
        id=row["id"],
        alert_key=row["alert_key"],
        rule=row["rule"],
        kind=AlertKind(row["kind"]),
        severity=Severity(row["severity"]),
        site_id=row["site_id"],
        district=row["district"],
        tier=row["tier"],
        opened_at=row["opened_at"],
        acked_at=row["acked_at"],
        acked_by=row["acked_by"],
        closed_at=row["closed_at"],
        reason=_reason(row["reason"]),
    )


def _silence(row: Mapping[str, Any]) -> Silence:
    return Silence(
        id=row["id"],
        scope=Scope(row["scope"]),
        value=row["value"],
        starts_at=row["starts_at"],
        ends_at=row["ends_at"],
        created_by=row["created_by"],
        reason=row["reason"],
        created_at=row["created_at"],
    )


class AlertStore:
    def __init__(self, db_path: Path | str) -> None:
        """`db_path`: the SQLite file or a PostgreSQL URL (settings.store_location)."""
        self.path = db_path
        self.db = open_part(db_path, "alerts", _SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        return self.db.transaction()

    # ---- alerts and their incidents -----------------------------------------------------

    def _alerts(self, where: str, args: tuple[Any, ...]) -> list[Alert]:
        rows = self.db.rows(
            "SELECT a.*, i.acked_by AS i_acked_by, i.acked_at AS i_acked_at FROM alerts a"  # noqa: S608
            f" LEFT JOIN incidents i ON i.id = a.incident_id WHERE {where}"
            " ORDER BY a.fired_at, a.key",
            args,
        )
        return readable(rows, self._alert, "alerts")

    @staticmethod
    def _alert(r: Mapping[str, Any]) -> Alert:
        return Alert(
            key=r["key"],
            rule=r["rule"],
            kind=AlertKind(r["kind"]),
            severity=Severity(r["severity"]),
            site_id=r["site_id"],
            site_name=r["site_name"],
            district=r["district"],
            tier=r["tier"],
            state=AlertState(r["state"]),
            since=r["since"],
            fired_at=r["fired_at"],
            resolved_at=r["resolved_at"],
            reason=_reason(r["reason"]),
            session_id=r["session_id"],
            acked_by=r["i_acked_by"],
            acked_at=r["i_acked_at"],
            escalated=bool(r["escalated"]),
        )

    def firing(self) -> list[Alert]:
        """The alerts firing now, oldest first, with their incident's acknowledgement."""
        return self._alerts("a.state = ?", (AlertState.FIRING.value,))

    def alert(self, key: str) -> Alert | None:
        """The alert of `key`: firing, or the last resolved one."""
        found = self._alerts("a.key = ?", (key,))
        return found[0] if found else None

    def _open_incident(self, key: str) -> Mapping[str, Any] | None:
        return self.db.row(
            "SELECT * FROM incidents WHERE alert_key = ? AND closed_at IS NULL"
            " ORDER BY id DESC LIMIT 1",
            (key,),
        )

    def raised(self, alert: Alert) -> Incident:
        """Record `alert` firing and open its incident. Idempotent: for a key already firing
        the incident already open is returned and nothing changes but the reason (the
        engine says it again on every evaluation; a restart re-raises what it finds)."""
        fired_at = alert.fired_at if alert.fired_at is not None else alert.since
        reason = dump_message(alert.reason)
        with self._transaction():
            row = self._open_incident(alert.key)
            if row is None:
                # RETURNING (SQLite since 3.35, PostgreSQL): one statement on both.
                incident_id = self.db.execute(
                    "INSERT INTO incidents (alert_key, rule, kind, severity, site_id, district,"
                    " tier, opened_at, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                    (alert.key, alert.rule, alert.kind.value, alert.severity.value,
                     alert.site_id, alert.district, alert.tier, fired_at, reason),
                ).fetchone()[0]  # fmt: skip
                self.db.execute(
                    f"INSERT INTO alerts ({_ALERT_COLUMNS})"  # noqa: S608 - constants
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?, ?)"
                    f" ON CONFLICT (key) DO UPDATE SET {_ALERT_REPLACE}",
                    (alert.key, alert.rule, alert.kind.value, alert.severity.value,
                     alert.site_id, alert.site_name, alert.district, alert.tier,
                     AlertState.FIRING.value, alert.since, fired_at, reason, alert.session_id,
                     int(alert.escalated), incident_id),
                )  # fmt: skip
            else:
                incident_id = row["id"]
                self.db.execute(
                    "UPDATE alerts SET reason = ?, state = ?, resolved_at = NULL,"
                    " incident_id = ? WHERE key = ?",
                    (reason, AlertState.FIRING.value, incident_id, alert.key),
                )
            got = self.incident(int(incident_id or 0))
        assert got is not None  # written in this transaction
        return got

    def resolved(self, key: str, at: float) -> Incident | None:
        """The alert of `key` recovered at `at`: its incident closed (None: none was open)."""
        with self._transaction():
            closed = self._resolve(key, at)
        return None if closed is None else self.incident(closed)

    def resolved_all(self, keys: Sequence[str], at: float) -> None:
        """Several alerts recovered at `at`, in one transaction: a group told as one
        "recovered" is recorded whole or not at all (half of it, after a kill, would be
        regrouped and told again under a new key)."""
        with self._transaction():
            for key in keys:
                self._resolve(key, at)

    def _resolve(self, key: str, at: float) -> int | None:
        self.db.execute(
            "UPDATE alerts SET state = ?, resolved_at = ? WHERE key = ? AND state = ?",
            (AlertState.RESOLVED.value, at, key, AlertState.FIRING.value),
        )
        row = self._open_incident(key)
        if row is None:
            return None
        self.db.execute("UPDATE incidents SET closed_at = ? WHERE id = ?", (at, row["id"]))
        return int(row["id"])

    def escalate(self, key: str) -> None:
        """Mark the firing alert of `key` escalated (the next level was told), once."""
        with self._transaction():
            self.db.execute("UPDATE alerts SET escalated = 1 WHERE key = ?", (key,))

    def ack(self, key_or_incident: str, who: str, at: float) -> Incident | None:
        """Acknowledge an incident, named by its id or by its alert's key (then the open
        incident, else that key's last). A second acknowledgement keeps the first: time to
        acknowledge is the first person's. A closed incident is left as it is: nothing is
        left to stop, and a time to acknowledge after the repair would only blur the figures.
        None: no such incident."""
        ref = key_or_incident.strip().removeprefix("#")
        who = _name(who)
        with self._transaction():
            if ref.isdigit():
                found = self.db.row("SELECT * FROM incidents WHERE id = ?", (int(ref),))
            else:
                found = self.db.row(
                    "SELECT * FROM incidents WHERE alert_key = ?"
                    " ORDER BY closed_at IS NULL DESC, id DESC LIMIT 1",
                    (ref,),
                )
            if found is None:
                return None
            self.db.execute(
                "UPDATE incidents SET acked_at = ?, acked_by = ?"
                " WHERE id = ? AND acked_at IS NULL AND closed_at IS NULL",
                (at, who, found["id"]),
            )
        return self.incident(found["id"])

    # ---- incidents ----------------------------------------------------------------------

    def incident(self, incident_id: int) -> Incident | None:
        row = self.db.row("SELECT * FROM incidents WHERE id = ?", (incident_id,))
        return None if row is None else _incident(row)

    def incidents(
        self,
        *,
        since: float | None = None,
        open_only: bool = False,
        site: str | None = None,
        district: str | None = None,
        tier: str | None = None,
        limit: int = 1000,
    ) -> list[Incident]:
        """Newest first: alive at some moment since `since` (opened, closed or still open)."""
        where, args = self._where(since, site, district, tier)
        if open_only:
            where.append("closed_at IS NULL")
        sql = "SELECT * FROM incidents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.db.rows(f"{sql} ORDER BY opened_at DESC, id DESC LIMIT ?", (*args, limit))
        return readable(rows, _incident, "alerts")

    @staticmethod
    def _where(
        since: float | None, site: str | None, district: str | None, tier: str | None
    ) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        args: list[Any] = []
        if since is not None:
            # Any incident alive at some moment since then: opened since, still open, or
            # closed since (opened the night before, repaired during the session).
            where.append("(opened_at >= ? OR closed_at IS NULL OR closed_at >= ?)")
            args += [since, since]
        for column, value in (("site_id", site), ("district", district), ("tier", tier)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        return where, args

    def stats(self, by: GroupBy, since: float) -> list[GroupStats]:
        """Per site, district or tier, over the incidents opened at or after `since`: how
        many, how many still open, time to acknowledge and time to repair. Busiest first."""
        column = _GROUP_COLUMN[by]
        rows = self.db.rows(
            f"SELECT {column} AS grp, opened_at, acked_at, closed_at FROM incidents"  # noqa: S608
            " WHERE opened_at >= ?",
            (since,),
        )
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for r in rows:
            groups.setdefault(r["grp"], []).append(r)
        out = [
            GroupStats(
                group=name,
                incidents=len(members),
                open=sum(1 for r in members if r["closed_at"] is None),
                to_ack=Durations.of(
                    [r["acked_at"] - r["opened_at"] for r in members if r["acked_at"] is not None]
                ),
                to_repair=Durations.of(
                    [r["closed_at"] - r["opened_at"] for r in members if r["closed_at"] is not None]
                ),
            )
            for name, members in groups.items()
        ]
        return sorted(out, key=lambda g: (-g.incidents, g.group))

    # ---- silences -----------------------------------------------------------------------

    def add_silence(
        self,
        *,
        scope: Scope,
        value: str,
        starts_at: float,
        ends_at: float,
        who: str,
        why: str,
        at: float,
    ) -> Silence:
        """A silence from `starts_at` until `ends_at` (a maintenance window when it starts
        later than `at`)."""
        if ends_at <= starts_at:
            raise ConfigError(
                message("incidents.silence.empty_window"),
                message("incidents.silence.empty_window_hint"),
            )
        if ends_at <= at:
            raise ConfigError(
                message("incidents.silence.in_the_past"),
                message("incidents.silence.empty_window_hint"),
            )
        who, why = _name(who), _clean(why, _REASON_MAX)
        if not why:
            raise ConfigError(
                message("incidents.silence.no_reason"), message("incidents.silence.no_reason_hint")
            )
        if (scope is Scope.ALL) != (not value):
            raise ConfigError(
                message("incidents.silence.no_target"), message("incidents.silence.no_target_hint")
            )
        with self._transaction():
            sid = self.db.execute(
                "INSERT INTO silences (scope, value, starts_at, ends_at, created_by, reason,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (scope.value, value, starts_at, ends_at, who, why, at),
            ).fetchone()[0]
        return Silence(int(sid), scope, value, starts_at, ends_at, who, why, at)

    def silences(self, at: float) -> list[Silence]:
        """The silences in force at `at` and those still to come, soonest first."""
        rows = self.db.rows(
            "SELECT * FROM silences WHERE ends_at > ? ORDER BY starts_at, id", (at,)
        )
        return readable(rows, _silence, "alerts")

    def end_silence(self, silence_id: int, at: float) -> bool:
        """End a silence now (one still to come never starts). False: none in force or to
        come has that id. The row stays, so who silenced what remains on record until pruned."""
        with self._transaction():
            cur = self.db.execute(
                "UPDATE silences SET ends_at = ? WHERE id = ? AND ends_at > ?",
                (at, silence_id, at),
            )
        return cur.rowcount > 0

    def silenced(self, alert: Alert, at: float) -> bool:
        """Whether a silence in force at `at` covers `alert`."""
        return any(s.covers(alert) for s in self.silences(at) if s.active(at))

    # ---- retention ----------------------------------------------------------------------

    def prune(self, before: float) -> int:
        """Forget incidents closed before `before`, alerts resolved before it and silences
        ended before it; the number of incidents forgotten. Open incidents stay, however
        old: they are not over."""
        with self._transaction():
            n = self.db.execute(
                "DELETE FROM incidents WHERE closed_at IS NOT NULL AND closed_at < ?", (before,)
            ).rowcount
            self.db.execute(
                "DELETE FROM alerts WHERE state = ? AND resolved_at < ?",
                (AlertState.RESOLVED.value, before),
            )
            self.db.execute("DELETE FROM silences WHERE ends_at < ?", (before,))
        return int(n)


def prune(db_path: Path | str, before: float) -> int:
    """`AlertStore.prune` on its own connection: the centre's housekeeping calls it beside
    the fleet store's prune."""
    store = AlertStore(db_path)
    try:
        return store.prune(before)
    finally:
        store.close()
