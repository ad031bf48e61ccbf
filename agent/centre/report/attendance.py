"""Attendance report per session, pure: for each site summoned, counted (peak and median of
the samples) and rate; totals per tier, per district and for the province; text and CSV.

The attendance payload is still a placeholder: a sample's `count` may be None (unknown, never
0), and an agent may send its own `peak`/`median`/`expected`. The report takes what is there:
the peak is the highest of counts and reported peaks, the median is over the counts (or the
last reported median when there are none). The people summoned at a site are the roster's
number (the province's list wins), else the expected of its samples, else its meta's.

A session summons every site with a summoned number: one that sent no sample (offline,
silent, never seen, or not counting) is absent and counts as 0 attended, so the rate is
people counted at the summoned sites over the people summoned there (docs/dashboard.md).
"""

from __future__ import annotations

import csv
import io
import statistics
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from agent.centre.fleet import TIER, TIER_ORDER, _word, say, table
from agent.centre.store import AttendanceRow
from agent.i18n import current_language


@dataclass(frozen=True)
class SiteLine:
    site_id: str
    tier: str
    expected: int | None
    peak: int | None
    median: float | None
    samples: int
    rate: float | None
    absent: bool = False  # summoned, yet not one sample: counted as 0 attended
    district: str = ""  # the district it belongs to (a district site: its own id)


@dataclass(frozen=True)
class Total:
    label: str
    sites: int
    expected: int  # people summoned
    counted: int  # sum of peaks at the summoned sites (a site without a number is left out)
    rate: float | None  # counted / expected
    absent: int = 0  # summoned sites without a sample


# site_id -> (tier, people summoned, whether the roster said it): Store.expected_of().
SiteInfo = tuple[str, int | None] | tuple[str, int | None, bool]


@dataclass(frozen=True)
class SessionReport:
    session_id: str
    sites: list[SiteLine]
    tiers: list[Total]
    province: Total
    districts: list[Total] = field(default_factory=list)  # when the caller knew them

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _rate(counted: int | None, expected: int | None) -> float | None:
    if counted is None or not expected:
        return None
    return round(counted / expected, 3)


def site_line(
    site_id: str,
    tier: str,
    rows: list[AttendanceRow],
    meta_expected: int | None,
    from_roster: bool = False,
) -> SiteLine:
    """`meta_expected`: the roster's number when `from_roster` (it wins over the samples'),
    else the site's meta (the samples' own expected wins: the session may say another)."""
    counts = [r.count for r in rows if r.count is not None]
    peaks = counts + [r.peak for r in rows if r.peak is not None]
    medians = [r.median for r in rows if r.median is not None]
    expecteds = [r.expected for r in rows if r.expected is not None]
    peak = max(peaks) if peaks else None
    median = float(statistics.median(counts)) if counts else (medians[-1] if medians else None)
    expected = meta_expected if from_roster or not expecteds else expecteds[-1]
    if not rows:
        return SiteLine(site_id, tier, expected, None, None, 0, _rate(0, expected), absent=True)
    return SiteLine(site_id, tier, expected, peak, median, len(rows), _rate(peak, expected))


def _total(label: str, lines: list[SiteLine]) -> Total:
    # A site with no summoned number cannot be over or under it: out of both sums.
    summoned = [line for line in lines if line.expected]
    expected = sum(line.expected or 0 for line in summoned)
    counted = sum(line.peak or 0 for line in summoned)
    absent = sum(line.absent for line in lines)
    return Total(label, len(lines), expected, counted, _rate(counted, expected), absent)


def session_report(
    session_id: str,
    rows: list[AttendanceRow],
    sites: Mapping[str, SiteInfo],
    districts: Mapping[str, str] | None = None,
) -> SessionReport:
    """`sites`: every known site (Store.expected_of()). Those with samples are the ones
    that reported; every other one with a summoned number is absent. `districts`: site_id ->
    its district (facts.district_of), for the totals per district ("" : the province's own)."""
    by_site: dict[str, list[AttendanceRow]] = {}
    for row in rows:
        by_site.setdefault(row.site_id, []).append(row)
    summoned = [sid for sid, info in sites.items() if info[1] and sid not in by_site]
    lines = []
    for sid in [*by_site, *summoned]:
        info = sites.get(sid, ("commune", None))
        from_roster = len(info) > 2 and bool(info[2])
        lines.append(site_line(sid, info[0], by_site.get(sid, []), info[1], from_roster))
    lines.sort(key=lambda s: (TIER_ORDER.get(s.tier, 9), s.site_id))
    tiers = sorted({s.tier for s in lines}, key=lambda t: TIER_ORDER.get(t, 9))
    by_district: list[Total] = []
    if districts is not None:
        lines = [replace(s, district=districts.get(s.site_id, "")) for s in lines]
        for d in sorted({s.district for s in lines if s.district}):
            by_district.append(_total(d, [s for s in lines if s.district == d]))
    return SessionReport(
        session_id,
        lines,
        [_total(t, [s for s in lines if s.tier == t]) for t in tiers],
        _total("province", lines),
        by_district,
    )


# The text report's columns (report.col.* ids); the numbers among them align right.
_COLUMNS = ("site", "tier", "expected", "peak", "median", "rate", "samples", "absent")
NUMBERS = frozenset({2, 3, 4, 5, 6})


def _fmt(value: float | int | None, pct: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value:.0%}" if pct else f"{value:g}"


def header(report: SessionReport, lang: str) -> str:
    reported = sum(not s.absent for s in report.sites)
    return say("report.header", lang, session=report.session_id, count=len(report.sites),
               reported=reported)  # fmt: skip


def heads(lang: str) -> list[str]:
    return [say(f"report.col.{c}", lang) for c in _COLUMNS]


def cells(s: SiteLine, lang: str) -> list[str]:
    """A site's line, one cell per column of _COLUMNS."""
    absent = say("report.absent", lang) if s.absent else ""
    return [s.site_id, _word(TIER, s.tier, lang), _fmt(s.expected), _fmt(s.peak),
            _fmt(s.median), _fmt(s.rate, True), str(s.samples), absent]  # fmt: skip


def total_line(t: Total, label: str, lang: str) -> str:
    return say("report.total", lang, label=label, count=t.sites, expected=t.expected,
               counted=t.counted, rate=_fmt(t.rate, True), absent=t.absent)  # fmt: skip


def total_lines(report: SessionReport, lang: str) -> list[str]:
    """Per tier, then the whole province."""
    labels = [_word(TIER, t.label, lang) for t in report.tiers] + [say("report.all", lang)]
    totals = [*report.tiers, report.province]
    return [total_line(t, label, lang) for t, label in zip(totals, labels, strict=True)]


def render(report: SessionReport, lang: str | None = None) -> str:
    """`centre report`'s attendance as text, in `lang` (the process language unless said)."""
    lang = lang or current_language()
    lines = [header(report, lang)]
    rows = [cells(s, lang) for s in report.sites]
    lines += ["  " + row for row in table([heads(lang), *rows], NUMBERS).splitlines()]
    lines.append(say("report.totals", lang))
    lines += ["  " + line for line in total_lines(report, lang)]
    return "\n".join(lines) + "\n"


def to_csv(report: SessionReport) -> str:
    """One row per site, then one per tier and one for the province (site_id empty; its
    `samples` column holds the number of sites, `absent` the summoned sites without one)."""
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
            "absent",
        ]
    )
    for s in report.sites:
        w.writerow(
            [
                report.session_id,
                s.site_id,
                s.tier,
                s.expected,
                s.peak,
                s.median,
                s.rate,
                s.samples,
                int(s.absent),
            ]
        )
    for t in [*report.tiers, report.province]:
        w.writerow(
            [
                report.session_id,
                "",
                f"total {t.label}",
                t.expected,
                t.counted,
                "",
                t.rate,
                t.sites,
                t.absent,
            ]
        )
    return out.getvalue()
