"""The rules' input, read from the fleet store: one `SiteFacts` per site, as the store knows
it now. A handful of queries over the whole fleet per evaluation, none per site.

What comes from where:
- name, tier, parent: the roster where it lists the site, else the site's own meta;
- condition and since: as the ingest last recorded them (it re-judges after every batch and
  every second), so the rules and the page agree;
- failing components, live verdict, outbox backlog: the site's latest state and live state;
- the session: from the schedule the centre last published (kept by the ingest), every
  site's entries overridden by the site's own, cancelled ones left out, like the agent;
- attendance: the newest count the site sent for that session; summoned: the session's own
  number where it has one, else the roster's, else the site's;
- firmware: the site's own check against its profile's `min_firmware` says so in its
  reason (`profile.verdict.below`, with the version and the minimum): the centre has no
  profiles of its own, and a site that does not check firmware says nothing;
- a site's region down: the roster's region of the site, and the `regions` table (the
  bridges' states the ingest keeps);
- the regions (`read_regions`): each regional broker the centre has heard a bridge state
  of, up or down since when, and how many of the roster's sites are behind it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

from agent.centre import fleet
from agent.centre.alerts.rules import FirmwareFact, RegionFacts, SessionFacts, SiteFacts
from agent.centre.store import Store
from agent.messages import Message
from agent.schedule.model import SchedulePayload, Session, merge_schedules

_BELOW = "profile.verdict.below"
_FAILING = {"fail", "error"}
# Every region the centre has a bridge state of, with the roster's sites behind it (a region
# the roster does not name still counts: its sites may not be listed by region).
_REGIONS_SQL = (
    "SELECT regions.region, regions.up, regions.since, count(roster.site_id) FROM regions"
    " LEFT JOIN roster ON roster.region = regions.region"
    " GROUP BY regions.region, regions.up, regions.since ORDER BY regions.region"
)


def district_of(tier: str, site_id: str, parent: str | None) -> str:
    """The district an alert about the site is routed by."""
    if tier == "province":
        return ""
    if tier == "district":
        return site_id
    return parent or ""


def _condition(value: str | None) -> fleet.Condition:
    try:
        return fleet.Condition(value or "unknown")
    except ValueError:
        return fleet.Condition.UNKNOWN  # not judged yet (or by a newer centre)


def _session(sessions: Sequence[Session], now: float) -> Session | None:
    """The session running now (the earliest started), else the next to start."""
    running = [s for s in sessions if s.start.timestamp() <= now < s.end.timestamp()]
    if running:
        return min(running, key=lambda s: s.start)
    coming = [s for s in sessions if s.start.timestamp() > now]
    return min(coming, key=lambda s: s.start) if coming else None


def _facts(s: Session) -> SessionFacts:
    return SessionFacts(s.session_id, s.start.timestamp(), s.end.timestamp(), s.title)


def _below(msg: Message | None) -> Iterator[Message]:
    """Every `profile.verdict.below` inside a reason (a probe nests its findings)."""
    if msg is None:
        return
    if msg.id == _BELOW:
        yield msg
    for value in msg.params.values():
        for inner in value if isinstance(value, list) else [value]:
            if isinstance(inner, Message):
                yield from _below(inner)


def firmware_of(components: dict[str, fleet.ComponentRow]) -> tuple[FirmwareFact, ...]:
    out = []
    for name, comp in sorted(components.items()):
        for m in _below(comp.reason_msg):
            version, minimum = m.params.get("value"), m.params.get("minimum")
            # the site's words: only plain text is taken for a version
            if isinstance(version, str) and isinstance(minimum, str) and version and minimum:
                out.append(FirmwareFact(name, version, minimum))
    return tuple(out)


def read_facts(
    source: Path | Store, now: float, sessions: Sequence[Session] | None = None
) -> list[SiteFacts]:
    """Every site's facts at `now`. `sessions`: every site's sessions (default: the schedule
    the centre last published, as the ingest stored it)."""
    store = Store(source) if isinstance(source, Path) else source
    try:
        return _read(store, now, sessions)
    finally:
        if store is not source:
            store.close()


def _read(store: Store, now: float, sessions: Sequence[Session] | None) -> list[SiteFacts]:
    published = store.schedules()
    fleet_wide = (
        SchedulePayload(entries=list(sessions)) if sessions is not None else published.get("")
    )
    recorded = store.recorded()
    counts: dict[str, dict[str, int | None]] = {}
    out = []
    # interval and grace do not matter here: only what the site said is read from the rows
    for row in store.sites(now, default_interval=60.0, grace_s=0.0):
        session = _session(merge_schedules(fleet_wide, published.get(row.site_id)), now)
        rec = recorded.get(row.site_id)
        count: int | None = None
        summoned = row.summoned
        if session is not None:
            if session.session_id not in counts:
                counts[session.session_id] = store.latest_counts(session.session_id)
            count = counts[session.session_id].get(row.site_id)
            if session.expected_attendance is not None:
                summoned = session.expected_attendance
        live = row.live
        live_session = verdict = live_since = None
        if live is not None and live.session_id and live.start is not None:
            end = live.end if live.end is not None else float("inf")
            live_session = SessionFacts(live.session_id, live.start, end, live.title)
            verdict, live_since = live.verdict, live.since
        out.append(
            SiteFacts(
                site_id=row.site_id,
                name=row.name,
                tier=row.tier,
                district=district_of(row.tier, row.site_id, row.parent),
                condition=_condition(rec.condition if rec else None),
                since=rec.since if rec else None,
                failing=tuple(n for n, c in sorted(row.components.items())
                              if c.status in _FAILING),
                live_verdict=verdict,
                live_since=live_since,
                live_session=live_session,
                pending=rec.pending if rec else None,
                attendance=count,
                summoned=summoned,
                session=_facts(session) if session else None,
                firmware=firmware_of(row.components),
                region_down=row.region_down_since is not None,
            )
        )  # fmt: skip
    return out


def read_regions(store: Store) -> list[RegionFacts]:
    """Every regional broker the centre has heard a bridge state of, with its roster count."""
    rows = store.db.execute(_REGIONS_SQL).fetchall()
    return [RegionFacts(str(r), bool(up), float(since), int(n)) for r, up, since, n in rows]


__all__ = ["district_of", "firmware_of", "read_facts", "read_regions"]
