"""Rendering check results for people (a table) and scripts (JSON). Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence

from agent.checks.model import CheckResult, CheckRun, Verdict
from agent.i18n import N_, Lang, translate
from agent.messages import render_or

_MARK = {"ok": "OK", "warn": "WARN", "fail": "FAIL", "skipped": "SKIP", "error": "ERROR"}
_HEAD = (N_("component"), N_("status"), N_("time"), N_("reason"))
_VERDICT = N_("site verdict")


def render_table(results: Sequence[CheckResult], verdict: Verdict, lang: Lang = "en") -> str:
    """English keeps the short upper-case marks scripts grep for; Vietnamese translates the
    headings, statuses and verdict, and the reasons and hints a probe gave as messages
    (the others are English for now)."""

    def mark(status: str) -> str:
        return _MARK[status] if lang == "en" else translate(status, lang)

    component, status, time, reason = (translate(h, lang) for h in _HEAD)
    width = max([len(component), *(len(r.component) for r in results)])
    swidth = max([6, len(status), *(len(mark(r.status.value)) for r in results)])
    lines = [f"{component:<{width}}  {status:<{swidth}} {time:>6}  {reason}"]
    for r in results:
        lines.append(
            f"{r.component:<{width}}  {mark(r.status.value):<{swidth}} "
            f"{r.duration_s:>5.1f}s  {render_or(r.reason_msg, r.reason, lang)}"
        )
        if r.hint:
            hint = render_or(r.hint_msg, r.hint, lang)
            lines.append(f"{'':<{width}}  {'':<{swidth}} {'':>6}  -> {hint}")
    lines.append("")
    lines.append(f"{translate(_VERDICT, lang)}: {translate(verdict.value, lang).upper()}")
    return "\n".join(lines)


def render_json(run: CheckRun) -> str:
    return json.dumps(run.summary(), indent=2, ensure_ascii=False)
