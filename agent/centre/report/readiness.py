"""Readiness before a session, pure: each site's condition at T-60, T-15 and the start,
reconstructed from the condition changes the store logged (Store.events), and the sites that
were not ready at T-60 or T-15 yet ready at the start, with how long the fix took.

A site's condition at a time is the last change logged at or before it; a site with no change
logged by then was unknown to the centre (`never_seen`). Only `ready` is ready: a degraded
site may still join, but it is one the technicians had to look at, so leadership sees it.

How long a fix took: from when the site went wrong (the change in force at the first
checkpoint it was not ready at, counted from T-60 at the earliest: a site down for a week
did not take a week to fix in this session's preparation) to the change that made it ready.
"""

from __future__ import annotations

import bisect
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from agent.centre.store import Event

READY = "ready"
NEVER_SEEN = "never_seen"
# (label, seconds before the start): a report.check.<label> id names each in the text.
CHECKPOINTS = (("t60", 3600.0), ("t15", 900.0), ("start", 0.0))


@dataclass(frozen=True)
class SiteFacts:
    """What the report says of a site beside its conditions."""

    site_id: str
    name: str = ""
    tier: str = "commune"
    district: str = ""
    # language -> the reasons its failing components give (the latest the store holds)
    reasons: Mapping[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class NotReadySite:
    site_id: str
    name: str
    district: str
    condition: str
    since: float | None  # when it went into that condition (None: never heard of by then)
    reasons: Mapping[str, list[str]]  # by language; empty when the condition says it all


@dataclass(frozen=True)
class Checkpoint:
    label: str  # t60 | t15 | start
    at: float
    counts: dict[str, int]  # condition -> sites
    not_ready: list[NotReadySite]


@dataclass(frozen=True)
class Fixed:
    site_id: str
    name: str
    district: str
    condition: str  # what it was at the first checkpoint it was not ready at
    found: str  # that checkpoint's label
    fixed_at: float
    took_s: float


@dataclass(frozen=True)
class Readiness:
    checkpoints: list[Checkpoint]
    fixed: list[Fixed]
    median_fix_s: float | None


class _History:
    """One site's logged changes, oldest first, asked "what was it at t"."""

    def __init__(self, changes: list[Event]) -> None:
        self.at = [e.at for e in changes]
        self.new = [e.new for e in changes]

    def at_time(self, t: float) -> tuple[str, float | None]:
        i = bisect.bisect_right(self.at, t)
        return (self.new[i - 1], self.at[i - 1]) if i else (NEVER_SEEN, None)


# A component's reason explains a verdict, not an unheard site: offline, silent and never
# seen say it all by their name.
_EXPLAINED_BY_COMPONENTS = {"degraded", "fault", "unknown"}


def readiness(start: float, sites: Mapping[str, SiteFacts], events: Iterable[Event]) -> Readiness:
    """`sites`: the sites taking part; `events`: condition changes (any order, any site)."""
    by_site: dict[str, list[Event]] = {}
    for e in sorted(events, key=lambda e: e.at):
        if e.site_id in sites:
            by_site.setdefault(e.site_id, []).append(e)
    history = {sid: _History(by_site.get(sid, [])) for sid in sites}
    checkpoints = []
    for label, lead in CHECKPOINTS:
        at = start - lead
        conds = {sid: h.at_time(at) for sid, h in history.items()}
        not_ready = [
            NotReadySite(sid, f.name, f.district, conds[sid][0], conds[sid][1],
                         f.reasons if conds[sid][0] in _EXPLAINED_BY_COMPONENTS else {})
            for sid, f in sorted(sites.items(), key=lambda kv: (kv[1].district, kv[0]))
            if conds[sid][0] != READY
        ]  # fmt: skip
        counts = dict(sorted(Counter(c for c, _ in conds.values()).items()))
        checkpoints.append(Checkpoint(label, at, counts, not_ready))
    fixed = _fixed(start, sites, history)
    took = [f.took_s for f in fixed]
    return Readiness(checkpoints, fixed, statistics.median(took) if took else None)


def _fixed(
    start: float, sites: Mapping[str, SiteFacts], history: dict[str, _History]
) -> list[Fixed]:
    window = start - CHECKPOINTS[0][1]
    out = []
    for sid, h in history.items():
        cond, ready_since = h.at_time(start)
        if cond != READY or ready_since is None:
            continue
        for label, lead in CHECKPOINTS[:-1]:
            before, since = h.at_time(start - lead)
            if before != READY:
                went_wrong = max(since if since is not None else window, window)
                f = sites[sid]
                out.append(Fixed(sid, f.name, f.district, before, label, ready_since,
                                 ready_since - went_wrong))  # fmt: skip
                break
    return sorted(out, key=lambda f: (f.fixed_at, f.site_id))
