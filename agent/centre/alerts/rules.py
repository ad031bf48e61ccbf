"""Which alerts fire now, from what the centre knows of each site. Pure: the time is a
parameter, never read here, so a table of facts over time is a test.

A rule's condition must hold for its `for_s` before the alert fires, so a flap shorter than
the hold never pages. The hold is counted from when the condition began: the store's own
record of it where it has one (the condition's or the live verdict's `since`), so a centre
restarted mid-hold fires at the same moment; else from the first evaluation that saw it,
kept in `RuleMemory`. A condition that ends forgets its start: the next one holds afresh.

Most kinds judge one site at a time (`SiteFacts`); `region_down` judges a regional broker
(`RegionFacts`) and fires one alert for the region, not one per site behind it.

`docs/alerts.md` ("Rules") says each kind's semantics and parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from agent.centre.alerts.model import REGION_TIER, Alert, AlertKind, Rule, region_subject
from agent.centre.fleet import Condition
from agent.messages import Message, message

DEFAULT_LEAD_MINUTES = 15
DEFAULT_SHARE = 0.5
DEFAULT_AFTER_MINUTES = 15.0
DEFAULT_PENDING_OVER = 100

# Conditions in which the centre does not hear the site: what it last said is not news.
UNHEARD = frozenset({Condition.OFFLINE, Condition.SILENT, Condition.NEVER_SEEN})
# ...and those whose last word is stale for another reason: behind a cut regional broker.
STALE = UNHEARD | {Condition.UNREACHABLE}


@dataclass(frozen=True)
class SessionFacts:
    """A session of the site's schedule (epoch seconds)."""

    session_id: str
    start: float
    end: float
    title: str = ""

    @property
    def label(self) -> str:
        return self.title or self.session_id

    def running(self, now: float) -> bool:
        return self.start <= now < self.end


@dataclass(frozen=True)
class FirmwareFact:
    """A device the site's own check found below its profile's minimum firmware."""

    component: str
    version: str
    minimum: str


@dataclass(frozen=True)
class SiteFacts:
    """One site as the rules see it now (facts.py reads it from the fleet store)."""

    site_id: str
    name: str = ""
    tier: str = "commune"
    district: str = ""  # its parent for a commune, itself for a district, "" for the province
    condition: Condition = Condition.UNKNOWN
    since: float | None = None  # when the recorded condition began
    failing: tuple[str, ...] = ()  # components whose latest status is fail or error
    live_verdict: str | None = None  # the latest live state's, while it names a session
    live_since: float | None = None
    live_session: SessionFacts | None = None  # the session the live state is about
    pending: int | None = None  # reports queued in the site's outbox (its latest state)
    attendance: int | None = None  # the latest count in `session`; None: none received
    summoned: int | None = None  # people summoned for `session`
    session: SessionFacts | None = None  # the site's session running now, else its next
    firmware: tuple[FirmwareFact, ...] = ()
    region_down: bool = False  # behind a regional broker whose bridge is down

    @property
    def label(self) -> str:
        return self.name or self.site_id


@dataclass(frozen=True)
class RegionFacts:
    """A regional broker as the centre last heard of its bridge (facts.py reads it)."""

    region: str
    up: bool
    since: float  # when the bridge went up or down, as the centre read it
    sites: int = 0  # the roster's sites behind it


@dataclass(frozen=True)
class RuleMemory:
    """Alert key -> when its condition began, for the conditions holding at the last
    evaluation. Immutable: `evaluate` returns the next one."""

    started: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class _Holding:
    """A rule's condition holding at one site now: since when (if the facts know), why."""

    began: float | None
    reason: Message
    session: SessionFacts | None = None


def _in_window(site: SiteFacts, lead_minutes: int, now: float) -> float | None:
    """The start of the site's pre-session window (lead before the start, to the end) if
    `now` is inside it, else None."""
    s = site.session
    if s is None:
        return None
    opens = s.start - lead_minutes * 60
    return opens if opens <= now < s.end else None


def _later(a: float | None, b: float) -> float:
    return b if a is None else max(a, b)


def _check_failed(rule: Rule, site: SiteFacts, now: float) -> _Holding | None:
    lead = DEFAULT_LEAD_MINUTES if rule.lead_minutes is None else rule.lead_minutes
    opens = _in_window(site, lead, now)
    if opens is None or site.condition is not Condition.FAULT or site.session is None:
        return None
    failed = ", ".join(site.failing) or "-"
    reason = message(
        "alerts.check_failed",
        site=site.label,
        session=site.session.label,
        components=failed,
        minutes=lead,
    )
    return _Holding(_later(site.since, opens), reason, site.session)


# The conditions' own words (fleet.condition.*), so the reader's language says them.
_CONDITION_WORDS: dict[Condition, Callable[[], Message]] = {
    Condition.OFFLINE: lambda: message("fleet.condition.offline"),
    Condition.SILENT: lambda: message("fleet.condition.silent"),
    Condition.NEVER_SEEN: lambda: message("fleet.condition.never_seen"),
}


def _site_down(rule: Rule, site: SiteFacts, now: float) -> _Holding | None:
    lead = DEFAULT_LEAD_MINUTES if rule.lead_minutes is None else rule.lead_minutes
    opens = _in_window(site, lead, now)
    if opens is None or site.condition not in UNHEARD or site.session is None:
        return None
    if site.region_down:
        return None  # not heard because its region is cut off: region_down says it, once
    reason = message(
        "alerts.site_down",
        site=site.label,
        condition=_CONDITION_WORDS[site.condition](),
        session=site.session.label,
    )
    return _Holding(_later(site.since, opens), reason, site.session)


def _live_holding(
    site: SiteFacts, verdict: str, now: float, reason: Callable[[SessionFacts], Message]
) -> _Holding | None:
    """The site's live state says `verdict` in a session running now (from the session's
    start at the earliest: a state left from before it is not the session's trouble)."""
    s = site.live_session
    if site.live_verdict != verdict or s is None or not s.running(now):
        return None
    if site.condition in STALE:
        return None  # its last word is stale: site_down or region_down says what is known
    return _Holding(_later(site.live_since, s.start), reason(s), s)


def _call_dropped(rule: Rule, site: SiteFacts, now: float) -> _Holding | None:
    def reason(s: SessionFacts) -> Message:
        return message("alerts.call_dropped", site=site.label, session=s.label)

    return _live_holding(site, "dropped", now, reason)


def _media_poor(rule: Rule, site: SiteFacts, now: float) -> _Holding | None:
    def reason(s: SessionFacts) -> Message:
        return message("alerts.media_poor", site=site.label, session=s.label)

    return _live_holding(site, "poor", now, reason)


def _low_attendance(rule: Rule, site: SiteFacts, now: float) -> _Holding | None:
    s = site.session
    if s is None or not site.summoned:
        return None
    after = DEFAULT_AFTER_MINUTES if rule.after_minutes is None else rule.after_minutes
    share = DEFAULT_SHARE if rule.share is None else rule.share
    judged = s.start + after * 60
    if not judged <= now < s.end:
        return None
    count = site.attendance or 0  # no count received: nobody is known to be there
    if count >= share * site.summoned:
        return None
    reason = message(
        "alerts.low_attendance",
        site=site.label,
        count=count,
        summoned=site.summoned,
        percent=round(share * 100),
        session=s.label,
    )
    return _Holding(judged, reason, s)


def _outbox_backlog(rule: Rule, site: SiteFacts, now: float) -> _Holding | None:
    limit = DEFAULT_PENDING_OVER if rule.pending_over is None else rule.pending_over
    if site.pending is None or site.pending <= limit or site.condition in STALE:
        return None
    reason = message("alerts.outbox_backlog", site=site.label, pending=site.pending, limit=limit)
    return _Holding(None, reason)


def _old_firmware(rule: Rule, site: SiteFacts, now: float) -> _Holding | None:
    if not site.firmware:
        return None
    parts = [
        message("alerts.firmware_part", component=f.component, version=f.version,
                minimum=f.minimum)
        for f in site.firmware
    ]  # fmt: skip
    return _Holding(None, message("alerts.old_firmware", site=site.label, devices=parts))


def _region_down(rule: Rule, region: RegionFacts, now: float) -> _Holding | None:
    if region.up:
        return None
    reason = message("alerts.region_down", region=region.region, sites=region.sites)
    return _Holding(region.since, reason)


# The region kinds: judged per regional broker, not per site.
_REGION_KINDS: dict[AlertKind, Callable[[Rule, RegionFacts, float], _Holding | None]] = {
    AlertKind.REGION_DOWN: _region_down,
}


@dataclass(frozen=True)
class _Subject:
    """What an alert is about, as the Alert names it."""

    site_id: str
    name: str
    district: str
    tier: str


def _judged(
    rule: Rule, facts: Sequence[SiteFacts], regions: Sequence[RegionFacts], now: float
) -> Iterator[tuple[_Subject, _Holding]]:
    """The subjects the rule's condition holds for now."""
    by_region = _REGION_KINDS.get(rule.kind)
    if by_region is not None:
        for region in regions:
            holding = by_region(rule, region, now)
            if holding is not None:
                subject = region_subject(region.region)
                yield _Subject(subject, region.region, "", REGION_TIER), holding
        return
    judge = _KINDS.get(rule.kind)
    if judge is None:
        return  # TEST: sent by hand, no condition to watch
    for site in facts:
        holding = judge(rule, site, now)
        if holding is not None:
            yield _Subject(site.site_id, site.name, site.district, site.tier), holding


_KINDS: dict[AlertKind, Callable[[Rule, SiteFacts, float], _Holding | None]] = {
    AlertKind.CHECK_FAILED: _check_failed,
    AlertKind.SITE_DOWN: _site_down,
    AlertKind.CALL_DROPPED: _call_dropped,
    AlertKind.MEDIA_POOR: _media_poor,
    AlertKind.LOW_ATTENDANCE: _low_attendance,
    AlertKind.OUTBOX_BACKLOG: _outbox_backlog,
    AlertKind.OLD_FIRMWARE: _old_firmware,
}


def alert_key(rule_id: str, site_id: str) -> str:
    return f"{rule_id}:{site_id}"


def evaluate(
    facts: Sequence[SiteFacts],
    rules: Sequence[Rule],
    memory: RuleMemory,
    now: float,
    regions: Sequence[RegionFacts] = (),
) -> tuple[list[Alert], RuleMemory]:
    """The alerts firing now (held past their rule's `for_s`), and the memory to pass next
    time. An alert's `since` is when its condition began, `fired_at` when the hold passed:
    both the same at every evaluation while it holds, so it is one alert, not one a turn."""
    firing: list[Alert] = []
    started: dict[str, float] = {}
    for rule in rules:
        for site, holding in _judged(rule, facts, regions, now):
            key = alert_key(rule.id, site.site_id)
            since = memory.started.get(key)
            if since is None:
                since = now if holding.began is None else min(holding.began, now)
            started[key] = since
            if now - since < rule.for_s:
                continue
            firing.append(
                Alert(
                    key=key,
                    rule=rule.id,
                    kind=rule.kind,
                    severity=rule.severity,
                    site_id=site.site_id,
                    site_name=site.name,
                    district=site.district,
                    tier=site.tier,
                    since=since,
                    fired_at=since + rule.for_s,
                    reason=holding.reason,
                    session_id=holding.session.session_id if holding.session else None,
                )
            )
    return firing, RuleMemory(MappingProxyType(started))


__all__ = [
    "FirmwareFact",
    "RegionFacts",
    "RuleMemory",
    "SessionFacts",
    "SiteFacts",
    "alert_key",
    "evaluate",
]
