"""The session report's sentences in the reader's language, pure: the text of `centre
report` and the lines the printable document (document.py) sets in its sections, so both
say the same thing in the same words."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from agent.centre.alerts.render import subject
from agent.centre.fleet import CONDITION, _word
from agent.centre.report import attendance
from agent.centre.report.readiness import Readiness
from agent.centre.report.session import Report
from agent.i18n import Lang, say


@dataclass(frozen=True)
class Section:
    title: str
    lines: list[str]  # one sentence each
    sub: list[tuple[str, list[str]]]  # a heading and its lines, under the section's lines


def _when(ts: float | None, tz: tzinfo | None) -> str:
    from agent.centre.alerts.render import local_time  # noqa: PLC0415 - one clock format

    return "-" if ts is None else local_time(ts, tz)


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.0f}"


def _reasons(by_lang: dict[str, str] | None, lang: Lang) -> str:
    return (by_lang or {}).get(lang, "")


def _readiness(r: Readiness | None, lang: Lang, tz: tzinfo | None) -> Section:
    if r is None:
        return Section(say("report.readiness", lang), [say("report.no_start", lang)], [])
    lines, sub = [], []
    for c in r.checkpoints:
        label = say(f"report.check.{c.label}", lang)
        counts = ", ".join(f"{_word(CONDITION, k, lang)} {n}" for k, n in c.counts.items())
        total = sum(c.counts.values())
        ready = c.counts.get("ready", 0)
        lines.append(say("report.checkpoint", lang, label=label, at=_when(c.at, tz),
                         ready=ready, count=total, counts=counts))  # fmt: skip
        if c.not_ready:
            items = []
            for s in c.not_ready:
                cond = _word(CONDITION, s.condition, lang)
                line = say("report.not_ready_site", lang, site=s.name or s.site_id,
                           district=s.district or "-", condition=cond,
                           since=_when(s.since, tz))  # fmt: skip
                why = "; ".join(s.reasons.get(lang, []))
                items.append(f"{line}: {why}" if why else line)
            sub.append((say("report.not_ready_at", lang, label=label), items))
    found = {s.site_id for c in r.checkpoints[:-1] for s in c.not_ready}
    lines.append(say("report.fixed", lang, fixed=len(r.fixed), count=len(found),
                     minutes=_minutes(r.median_fix_s)))  # fmt: skip
    if r.fixed:
        sub.append((say("report.fixed_list", lang), [
            say("report.fixed_site", lang, site=f.name or f.site_id,
                condition=_word(CONDITION, f.condition, lang),
                label=say(f"report.check.{f.found}", lang), at=_when(f.fixed_at, tz),
                minutes=_minutes(f.took_s))
            for f in r.fixed
        ]))  # fmt: skip
    return Section(say("report.readiness", lang), lines, sub)


def _drops(rep: Report, lang: Lang, tz: tzinfo | None) -> Section:
    lines = [
        say("report.drops", lang, count=len(rep.drops), minutes=_minutes(rep.median_drop_s))
        if rep.drops
        else say("report.no_drops", lang)
    ]
    items = []
    for d in rep.drops:
        msg = "report.drop" if d.back_at is not None else "report.drop_open"
        line = say(msg, lang, site=d.site_id, at=_when(d.at, tz), back=_when(d.back_at, tz),
                   minutes=_minutes(d.duration_s))  # fmt: skip
        why = _reasons(d.reason, lang)
        items.append(f"{line}: {why}" if why else line)
    return Section(say("report.drops_title", lang), lines, [("", items)] if items else [])


def _incidents(rep: Report, lang: Lang, tz: tzinfo | None) -> Section:
    lines = [say("report.incidents", lang, count=len(rep.incidents),
                 minutes=_minutes(rep.median_repair_s))
             if rep.incidents else say("report.no_incidents", lang)]  # fmt: skip
    items = []
    for i in rep.incidents:
        msg = "report.incident" if i.closed_at is not None else "report.incident_open"
        items.append(say(msg, lang, site=subject(i.site_id, None, lang),
                         reason=_reasons(i.reason, lang),
                         opened=_when(i.opened_at, tz), closed=_when(i.closed_at, tz),
                         minutes=_minutes(i.repair_s)))  # fmt: skip
    return Section(say("report.incidents_title", lang), lines, [("", items)] if items else [])


def _districts(rep: Report, lang: Lang) -> Section:
    lines = [attendance.total_line(t, t.label, lang) for t in rep.attendance.districts]
    return Section(say("report.districts", lang), lines, [])


def sections(rep: Report, lang: Lang, tz: tzinfo | None = None) -> list[Section]:
    """What the report says beyond the attendance table, in order."""
    out = [_readiness(rep.readiness, lang, tz), _drops(rep, lang, tz), _incidents(rep, lang, tz)]
    if rep.attendance.districts:
        out.insert(0, _districts(rep, lang))
    return out


def heading(rep: Report, lang: Lang, tz: tzinfo | None = None) -> str:
    return say("report.session", lang, session=rep.session_id, title=rep.title or "-",
               start=_when(rep.start, tz), end=_when(rep.end, tz))  # fmt: skip


def render(rep: Report, lang: Lang, tz: tzinfo | None = None) -> str:
    """`centre report` as text: the attendance table first (as before), then the rest."""
    out = [attendance.render(rep.attendance, lang).rstrip("\n"), heading(rep, lang, tz)]
    for s in sections(rep, lang, tz):
        out.append(s.title)
        out += ["  " + line for line in s.lines]
        for head, items in s.sub:
            if head:
                out.append("  " + head)
            out += ["    " + item for item in items]
    return "\n".join(out) + "\n"
