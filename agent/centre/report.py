"""Attendance report per session, pure: for each site expected, counted (peak and median of
the samples) and rate; totals per tier and for the province; text, JSON and CSV.

The attendance payload is still a placeholder: a sample's `count` may be None (unknown, never
0), and an agent may send its own `peak`/`median`/`expected`. The report takes what is there:
the peak is the highest of counts and reported peaks, the median is over the counts (or the
last reported median when there are none), expected comes from the samples, else the site's
meta; a rate needs both.
"""

from __future__ import annotations

import csv
import io
import statistics
from dataclasses import asdict, dataclass
from typing import Any

from agent.centre.fleet import TIER, TIER_ORDER, say
from agent.centre.store import AttendanceRow
from agent.i18n import Lang
from agent.messages import catalogue


@dataclass(frozen=True)
class SiteLine:
    site_id: str
    tier: str
    expected: int | None
    peak: int | None
    median: float | None
    samples: int
    rate: float | None


@dataclass(frozen=True)
class Total:
    label: str
    sites: int
    expected: int
    counted: int  # sum of peaks
    rate: float | None


@dataclass(frozen=True)
class SessionReport:
    session_id: str
    sites: list[SiteLine]
    tiers: list[Total]
    province: Total

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _rate(counted: int | None, expected: int | None) -> float | None:
    if counted is None or not expected:
        return None
    return round(counted / expected, 3)


def site_line(
    site_id: str, tier: str, rows: list[AttendanceRow], meta_expected: int | None
) -> SiteLine:
    counts = [r.count for r in rows if r.count is not None]
    peaks = counts + [r.peak for r in rows if r.peak is not None]
    medians = [r.median for r in rows if r.median is not None]
    expecteds = [r.expected for r in rows if r.expected is not None]
    peak = max(peaks) if peaks else None
    median = float(statistics.median(counts)) if counts else (medians[-1] if medians else None)
    expected = expecteds[-1] if expecteds else meta_expected
    return SiteLine(site_id, tier, expected, peak, median, len(rows), _rate(peak, expected))


def _total(label: str, lines: list[SiteLine]) -> Total:
    expected = sum(line.expected or 0 for line in lines)
    counted = sum(line.peak or 0 for line in lines)
    return Total(label, len(lines), expected, counted, _rate(counted, expected))


def session_report(
    session_id: str, rows: list[AttendanceRow], sites: dict[str, tuple[str, int | None]]
) -> SessionReport:
    """`sites`: site_id -> (tier, expected attendance from meta) for every known site."""
    by_site: dict[str, list[AttendanceRow]] = {}
    for row in rows:
        by_site.setdefault(row.site_id, []).append(row)
    lines = [
        site_line(
            sid,
            sites.get(sid, ("commune", None))[0],
            by_site[sid],
            sites.get(sid, ("commune", None))[1],
        )
        for sid in by_site
    ]
    lines.sort(key=lambda s: (TIER_ORDER.get(s.tier, 9), s.site_id))
    tiers = sorted({s.tier for s in lines}, key=lambda t: TIER_ORDER.get(t, 9))
    return SessionReport(
        session_id,
        lines,
        [_total(t, [s for s in lines if s.tier == t]) for t in tiers],
        _total("province", lines),
    )


def _fmt(value: float | int | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if pct else f"{value:g}"


def _tier(code: str, lang: Lang) -> str:
    """A tier in `lang` ("province" is also the province's total); an unknown one as it is."""
    return say(TIER + code, lang) if TIER + code in catalogue() else code


_WIDTHS = {"site": 28, "tier": 9, "expected": 8, "peak": 6, "median": 7, "rate": 6, "samples": 7}
_COLUMNS = {
    "site": "centre.report.col.site",
    "tier": "centre.report.col.tier",
    "expected": "centre.report.col.expected",
    "peak": "centre.report.col.peak",
    "median": "centre.report.col.median",
    "rate": "centre.report.col.rate",
    "samples": "centre.report.col.samples",
}


def render(report: SessionReport, lang: Lang = "en") -> str:
    """The operator's text of `centre report`, in `lang`; each column as wide as its head
    (the Vietnamese heads are longer)."""
    heads = {name: say(msg_id, lang) for name, msg_id in _COLUMNS.items()}
    widths = {name: max(len(head), _WIDTHS[name]) for name, head in heads.items()}

    def row(cells: dict[str, str]) -> str:
        site, tier = cells.pop("site"), cells.pop("tier")
        right = " ".join(f"{v:>{widths[k]}}" for k, v in cells.items())
        return f"  {site:<{widths['site']}} {tier:<{widths['tier']}} {right}"

    lines = [say("centre.report.heading", lang, session=report.session_id,
                 count=len(report.sites)), row(dict(heads))]  # fmt: skip
    for s in report.sites:
        cells = [s.site_id, _tier(s.tier, lang), _fmt(s.expected), _fmt(s.peak)]
        cells += [_fmt(s.median), _fmt(s.rate, True), str(s.samples)]
        lines.append(row(dict(zip(_COLUMNS, cells, strict=True))))
    lines.append(say("centre.report.totals", lang))
    for t in [*report.tiers, report.province]:
        total = say("centre.report.total", lang, sites=f"{t.sites:>4}",
                    expected=f"{t.expected:>6}", counted=f"{t.counted:>6}",
                    rate=_fmt(t.rate, True))  # fmt: skip
        lines.append(f"  {_tier(t.label, lang):<10} {total}")
    return "\n".join(lines) + "\n"


def to_csv(report: SessionReport) -> str:
    """One row per site, then one per tier and one for the province (site_id empty)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(
        [
            "session_id",
            "site_id",
            "tier",
            "expected",
            "counted_peak",
            "counted_median",
            "rate",
            "samples",
        ]
    )
    for s in report.sites:
        w.writerow(
            [report.session_id, s.site_id, s.tier, s.expected, s.peak, s.median, s.rate, s.samples]
        )
    for t in [*report.tiers, report.province]:
        w.writerow(
            [report.session_id, "", f"total {t.label}", t.expected, t.counted, "", t.rate, t.sites]
        )
    return out.getvalue()
