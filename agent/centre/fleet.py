"""Fleet views, pure: each site's condition, counts by tier and by parent, the sites that are
not ready with their failing components, and the text shown to the operator.

Condition, in order: `never_seen` (on the roster, not one message from it yet), `offline`
(availability not online: the will, a clean shutdown, or never connected), `silent` (online
but unheard for `silent_after` x its report interval: a half-open link, a hung agent, or a
retained state left from an earlier life), then the verdict of the latest live state:
`ready`, `degraded`, `fault`, or `unknown` before the first check. Before all but
`never_seen`: `unreachable`, the site is behind a regional broker whose bridge to the central
broker is down (docs/brokers.md): its last word is not current, and the fault is the region's.

A site's report interval is the heartbeat its meta promises (a `state` at least that often,
in a session too, when routine checks are skipped); an agent whose meta does not say is
judged by its check interval, capped by the centre's report_interval_s.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from agent.i18n import LANGUAGES, current_language
from agent.messages import Message, Param, catalogue, render_or
from agent.messages import render as render_msg


class Condition(StrEnum):
    READY = "ready"
    DEGRADED = "degraded"
    FAULT = "fault"
    OFFLINE = "offline"
    SILENT = "silent"
    NEVER_SEEN = "never_seen"
    UNKNOWN = "unknown"
    UNREACHABLE = "unreachable"  # behind a regional broker whose bridge is down


TIER_ORDER = {"province": 0, "district": 1, "commune": 2}
CONDITION_ORDER = [c.value for c in Condition]
_BAD = {"fail", "error", "warn"}


@dataclass(frozen=True)
class ComponentRow:
    status: str
    reason: str
    hint: str = ""
    reason_msg: Message | None = None  # from a site that said it as a message
    hint_msg: Message | None = None

    def reason_in(self, lang: str) -> str:
        return render_or(self.reason_msg, self.reason, lang)

    def hint_in(self, lang: str) -> str:
        return render_or(self.hint_msg, self.hint, lang) if self.hint else ""

    def said(self) -> dict[str, Any]:
        """What the site said of it, for the page: the English it sent, and its words in
        each language the centre has (rendered here: the site may have sent a message id;
        the page picks its own language, whatever the site's)."""
        return {
            "status": self.status,
            "reason": self.reason,
            "hint": self.hint,
            "reason_by_lang": {lang: self.reason_in(lang) for lang in LANGUAGES},
            "hint_by_lang": {lang: self.hint_in(lang) for lang in LANGUAGES},
        }


@dataclass(frozen=True)
class LiveRow:
    """A site's latest live state (the `live` topic): its session, verdict and why."""

    session_id: str | None  # None: the site said its session is over
    title: str = ""
    start: float | None = None  # epoch seconds
    end: float | None = None
    verdict: str = "unknown"
    since: float | None = None
    reason: str = ""
    hint: str = ""
    reason_msg: Message | None = None
    hint_msg: Message | None = None
    ts: float | None = None

    def said(self) -> dict[str, Any]:
        """For the page and scripts: the verdict, since when, and why in each language."""
        said = ComponentRow(self.verdict, self.reason, self.hint, self.reason_msg, self.hint_msg)
        return {
            "v": self.verdict,
            "since": self.since,
            "session": self.session_id,
            "reason": self.reason,
            "reason_by_lang": {lang: said.reason_in(lang) for lang in LANGUAGES},
            "hint_by_lang": {lang: said.hint_in(lang) for lang in LANGUAGES},
        }


@dataclass(frozen=True)
class SiteRow:
    """What the store knows of one site, as plain values."""

    site_id: str
    name: str = ""
    tier: str = "commune"
    parent: str | None = None
    availability: str | None = None
    avail_reason: str = ""
    last_seen: float | None = None  # epoch seconds
    verdict: str | None = None
    state_ts: float | None = None
    state_retained: bool = False
    interval_s: float = 60.0  # the check interval, capped: used when heartbeat_s is unknown
    heartbeat_s: float | None = None  # from meta: the agent's promise
    components: dict[str, ComponentRow] = field(default_factory=dict)
    lost: int = 0
    dropped: int = 0
    summoned: int | None = None  # people summoned: the roster's number, else the site's own
    on_roster: bool = False  # on the province's list of expected sites
    since: float | None = None  # epoch the recorded condition began (None: not recorded)
    live: LiveRow | None = None  # its latest live state, if it ever sent one
    region: str | None = None  # the regional broker it connects to (the roster's)
    region_down_since: float | None = None  # that broker's bridge down since (None: up)


def silent_window(site: SiteRow, silent_after: float) -> float:
    return silent_after * (site.heartbeat_s or site.interval_s)


def is_stale(site: SiteRow, now: float, silent_after: float) -> bool:
    """The latest state came only as a retained message, and it is older than the window."""
    return (
        site.state_retained
        and site.state_ts is not None
        and now - site.state_ts > silent_window(site, silent_after)
    )


def condition(site: SiteRow, now: float, silent_after: float) -> Condition:
    if site.last_seen is None and site.availability is None and site.state_ts is None:
        return Condition.NEVER_SEEN  # only the roster made it: not one message yet
    if site.region_down_since is not None:
        # Its broker is cut off from the centre: nothing it last said is current, and it is
        # not the site that failed (nor each site alone).
        return Condition.UNREACHABLE
    if site.availability != "online":
        return Condition.OFFLINE
    if site.last_seen is None or now - site.last_seen > silent_window(site, silent_after):
        return Condition.SILENT
    if is_stale(site, now, silent_after):
        return Condition.SILENT
    if site.verdict in (Condition.READY, Condition.DEGRADED, Condition.FAULT):
        return Condition(site.verdict)
    return Condition.UNKNOWN


def _when(epoch: float | None, lang: str = "en") -> str:
    if epoch is None:
        return say(_NEVER, lang)
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


_NEVER = "fleet.never"
# The availability reasons our agents send, by the id that says them in the reader's language.
AVAIL_REASONS = {"clean shutdown": "fleet.why.shutdown", "connection lost (will)": "fleet.why.will"}
_WHY_NEVER = "fleet.why.never"
Problem = dict[str, Any]  # {"code": a fleet.problem.* id, its parameters}
_OFFLINE = "fleet.problem.offline"
_OFFLINE_NOWHY = "fleet.problem.offline_nowhy"
_STALE = "fleet.problem.stale"
_SILENT = "fleet.problem.silent"
_SILENT_HB = "fleet.problem.silent_hb"
_NOCHECK = "fleet.problem.nocheck"
_NEVER_SEEN = "fleet.problem.never_seen"
_REGION_DOWN = "fleet.problem.region_down"
_LOST = "fleet.problem.lost"
_COMPONENT = "fleet.problem.component"
_COMPONENT_HINT = "fleet.problem.component_hint"
_STATUS = "fleet.status."  # + a check status: ok, warn, fail, error, skipped
CONDITION = "fleet.condition."  # + a Condition
TIER = "fleet.tier."  # + a tier


def problem_msgs(site: SiteRow, cond: Condition, now: float, silent_after: float) -> list[Problem]:
    """One id and its parameters per reason the site is not ready, most telling first;
    times are epoch seconds (None: never). The page renders them in its own language."""
    out: list[Problem] = []
    if cond is Condition.NEVER_SEEN:
        out.append({"code": _NEVER_SEEN})
    elif cond is Condition.OFFLINE:
        why = site.avail_reason or ("never connected" if site.availability is None else "")
        code = _WHY_NEVER if not site.avail_reason and why else AVAIL_REASONS.get(why, "")
        out.append({"code": _OFFLINE if why else _OFFLINE_NOWHY, "why": why,
                    "why_code": code, "last_seen": site.last_seen})  # fmt: skip
    elif cond is Condition.SILENT:
        window = silent_window(site, silent_after)
        if is_stale(site, now, silent_after):
            out.append({"code": _STALE, "state_ts": site.state_ts})
        out.append({"code": _SILENT_HB if site.heartbeat_s else _SILENT,
                    "window": round(window), "heartbeat": site.heartbeat_s,
                    "last_seen": site.last_seen})  # fmt: skip
    elif cond is Condition.UNKNOWN:
        out.append({"code": _NOCHECK})
    elif cond is Condition.UNREACHABLE:
        out.append({"code": _REGION_DOWN, "region": site.region or "",
                    "down_since": site.region_down_since, "last_seen": site.last_seen})  # fmt: skip
    for name, comp in sorted(site.components.items()):
        if comp.status in _BAD:
            code = _COMPONENT_HINT if comp.hint else _COMPONENT
            out.append({"code": code, "name": name, **comp.said()})
    if site.lost:
        out.append({"code": _LOST, "count": site.lost})
    return out


def _word(prefix: str, code: str, lang: str) -> str:
    """A status or condition in `lang`; a code this release does not know, as it came."""
    return say(prefix + code, lang) if prefix + code in catalogue() else code


def say(msg_id: str, lang: str, **params: Param) -> str:
    """One of this module's ids in `lang`. The ids come as data (a problem's code, a status
    word), so not through message(): tests/test_centre_views.py renders every one."""
    return render_msg(Message(id=msg_id, params=params), lang) or msg_id


def english(problem: Problem, lang: str = "en") -> str:
    """The problem in `lang` (English for logs, scripts and older pages), with what the site
    said in `lang` where it sent it as a message."""
    values: dict[str, Param] = {}
    for key, value in problem.items():
        if key in ("last_seen", "state_ts", "down_since"):
            values[key] = _when(value, lang)
        elif key == "heartbeat":
            values[key] = "" if value is None else f"{value:g}"
        elif key in ("reason", "hint"):
            values[key] = problem.get(f"{key}_by_lang", {}).get(lang, value)
        elif key == "status":
            values[key] = _word(_STATUS, value, lang)
        elif key == "why" and problem.get("why_code"):
            values[key] = say(problem["why_code"], lang)
        elif isinstance(value, str | int | float) and key != "code":
            values[key] = value
    return say(problem["code"], lang, **values)


def problems(
    site: SiteRow, cond: Condition, now: float, silent_after: float, lang: str = "en"
) -> list[str]:
    """One line per reason the site is not ready, most telling first, in `lang` (the
    components' reasons and hints too, where the site sent them as messages)."""
    return [english(p, lang) for p in problem_msgs(site, cond, now, silent_after)]


@dataclass(frozen=True)
class NotReady:
    site_id: str
    name: str
    tier: str
    parent: str | None
    condition: str
    problems: list[str]


# ---- the live session ---------------------------------------------------------------------

LIVE = "fleet.live."  # + a live state
NOT_JOINED = "not_joined"
LIVE_ORDER = ["in_call", "poor", "dropped", "unknown", NOT_JOINED]
# Conditions in which a site's live state is not current: its agent is not heard.
_UNHEARD = {Condition.OFFLINE, Condition.SILENT, Condition.NEVER_SEEN, Condition.UNREACHABLE}


def live_now(site: SiteRow, now: float) -> LiveRow | None:
    """The site's live state if its session is still running at `now`."""
    live = site.live
    if live is None or live.session_id is None or live.end is None or live.end <= now:
        return None
    return live


@dataclass(frozen=True)
class LiveSite:
    site_id: str
    name: str
    tier: str
    parent: str | None
    state: str  # one of LIVE_ORDER
    since: float | None
    reason: str


@dataclass(frozen=True)
class LivePicture:
    """The running session as the centre sees it: the sites it expects (the roster's, those
    with a summoned number, and any site watching this session) in the call, poor, dropped,
    unknown (its agent unheard, or it cannot tell) or not joined (no live state for it)."""

    session_id: str
    title: str
    start: float | None
    end: float | None
    counts: dict[str, int]
    by_tier: dict[str, dict[str, int]]
    by_parent: dict[str, dict[str, int]]
    sites: list[LiveSite]  # every expected site not in the call, worst first


def _live_counts(states: list[str]) -> dict[str, int]:
    c = Counter(states)
    return {k: c.get(k, 0) for k in LIVE_ORDER}


def live_picture(
    sites: list[SiteRow], now: float, silent_after: float, lang: str = "en"
) -> LivePicture | None:
    """None outside sessions. When two run at once, the one most sites watch."""
    running = [live for s in sites if (live := live_now(s, now)) is not None]
    if not running:
        return None
    pick = Counter(r.session_id for r in running).most_common(1)[0][0]
    session = next(r for r in running if r.session_id == pick)
    lines: list[LiveSite] = []
    for s in sites:
        live = live_now(s, now)
        mine = live is not None and live.session_id == pick
        if not (mine or s.on_roster or s.summoned is not None):
            continue
        cond = condition(s, now, silent_after)
        if live is not None and mine and cond in _UNHEARD:
            state, since, reason = "unknown", s.since, say(CONDITION + cond.value, lang)
        elif live is not None and mine:
            said = ComponentRow(live.verdict, live.reason, "", live.reason_msg)
            state, since, reason = live.verdict, live.since, said.reason_in(lang)
        else:
            state, since, reason = NOT_JOINED, session.start, ""
        lines.append(LiveSite(s.site_id, s.name, s.tier, s.parent, state, since, reason))
    tiers: dict[str, list[str]] = {}
    parents: dict[str, list[str]] = {}
    for line in lines:
        tiers.setdefault(line.tier, []).append(line.state)
        parents.setdefault(f"{line.tier} under {line.parent or '-'}", []).append(line.state)
    rank = {k: i for i, k in enumerate(["dropped", "poor", "unknown", NOT_JOINED])}
    problems = [line for line in lines if line.state != "in_call"]
    problems.sort(key=lambda x: (rank.get(x.state, 9), _tier_key(x.tier), -(x.since or 0)))
    return LivePicture(
        session_id=pick or "",
        title=session.title,
        start=session.start,
        end=session.end,
        counts=_live_counts([line.state for line in lines]),
        by_tier={t: _live_counts(tiers[t]) for t in sorted(tiers, key=_tier_key)},
        by_parent={
            p: _live_counts(parents[p])
            for p in sorted(parents, key=lambda k: (_tier_key(k.split(" ")[0]), k))
        },
        sites=problems,
    )


@dataclass(frozen=True)
class FleetView:
    at: float
    total: int
    counts: dict[str, int]
    by_tier: dict[str, dict[str, int]]
    by_parent: dict[str, dict[str, int]]  # key "<tier> under <parent>"
    not_ready: list[NotReady]
    lost: int
    live: LivePicture | None = None  # while a session runs

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _counts(conds: list[Condition]) -> dict[str, int]:
    c = Counter(conds)
    return {k: c.get(Condition(k), 0) for k in CONDITION_ORDER}


def _tier_key(tier: str) -> tuple[int, str]:
    return TIER_ORDER.get(tier, len(TIER_ORDER)), tier


def fleet_view(
    sites: list[SiteRow], now: float, silent_after: float, lang: str = "en"
) -> FleetView:
    conds = {s.site_id: condition(s, now, silent_after) for s in sites}
    tiers: dict[str, list[Condition]] = {}
    parents: dict[str, list[Condition]] = {}
    for s in sites:
        tiers.setdefault(s.tier, []).append(conds[s.site_id])
        parents.setdefault(f"{s.tier} under {s.parent or '-'}", []).append(conds[s.site_id])
    not_ready = [
        NotReady(
            s.site_id,
            s.name,
            s.tier,
            s.parent,
            conds[s.site_id].value,
            problems(s, conds[s.site_id], now, silent_after, lang),
        )
        for s in sites
        if conds[s.site_id] is not Condition.READY
    ]
    not_ready.sort(key=lambda n: (_tier_key(n.tier), CONDITION_ORDER.index(n.condition), n.site_id))
    return FleetView(
        at=now,
        total=len(sites),
        counts=_counts(list(conds.values())),
        by_tier={t: _counts(tiers[t]) for t in sorted(tiers, key=_tier_key)},
        by_parent={
            p: _counts(parents[p])
            for p in sorted(parents, key=lambda k: (_tier_key(k.split(" ")[0]), k))
        },
        not_ready=not_ready,
        lost=sum(s.lost for s in sites),
        live=live_picture(sites, now, silent_after, lang),
    )


# Shown only when some site is in them: most fleets have none, and a line of zeros hides the rest.
_QUIET = {Condition.UNKNOWN.value, Condition.NEVER_SEEN.value}


def _count_line(label: str, counts: dict[str, int], lang: str) -> str:
    parts = " ".join(
        f"{_word(CONDITION, k, lang)} {v:>3}" for k, v in counts.items() if v or k not in _QUIET
    )
    return f"  {label:<32} {parts}"


def _parent_label(key: str, lang: str) -> str:
    tier, _, parent = key.partition(" under ")
    return say("fleet.cli.under", lang, tier=_word(TIER, tier, lang), parent=parent)


def _width(text: str) -> int:
    # Vietnamese letters may come decomposed (a base and its marks): count what one sees.
    return sum(not unicodedata.combining(c) for c in text)


def table(rows: list[list[str]], right: frozenset[int] = frozenset()) -> str:
    """Rows of cells as aligned columns (the first row the heading); the columns in `right`
    (numbers) aligned right. Widths by what one sees, so Vietnamese lines up too."""
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]

    def cell(i: int, text: str) -> str:
        pad = " " * (widths[i] - _width(text))
        return pad + text if i in right else text + pad

    return "\n".join("  ".join(cell(i, c) for i, c in enumerate(row)).rstrip() for row in rows)


def _live_line(label: str, counts: dict[str, int], lang: str) -> str:
    parts = " ".join(f"{_word(LIVE, k, lang)} {v:>3}" for k, v in counts.items())
    return f"  {label:<32} {parts}"


def _live_lines(live: LivePicture, lang: str) -> list[str]:
    lines = [
        say("fleet.cli.live", lang, session=live.title or live.session_id),
        _live_line(say("fleet.cli.all", lang), live.counts, lang),
    ]
    lines += [_live_line(_word(TIER, t, lang), c, lang) for t, c in live.by_tier.items()]
    lines += [_live_line(_parent_label(k, lang), c, lang) for k, c in live.by_parent.items()]
    for x in live.sites:
        tier, state = _word(TIER, x.tier, lang), _word(LIVE, x.state, lang).upper()
        since = say("fleet.cli.since", lang, at=_when(x.since, lang))
        reason = f": {x.reason}" if x.reason else ""
        lines.append(f"  [{tier}] {x.site_id} ({x.name or '?'}) {state} {since}{reason}")
    return lines


def render(view: FleetView, lang: str | None = None) -> str:
    """`centre status` as text, in `lang` (the process language unless said)."""
    lang = lang or current_language()
    lines = [
        say("fleet.cli.header", lang, at=_when(view.at, lang), count=view.total),
        _count_line(say("fleet.cli.all", lang), view.counts, lang),
        say("fleet.cli.by_tier", lang),
    ]
    lines += [_count_line(_word(TIER, t, lang), c, lang) for t, c in view.by_tier.items()]
    lines.append(say("fleet.cli.by_parent", lang))
    lines += [_count_line(_parent_label(k, lang), c, lang) for k, c in view.by_parent.items()]
    if view.lost:
        lines.append(say("fleet.cli.lost", lang, count=view.lost))
    if view.live is not None:
        lines += _live_lines(view.live, lang)
    lines.append(say("fleet.cli.not_ready", lang, count=len(view.not_ready)))
    for n in view.not_ready:
        tier, cond = _word(TIER, n.tier, lang), _word(CONDITION, n.condition, lang).upper()
        lines.append(f"  [{tier}] {n.site_id} ({n.name or '?'}) {cond}")
        lines += [f"      - {p}" for p in n.problems]
    return "\n".join(lines) + "\n"
