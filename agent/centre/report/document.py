"""The printable session report: HTML from the package's template (templates/report.html),
printed to PDF by WeasyPrint.

WeasyPrint (the `report` extra) lays out HTML and CSS to PDF itself, through Debian's pango
(libpango-1.0-0, libpangoft2-1.0-0): no browser, and the same page on every centre. It is
imported here only, when a PDF is asked for: a centre installed without the extra still
writes the HTML, and `--pdf` says how to install it instead of failing with a traceback.
"""

from __future__ import annotations

import html
from datetime import tzinfo
from importlib import resources
from string import Template

from agent.centre.report import attendance
from agent.centre.report.session import Report
from agent.centre.report.text import heading, sections
from agent.errors import AgentError
from agent.i18n import Lang, say
from agent.messages import message


class ReportError(AgentError):
    """The printable report cannot be made here (WeasyPrint or its libraries missing)."""


def _template() -> Template:
    text = resources.files("agent.centre.report").joinpath("templates/report.html").read_text()
    return Template(text)


def _esc(text: object) -> str:
    return html.escape(str(text))


def _attendance_table(rep: Report, lang: Lang) -> str:
    att = rep.attendance
    head = "".join(f"<th>{_esc(h)}</th>" for h in attendance.heads(lang))
    body = []
    for s in att.sites:
        tds = "".join(
            f'<td class="n">{_esc(c)}</td>' if i in attendance.NUMBERS else f"<td>{_esc(c)}</td>"
            for i, c in enumerate(attendance.cells(s, lang))
        )
        body.append(f"<tr>{tds}</tr>")
    return (
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"<h3>{_title(say('report.totals', lang))}</h3>{_list(attendance.total_lines(att, lang))}"
    )


def _title(text: str) -> str:
    """A text sentence as a heading: capitalised, without its closing colon."""
    text = text.rstrip(":")
    return _esc(text[:1].upper() + text[1:])


def _list(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in items) + "</ul>"


def to_html(rep: Report, lang: Lang = "vi", tz: tzinfo | None = None) -> str:
    parts = []
    for s in sections(rep, lang, tz):
        parts.append(f"<h2>{_title(s.title)}</h2>")
        parts.append(_list(s.lines))
        for head, items in s.sub:
            if head:
                parts.append(f"<h3>{_title(head)}</h3>")
            parts.append(_list(items))
    return _template().substitute(
        lang=lang,
        title=_esc(say("report.title", lang, session=rep.session_id)),
        heading=_esc(heading(rep, lang, tz)),
        summary=_esc(attendance.header(rep.attendance, lang)),
        sections="\n".join(parts),
        attendance_title=_esc(say("report.attendance", lang)),
        attendance=_attendance_table(rep, lang),
    )


def to_pdf(page: str) -> bytes:
    """The HTML printed to PDF; a ReportError that says how to install WeasyPrint when it
    (or Debian's pango under it) is not there."""
    try:
        import weasyprint  # noqa: PLC0415 - the optional `report` extra
    except (ImportError, OSError) as exc:  # OSError: the package without pango's libraries
        raise ReportError(
            message("report.no_pdf", error=str(exc).splitlines()[0] if str(exc) else ""),
            message("report.no_pdf_hint"),
        ) from exc
    pdf = weasyprint.HTML(string=page).write_pdf()
    return bytes(pdf or b"")
