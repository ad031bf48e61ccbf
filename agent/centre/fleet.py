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

from agent.i18n import LANGUAGES
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


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "never"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


# The availability reasons our agents send, by the code the page translates them with.
AVAIL_REASONS = {"clean shutdown": "why.shutdown", "connection lost (will)": "why.will"}
Problem = dict[str, Any]  # {"code": ..., parameters}: the page renders it in its language
# The English of each problem code (CLI, logs, `problems` in the JSON for older pages).
_ENGLISH = {
    "p.offline": "offline: {why}; last heard {last_seen}",
    "p.offline.nowhy": "offline; last heard {last_seen}",
    "p.stale": "stale retained state from {state_ts}",
    "p.silent": "online but silent for more than {window} s (last heard {last_seen})",
    "p.silent.hb": "online but silent for more than {window} s "
    "(heartbeat every {heartbeat} s, last heard {last_seen})",
    "p.nocheck": "no check result yet",
    "p.component": "{name} {status}: {reason}",
    "p.component.hint": "{name} {status}: {reason} ({hint})",
    "p.lost": "{n} report(s) lost (seq gaps)",
}


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


def english(problem: Problem, lang: str = "en") -> str:
    """The problem's English line (CLI, logs, older pages), with what the site said in
    `lang` where it sent it as a message."""
    values = dict(problem)
    for key in ("reason", "hint"):
        if f"{key}_by_lang" in values:
            values[key] = values[f"{key}_by_lang"].get(lang, values[key])
    for key in ("last_seen", "state_ts"):
        if key in values:
            values[key] = _when(values[key])
    if values.get("heartbeat") is not None:
        values["heartbeat"] = f"{values['heartbeat']:g}"
    return _ENGLISH[problem["code"]].format(**values)


def problems(
    site: SiteRow, cond: Condition, now: float, silent_after: float, lang: str = "en"
) -> list[str]:
    """One line per reason the site is not ready, most telling first; the components'
    reasons and hints in `lang` where the site sent them as messages."""
    return [english(p, lang) for p in problem_msgs(site, cond, now, silent_after)]


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
    )


def _count_line(label: str, counts: dict[str, int]) -> str:
    parts = " ".join(f"{k} {v:>3}" for k, v in counts.items() if v or k != "unknown")
    return f"  {label:<32} {parts}"


def render(view: FleetView) -> str:
    lines = [f"fleet at {_when(view.at)}: {view.total} site(s)", _count_line("all", view.counts)]
    lines.append("by tier:")
    lines += [_count_line(tier, counts) for tier, counts in view.by_tier.items()]
    lines.append("by parent:")
    lines += [_count_line(key, counts) for key, counts in view.by_parent.items()]
    if view.lost:
        lines.append(f"reports lost (seq gaps not explained by counted drops): {view.lost}")
    lines.append(f"not ready: {len(view.not_ready)}")
    for n in view.not_ready:
        lines.append(f"  [{n.tier}] {n.site_id} ({n.name or '?'}) {n.condition.upper()}")
        lines += [f"      - {p}" for p in n.problems]
    return "\n".join(lines) + "\n"
