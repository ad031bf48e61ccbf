"""Rendering check results for people (a table) and scripts (JSON). Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence

from agent.checks.model import CheckResult, Verdict

_MARK = {"ok": "OK", "warn": "WARN", "fail": "FAIL", "skipped": "SKIP", "error": "ERROR"}


def render_table(results: Sequence[CheckResult], verdict: Verdict) -> str:
    width = max([len("component"), *(len(r.component) for r in results)])
    lines = [f"{'component':<{width}}  {'status':<6} {'time':>6}  reason"]
    for r in results:
        lines.append(
            f"{r.component:<{width}}  {_MARK[r.status.value]:<6} {r.duration_s:>5.1f}s  {r.reason}"
        )
        if r.hint:
            lines.append(f"{'':<{width}}  {'':<6} {'':>6}  -> {r.hint}")
    lines.append("")
    lines.append(f"site verdict: {verdict.value.upper()}")
    return "\n".join(lines)


def render_json(results: Sequence[CheckResult], verdict: Verdict) -> str:
    return json.dumps(
        {
            "verdict": verdict.value,
            "results": [r.model_dump(mode="json") for r in results],
        },
        indent=2,
        ensure_ascii=False,
    )
