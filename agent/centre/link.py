"""The centre's own link to the broker, as each `centre serve` process last saw it.

Kept in the fleet database (one row per serve instance) because three readers need it and
only the ingest knows it: the page in the same process, `centre status` in another, and a
second serve instance. A row not refreshed for STALE_S belongs to a process that stopped
without saying so: it no longer counts.

While every live instance has lost the broker the centre is blind: conditions are judged at
the moment the link went down (`judged_at`), so no site turns silent or offline because the
centre stopped hearing the broker, not because the site stopped talking.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from agent.centre.store.base import Database, open_part
from agent.i18n import t

_SCHEMA = """
CREATE TABLE IF NOT EXISTS centre_link (
    instance TEXT PRIMARY KEY, broker TEXT NOT NULL, since REAL NOT NULL,
    judged_at REAL, updated REAL NOT NULL
)
"""
HEARTBEAT_S = 5.0
STALE_S = 3 * HEARTBEAT_S


@dataclass(frozen=True)
class CentreLink:
    """`broker` "up" or "down"; `since` when it became so (None: no serve process is
    running); `judged_at`: the frozen moment conditions are judged at, None when live."""

    broker: str
    since: float | None
    judged_at: float | None = None

    @property
    def running(self) -> bool:
        return self.since is not None

    def to_json(self) -> dict[str, object]:
        return {"broker": self.broker, "since": self.since}


NOT_RUNNING = CentreLink("down", None)


def open_link(location: Path | str) -> Database:
    """The link's own connection to the store (SQLite file or PostgreSQL URL)."""
    return open_part(location, "centre_link", _SCHEMA)


def record(
    db: Database,
    instance: str,
    *,
    up: bool,
    since: float,
    judged_at: float | None,
    now: float,
) -> None:
    db.execute(
        "INSERT INTO centre_link VALUES (?,?,?,?,?) ON CONFLICT (instance) DO UPDATE SET"
        " broker = excluded.broker, since = excluded.since, judged_at = excluded.judged_at,"
        " updated = excluded.updated",
        (instance, "up" if up else "down", since, judged_at, now),
    )


def forget(db: Database, instance: str) -> None:
    db.execute("DELETE FROM centre_link WHERE instance = ?", (instance,))


def others_running(db: Database, me: str, now: float) -> list[str]:
    """The other instances whose row is fresh: running (or a dead one the leader visited in
    the last STALE_S, agent/centre/orphans.py)."""
    if not db.columns("centre_link"):
        return []
    rows = db.execute(
        "SELECT instance FROM centre_link WHERE updated >= ? AND instance <> ?",
        (now - STALE_S, me),
    ).fetchall()
    return sorted(str(r[0]) for r in rows)


def read(db: Database, now: float) -> CentreLink:
    """The centre's link: up while any live instance hears the broker; else down since the
    last of them lost it, conditions frozen at the latest moment any of them still heard."""
    if not db.columns("centre_link"):
        return NOT_RUNNING  # no serve has run on this database yet
    rows = db.execute(
        "SELECT broker, since, judged_at FROM centre_link WHERE updated >= ?",
        (now - STALE_S,),
    ).fetchall()
    if not rows:
        return NOT_RUNNING
    up = [r for r in rows if r[0] == "up"]
    if up:
        live = [r for r in up if r[2] is None]
        frozen = None if live else max(r[2] for r in up)
        return CentreLink("up", min(r[1] for r in up), frozen)
    return CentreLink("down", max(r[1] for r in rows), max(r[2] or r[1] for r in rows))


def describe(state: CentreLink) -> str:
    """One line for `centre status`, in the reader's language."""
    if state.since is None:
        return t("link.not_running")
    when = datetime.fromtimestamp(state.since).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    if state.broker == "up":
        return t("link.up", time=when)
    return t("link.down", time=when)
