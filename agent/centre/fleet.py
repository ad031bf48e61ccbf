"""Fleet views, pure: each site's condition, counts by tier and by parent, the sites that are
not ready with their failing components, and the text shown to the operator.

Condition, in order: `offline` (availability not online: the will, a clean shutdown, or never
heard), `silent` (online but unheard for `silent_after` x its report interval: a half-open
link, a hung agent, or a retained state left from an earlier life), then the verdict of the
latest live state: `ready`, `degraded`, `fault`, or `unknown` before the first check.

A site's report interval is the heartbeat its meta promises (a `state` at least that often,
in a session too, when routine checks are skipped); an agent whose meta does not say is
judged by its check interval, capped by the centre's report_interval_s.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from agent.i18n import LANGUAGES, Lang, say
from agent.messages import Message, render_or


class Condition(StrEnum):
    READY = "ready"
    DEGRADED = "degraded"
    FAULT = "fault"
    OFFLINE = "offline"
    SILENT = "silent"
    UNKNOWN = "unknown"


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
    if site.availability != "online":
        return Condition.OFFLINE
    if site.last_seen is None or now - site.last_seen > silent_window(site, silent_after):
        return Condition.SILENT
    if is_stale(site, now, silent_after):
        return Condition.SILENT
    if site.verdict in (Condition.READY, Condition.DEGRADED, Condition.FAULT):
        return Condition(site.verdict)
    return Condition.UNKNOWN


def _when(epoch: float | None, lang: Lang = "en") -> str:
    if epoch is None:
        return say("centre.status.never", lang)
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# The availability reasons our agents send, by the code the page translates them with.
AVAIL_REASONS = {"clean shutdown": "why.shutdown", "connection lost (will)": "why.will"}
Problem = dict[str, Any]  # {"code": ..., parameters}: the page renders it in its language


def problem_msgs(site: SiteRow, cond: Condition, now: float, silent_after: float) -> list[Problem]:
    """One code and its parameters per reason the site is not ready, most telling first;
    times are epoch seconds (None: never)."""
    out: list[Problem] = []
    if cond is Condition.OFFLINE:
        why = site.avail_reason or ("never connected" if site.availability is None else "")
        code = "why.never" if not site.avail_reason and why else AVAIL_REASONS.get(why, "")
        out.append({"code": "p.offline" if why else "p.offline.nowhy", "why": why,
                    "why_code": code, "last_seen": site.last_seen})  # fmt: skip
    elif cond is Condition.SILENT:
        window = silent_window(site, silent_after)
        if is_stale(site, now, silent_after):
            out.append({"code": "p.stale", "state_ts": site.state_ts})
        out.append({"code": "p.silent.hb" if site.heartbeat_s else "p.silent",
                    "window": round(window), "heartbeat": site.heartbeat_s,
                    "last_seen": site.last_seen})  # fmt: skip
    elif cond is Condition.UNKNOWN:
        out.append({"code": "p.nocheck"})
    for name, comp in sorted(site.components.items()):
        if comp.status in _BAD:
            code = "p.component.hint" if comp.hint else "p.component"
            out.append({"code": code, "name": name, **comp.said()})
    if site.lost:
        out.append({"code": "p.lost", "n": site.lost})
    return out


def english(problem: Problem) -> str:
    """The problem's English line (logs, the JSON's `problems` for older pages)."""
    return problem_text(problem, "en")


def problems(
    site: SiteRow, cond: Condition, now: float, silent_after: float, lang: Lang = "en"
) -> list[str]:
    """One line per reason the site is not ready, most telling first; the components'
    reasons and hints in `lang` where the site sent them as messages."""
    return [problem_text(p, lang) for p in problem_msgs(site, cond, now, silent_after)]


def problem_text(problem: Problem, lang: Lang) -> str:
    """The problem in `lang` (centre.problem.*), with what the site said in `lang` where it
    sent it as a message."""
    values = dict(problem)
    for key in ("reason", "hint"):
        if f"{key}_by_lang" in values:
            values[key] = values[f"{key}_by_lang"].get(lang, values[key])
    for key in ("last_seen", "state_ts"):
        if key in values:
            values[key] = _when(values[key], lang)
    if values.get("heartbeat") is not None:
        values["heartbeat"] = f"{values['heartbeat']:g}"
    if values.get("why_code") in _WHY_IDS:
        values["why"] = say(_WHY_IDS[values["why_code"]], lang)
    if values.get("status") in _STATUS_IDS:
        values["status"] = say(_STATUS_IDS[values["status"]], lang)
    params = {k: v for k, v in values.items() if isinstance(v, str | int | float)}
    return say(_PROBLEM_IDS[problem["code"]], lang, **params)


_PROBLEM_IDS = {
    "p.offline": "centre.problem.offline",
    "p.offline.nowhy": "centre.problem.offline_nowhy",
    "p.stale": "centre.problem.stale",
    "p.silent": "centre.problem.silent",
    "p.silent.hb": "centre.problem.silent_hb",
    "p.nocheck": "centre.problem.nocheck",
    "p.component": "centre.problem.component",
    "p.component.hint": "centre.problem.component_hint",
    "p.lost": "centre.problem.lost",
}
_WHY_IDS = {
    "why.never": "centre.why.never",
    "why.shutdown": "centre.why.shutdown",
    "why.will": "centre.why.will",
}
_STATUS_IDS = {
    "fail": "centre.component_status.fail",
    "error": "centre.component_status.error",
    "warn": "centre.component_status.warn",
}
_CONDITION_IDS = {
    "ready": "centre.condition.ready",
    "degraded": "centre.condition.degraded",
    "fault": "centre.condition.fault",
    "offline": "centre.condition.offline",
    "silent": "centre.condition.silent",
    "unknown": "centre.condition.unknown",
}
_TIER_IDS = {
    "province": "centre.tier.province",
    "district": "centre.tier.district",
    "commune": "centre.tier.commune",
}


def condition_word(code: str, lang: Lang) -> str:
    """A condition in `lang`; a code this release does not know, as it is."""
    return say(_CONDITION_IDS[code], lang) if code in _CONDITION_IDS else code


def tier_word(code: str, lang: Lang) -> str:
    """A tier in `lang` ("province" for the province's total too); an unknown code as it is."""
    return say(_TIER_IDS[code], lang) if code in _TIER_IDS else code


@dataclass(frozen=True)
class NotReady:
    site_id: str
    name: str
    tier: str
    parent: str | None
    condition: str
    problems: list[str]


@dataclass(frozen=True)
class FleetView:
    at: float
    total: int
    counts: dict[str, int]
    by_tier: dict[str, dict[str, int]]
    by_parent: dict[str, dict[str, int]]  # key "<tier> under <parent>"
    not_ready: list[NotReady]
    lost: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _counts(conds: list[Condition]) -> dict[str, int]:
    c = Counter(conds)
    return {k: c.get(Condition(k), 0) for k in CONDITION_ORDER}


def _tier_key(tier: str) -> tuple[int, str]:
    return TIER_ORDER.get(tier, len(TIER_ORDER)), tier


def fleet_view(
    sites: list[SiteRow], now: float, silent_after: float, lang: Lang = "en"
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
    )


def _count_line(label: str, counts: dict[str, int], lang: Lang) -> str:
    parts = " ".join(
        f"{condition_word(k, lang)} {v:>3}" for k, v in counts.items() if v or k != "unknown"
    )
    return f"  {label:<32} {parts}"


def _parent_label(key: str, lang: Lang) -> str:
    tier, _, parent = key.partition(" under ")
    return say("centre.status.under", lang, tier=tier_word(tier, lang), parent=parent)


def render(view: FleetView, lang: Lang = "en") -> str:
    """The operator's text of `centre status`, in `lang`."""
    lines = [
        say("centre.status.fleet", lang, at=_when(view.at, lang), count=view.total),
        _count_line(say("centre.status.all", lang), view.counts, lang),
        say("centre.status.by_tier", lang),
    ]
    lines += [
        _count_line(tier_word(tier, lang), counts, lang) for tier, counts in view.by_tier.items()
    ]
    lines.append(say("centre.status.by_parent", lang))
    lines += [
        _count_line(_parent_label(key, lang), counts, lang)
        for key, counts in view.by_parent.items()
    ]
    if view.lost:
        lines.append(say("centre.status.lost", lang, count=view.lost))
    lines.append(say("centre.status.not_ready", lang, count=len(view.not_ready)))
    for n in view.not_ready:
        cond = condition_word(n.condition, lang).upper()
        lines.append(f"  [{tier_word(n.tier, lang)}] {n.site_id} ({n.name or '?'}) {cond}")
        lines += [f"      - {p}" for p in n.problems]
    return "\n".join(lines) + "\n"
