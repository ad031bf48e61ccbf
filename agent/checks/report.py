"""Rendering check results for people (a table) and scripts (JSON). Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence

from agent.checks.model import CheckResult, CheckRun, Verdict
from agent.i18n import Lang, current_language, say
from agent.messages import render_or

_MARK = {"ok": "OK", "warn": "WARN", "fail": "FAIL", "skipped": "SKIP", "error": "ERROR"}
_HEAD = ("check.table.component", "check.table.status", "check.table.time", "check.table.reason")


def render_table(results: Sequence[CheckResult], verdict: Verdict, lang: Lang | None = None) -> str:
    """In `lang` (the process language unless said). English keeps the short upper-case
    marks scripts grep for; Vietnamese says the statuses and the verdict in words, and the
    reasons and hints in the reader's language when the probe gave them as messages."""
    lang = lang or current_language()

    def mark(status: str) -> str:
        return _MARK[status] if lang == "en" else say(f"status.result.{status}", lang)

    component, status, time, reason = (say(h, lang) for h in _HEAD)
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
    word = say(f"status.verdict_word.{verdict.value}", lang).upper()
    lines.append(say("check.table.verdict", lang, verdict=word))
    return "\n".join(lines)


def render_json(run: CheckRun) -> str:
    return json.dumps(run.summary(), indent=2, ensure_ascii=False)
