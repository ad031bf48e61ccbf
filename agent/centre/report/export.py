"""The session report for scripts and spreadsheets, pure: JSON, and one CSV.

One CSV with a `section` column rather than a file per table: one download from the page and
one `--csv FILE`, one sheet a spreadsheet filters by section; a file per table would need a
zip or a directory. Its columns are the union of the sections' (empty where one does not
apply), keys in English for formulas; the reasons in the reader's language.

UTF-8 with a byte order mark: Excel on Windows, what the province's offices open it with,
reads a CSV without one in the ANSI code page (Windows-1258) and garbles every Vietnamese
name and reason; LibreOffice and Python's csv (`utf-8-sig`) read it either way.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, tzinfo
from typing import Any

from agent.centre.report.session import Report
from agent.i18n import Lang

BOM = "\ufeff"
COLUMNS = (
    "section", "label", "site_id", "name", "district", "tier", "condition", "count",
    "expected", "counted", "median", "rate", "absent", "at", "until", "minutes", "reason",
)  # fmt: skip


def _iso(ts: float | None, tz: tzinfo | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz).astimezone(tz).isoformat("T", "seconds")


def _min(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def rows(rep: Report, lang: Lang, tz: tzinfo | None = None) -> list[dict[str, Any]]:
    """One dict per CSV row, keyed by COLUMNS."""
    out: list[dict[str, Any]] = []
    att = rep.attendance
    for s in att.sites:
        out.append({"section": "attendance", "site_id": s.site_id, "district": s.district,
                    "tier": s.tier, "count": s.samples, "expected": s.expected,
                    "counted": s.peak, "median": s.median, "rate": s.rate,
                    "absent": int(s.absent)})  # fmt: skip
    for kind, totals in (("tier", att.tiers), ("district", att.districts),
                         ("province", [att.province])):  # fmt: skip
        for t in totals:
            out.append({"section": f"total_{kind}", "label": t.label, "count": t.sites,
                        "expected": t.expected, "counted": t.counted, "rate": t.rate,
                        "absent": t.absent})  # fmt: skip
    r = rep.readiness
    for c in r.checkpoints if r else []:
        for cond, n in c.counts.items():
            out.append({"section": "readiness", "label": c.label, "condition": cond,
                        "count": n, "at": _iso(c.at, tz)})  # fmt: skip
        for nr in c.not_ready:
            out.append({"section": "not_ready", "label": c.label, "site_id": nr.site_id,
                        "name": nr.name, "district": nr.district, "condition": nr.condition,
                        "at": _iso(nr.since, tz),
                        "reason": "; ".join(nr.reasons.get(lang, []))})  # fmt: skip
    for f in r.fixed if r else []:
        out.append({"section": "fixed", "label": f.found, "site_id": f.site_id, "name": f.name,
                    "district": f.district, "condition": f.condition,
                    "at": _iso(f.fixed_at, tz), "minutes": _min(f.took_s)})  # fmt: skip
    for d in rep.drops:
        out.append({"section": "drop", "site_id": d.site_id, "at": _iso(d.at, tz),
                    "until": _iso(d.back_at, tz), "minutes": _min(d.duration_s),
                    "reason": d.reason.get(lang, "")})  # fmt: skip
    for i in rep.incidents:
        out.append({"section": "incident", "label": i.rule, "site_id": i.site_id,
                    "district": i.district, "condition": i.severity, "at": _iso(i.opened_at, tz),
                    "until": _iso(i.closed_at, tz), "minutes": _min(i.repair_s),
                    "reason": i.reason.get(lang, "")})  # fmt: skip
    return out


def _cell(value: object) -> object:
    """A site's name or reason comes from the site: a text a spreadsheet would take for a
    formula (=, +, -, @, tab, CR first) is written as text, with a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def to_csv(rep: Report, lang: Lang, tz: tzinfo | None = None) -> bytes:
    """The whole report as one CSV, UTF-8 with a BOM (see above)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, COLUMNS, lineterminator="\r\n")
    w.writeheader()
    for row in rows(rep, lang, tz):
        w.writerow({k: _cell(v) for k, v in row.items()})
    return (BOM + buf.getvalue()).encode()
