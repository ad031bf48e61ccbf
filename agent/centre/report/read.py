"""The session report's edge: the rows it is built from, read from the centre's database
(the fleet store and the alerts' incidents); everything else in this package is pure.

The session's times come from the schedule the centre last published (Store.schedules());
a session no longer in it (replaced by a later schedule) has no known start: its report
says so, and has no readiness section and no incidents (there is no window to take them in).
"""

from __future__ import annotations

from pathlib import Path

from agent.centre.alerts.facts import district_of
from agent.centre.alerts.store import AlertStore
from agent.centre.report.attendance import session_report
from agent.centre.report.readiness import CHECKPOINTS, SiteFacts, readiness
from agent.centre.report.session import Report, build
from agent.centre.store import Event, Store
from agent.i18n import LANGUAGES
from agent.schedule.model import Session, merge_schedules

_FAILING = {"fail", "error", "warn"}
# The last change of each site before a time, and every change from then to the start: the
# condition at T-60 may come from a change logged days before.
_EVENTS = (
    "SELECT at, site_id, old, new, detail FROM events WHERE at <= :end AND (at >= :lo OR id IN"
    " (SELECT max(id) FROM events WHERE at < :lo GROUP BY site_id)) ORDER BY at, id"
)
_INCIDENTS_MAX = 100_000


def _session(store: Store, session_id: str) -> tuple[Session | None, set[str] | None]:
    """The session as published, and the sites taking part (None: every site)."""
    published = store.schedules()
    found = next((s for p in published.values() for s in p.entries
                  if s.session_id == session_id and not s.cancelled), None)  # fmt: skip
    if found is None:
        return None, None
    every = published.get("")
    sites = {sid for sid in store.expected_of()
             if any(s.session_id == session_id
                    for s in merge_schedules(every, published.get(sid)))}  # fmt: skip
    return found, sites


def read_report(db_path: Path | str, session_id: str, now: float) -> Report:
    store = Store(db_path)
    try:
        session, taking_part = _session(store, session_id)
        rows = store.sites(now, default_interval=60.0, grace_s=0.0)
        districts = {r.site_id: district_of(r.tier, r.site_id, r.parent) for r in rows}
        att = session_report(
            session_id, store.attendance(session_id), store.expected_of(), districts
        )
        live = store.live_events(session_id)
        start = session.start.timestamp() if session else None
        end = session.end.timestamp() if session else None
        ready = None
        if start is not None:
            facts = {
                r.site_id: SiteFacts(r.site_id, r.name, r.tier, districts[r.site_id], {
                    lang: [f"{n}: {c.reason_in(lang)}" for n, c in sorted(r.components.items())
                           if c.status in _FAILING]
                    for lang in LANGUAGES})
                for r in rows if taking_part is None or r.site_id in taking_part
            }  # fmt: skip
            lo = start - CHECKPOINTS[0][1]
            events = [
                Event(*e) for e in store.db.execute(_EVENTS, {"end": start, "lo": lo}).fetchall()
            ]
            ready = readiness(start, facts, events)
    finally:
        store.close()
    incidents = []
    if start is not None:
        alerts = AlertStore(db_path)
        try:
            incidents = alerts.incidents(since=start - CHECKPOINTS[0][1], limit=_INCIDENTS_MAX)
        finally:
            alerts.close()
    return build(session_id, att, title=session.title if session else "", start=start,
                 end=end, readiness=ready, live=live, alerts=incidents)  # fmt: skip
