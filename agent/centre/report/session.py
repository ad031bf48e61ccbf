"""The session report, pure: readiness before it, drop-outs during it, attendance, and the
incidents of its window (from T-60 to its end), from rows the reader (read.py) took from the
store; the outputs (text.py, export.py, document.py) only lay it out.

A drop-out is a site's live verdict turning `dropped` (live_events) until it is next in the
call (`in_call` or `poor`); one still out at the end is counted to the end, not rejoined.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from agent.centre.alerts.model import Incident
from agent.centre.report.attendance import SessionReport
from agent.centre.report.readiness import CHECKPOINTS, Readiness
from agent.centre.store import LiveEventRow
from agent.i18n import LANGUAGES
from agent.messages import Message, render, render_or

DROPPED = "dropped"
_IN_CALL = {"in_call", "poor"}


def by_lang(msg: Message | None, text: str = "") -> dict[str, str]:
    """A reason in every language the centre has (the site's English when it sent no id)."""
    return {lang: render_or(msg, text, lang) for lang in LANGUAGES}


@dataclass(frozen=True)
class Drop:
    site_id: str
    at: float
    back_at: float | None  # None: not back in the call by the end
    duration_s: float | None  # to the end when not back; None when the end is not known
    reason: dict[str, str]  # by language


@dataclass(frozen=True)
class IncidentLine:
    id: int
    site_id: str
    district: str
    rule: str
    severity: str
    opened_at: float
    closed_at: float | None
    repair_s: float | None  # None: still open
    reason: dict[str, str]


@dataclass(frozen=True)
class Report:
    session_id: str
    title: str
    start: float | None  # None: the stored schedule no longer holds the session
    end: float | None
    attendance: SessionReport
    readiness: Readiness | None  # None without a start to count back from
    drops: list[Drop]
    median_drop_s: float | None
    incidents: list[IncidentLine]
    median_repair_s: float | None

    @property
    def known(self) -> bool:
        """The centre knows the session: scheduled, or a site counted or dropped in it (the
        absent sites alone are every summoned site, whatever the id asked for)."""
        counted = any(not s.absent for s in self.attendance.sites)
        return self.start is not None or counted or bool(self.drops)

    def to_json(self) -> dict[str, Any]:
        """The attendance's keys at the top, as `centre report --json` gave them before, so a
        script reading them keeps working; the rest beside them."""
        data = asdict(self)
        return {**data.pop("attendance"), **data}


def drops(rows: Iterable[LiveEventRow], end: float | None) -> list[Drop]:
    """`rows`: one session's live transitions (any order)."""
    out: list[Drop] = []
    open_: dict[str, LiveEventRow] = {}
    for r in sorted(rows, key=lambda r: (r.ts, r.site_id)):
        if r.after == DROPPED and r.site_id not in open_:
            open_[r.site_id] = r
        elif r.after in _IN_CALL and r.site_id in open_:
            d = open_.pop(r.site_id)
            out.append(Drop(d.site_id, d.ts, r.ts, r.ts - d.ts, by_lang(d.reason_msg, d.reason)))
    for d in open_.values():
        left = None if end is None else max(0.0, end - d.ts)
        out.append(Drop(d.site_id, d.ts, None, left, by_lang(d.reason_msg, d.reason)))
    return sorted(out, key=lambda d: (d.at, d.site_id))


def incidents(
    rows: Iterable[Incident], start: float | None, end: float | None
) -> list[IncidentLine]:
    """The incidents opened in the session's window, or open during it (opened before)."""
    lo = None if start is None else start - CHECKPOINTS[0][1]
    out = []
    for i in rows:
        if end is not None and i.opened_at > end:
            continue
        if lo is not None and i.opened_at < lo and i.closed_at is not None and i.closed_at < lo:
            continue
        reason: dict[str, str] = {lang: render(i.reason, lang) for lang in LANGUAGES}
        out.append(IncidentLine(i.id, i.site_id, i.district, i.rule, i.severity.value,
                                i.opened_at, i.closed_at, i.time_to_repair_s, reason))  # fmt: skip
    return sorted(out, key=lambda i: (i.opened_at, i.id))


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def build(
    session_id: str,
    attendance: SessionReport,
    *,
    title: str = "",
    start: float | None = None,
    end: float | None = None,
    readiness: Readiness | None = None,
    live: Iterable[LiveEventRow] = (),
    alerts: Iterable[Incident] = (),
) -> Report:
    dropped = drops(live, end)
    lines = incidents(alerts, start, end)
    return Report(
        session_id,
        title,
        start,
        end,
        attendance,
        readiness,
        dropped,
        _median([d.duration_s for d in dropped if d.duration_s is not None]),
        lines,
        _median([i.repair_s for i in lines if i.repair_s is not None]),
    )
