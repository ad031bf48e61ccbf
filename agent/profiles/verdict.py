"""Turn a profile's query answers into one check outcome. Pure: no I/O.

Each query is judged by its rules (values listed as ok/warn/fail, a minimum version, a number
with thresholds, or information only). A failed *required* query fails the check; a failed
optional one is noted and skipped. Queries sharing a `group` are alternatives (SIP or H.323
registration): the best of them counts. The check's status is the worst of what remains.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from agent.checks.model import MetricValue, Outcome, Status, worst_status
from agent.errors import DeviceTimeout
from agent.profiles.model import (
    InfoRule,
    MinVersionRule,
    NumberRule,
    Profile,
    Query,
    Rule,
    ValuesRule,
)
from agent.profiles.session import QueryResult

_STATUS = {"ok": Status.OK, "warn": Status.WARN, "fail": Status.FAIL}
_RANK = [Status.FAIL, Status.ERROR, Status.WARN, Status.OK]  # worst first; best is last


@dataclass(frozen=True)
class QueryVerdict:
    name: str
    status: Status
    text: str
    hint: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    queries: list[QueryVerdict]
    groups: dict[str, Status] = field(default_factory=dict)  # group -> its best status


def version_tuple(text: str) -> tuple[int, ...] | None:
    """(9, 15, 3, 22) from 'ce9.15.3.22' or 'Release 6.2.2-100'; None without digits."""
    match = re.search(r"\d+(?:\.\d+)*", text)
    return tuple(int(p) for p in match.group(0).split(".")) if match else None


def version_below(version: str, minimum: str) -> bool | None:
    have, want = version_tuple(version), version_tuple(minimum)
    if have is None or want is None:
        return None
    return have < want


def _rule(rule: Rule, value: str, label: str, profile: Profile) -> QueryVerdict:
    """One rule on one value; the verdict's `name` is filled by the caller."""
    if isinstance(rule, ValuesRule):
        lowered = value.lower()
        status = _STATUS[rule.otherwise]
        for name, values in (("ok", rule.ok), ("warn", rule.warn), ("fail", rule.fail)):
            if lowered in (v.lower() for v in values):
                status = _STATUS[name]
                break
        hint = rule.hint if status != Status.OK else ""
        return QueryVerdict("", status, f"{label} {value}", hint)
    if isinstance(rule, MinVersionRule):
        minimum = rule.minimum or profile.min_firmware or ""
        below = version_below(value, minimum)
        if below is None:
            return QueryVerdict(
                "", Status.WARN, f"{label} {value!r} unreadable", "check the profile's pattern"
            )
        if below:
            return QueryVerdict(
                "",
                Status.WARN,
                f"{label} {value} (below {minimum})",
                f"{rule.hint} to {minimum} or later",
            )
        return QueryVerdict("", Status.OK, f"{label} {value}")
    if isinstance(rule, NumberRule):
        try:
            number = int(value)
        except ValueError:
            return QueryVerdict("", Status.WARN, f"{label} {value!r} is not a number", rule.hint)
        if rule.unknown_below is not None and number < rule.unknown_below:
            return QueryVerdict("", Status.OK, f"{label} unknown", metrics={rule.field: None})
        status = Status.OK
        if rule.fail_below is not None and number < rule.fail_below:
            status = Status.FAIL
        elif rule.warn_below is not None and number < rule.warn_below:
            status = Status.WARN
        hint = rule.hint if status != Status.OK else ""
        return QueryVerdict("", status, f"{label} {number}", hint, metrics={rule.field: number})
    assert isinstance(rule, InfoRule)
    return QueryVerdict("", Status.OK, f"{label} {value}")


def judge_query(profile: Profile, name: str, result: QueryResult) -> QueryVerdict:
    query: Query = profile.queries[name]
    if not result.asked:
        status = Status.FAIL if query.required else Status.SKIPPED
        hint = result.error.hint if result.error else ""
        return QueryVerdict(name, status, "", hint if query.required else "")
    if result.error is not None:
        if not query.required:
            return QueryVerdict(name, Status.SKIPPED, f"{query.label}: not available")
        return QueryVerdict(name, Status.FAIL, _short(result.error.message), result.error.hint)
    metrics: dict[str, MetricValue] = dict(result.fields)
    parts: list[QueryVerdict] = []
    for rule in query.rules:
        value = result.fields.get(rule.field)
        if value is None:
            parts.append(
                QueryVerdict("", Status.WARN, f"{query.label}: no '{rule.field}' in the reply")
            )
            continue
        label = query.label if len(query.rules) == 1 else rule.field
        verdict = _rule(rule, value, label, profile)
        metrics.update(verdict.metrics)
        parts.append(verdict)
    status = worst_status(p.status for p in parts) if parts else Status.OK
    if len(parts) == 1:
        text = parts[0].text
    else:
        bad = [p.text for p in parts if p.status != Status.OK]
        judged = all(isinstance(r, ValuesRule) for r in query.rules)
        shown = bad or (["ok"] if judged else [p.text for p in parts])
        text = f"{query.label}: {', '.join(shown)}"
    hints = _unique(p.hint for p in parts if p.hint)
    return QueryVerdict(name, status, text, "; ".join(hints), dict(result.fields), metrics)


def judge(profile: Profile, results: Sequence[QueryResult], label: str) -> Judgement:
    """The check's outcome from its queries' results."""
    verdicts = [judge_query(profile, r.name, r) for r in results]
    counted: dict[str, Status] = {}
    for v in verdicts:
        if v.status == Status.SKIPPED:
            continue
        key = _key(profile, v)
        previous = counted.get(key)
        counted[key] = v.status if previous is None else _best(previous, v.status)
    metrics: dict[str, MetricValue] = {"profile": profile.name}
    for v in verdicts:
        metrics.update(v.metrics)
    # Reachable: the device answered something, even an error (a NAK is an answer).
    answered = any(r.asked and not isinstance(r.error, DeviceTimeout) for r in results)
    metrics["reachable"] = answered
    status = worst_status(counted.values()) if counted else Status.FAIL
    if not answered:
        status = Status.FAIL
    effective = {v.name: counted.get(_key(profile, v), v.status) for v in verdicts}
    problems = [v for v in verdicts if effective[v.name] in (Status.FAIL, Status.WARN)]
    problem_names = {v.name for v in problems}
    rest = [v for v in verdicts if v.name not in problem_names and v.status != Status.SKIPPED]
    texts = [v.text for v in problems + rest if v.text]
    unasked = [r.name for r in results if not r.asked]
    if unasked:
        texts.append(f"not asked in time: {', '.join(unasked)}")
    reason = f"{label}: " + ("; ".join(texts) if texts else "nothing asked")
    # A failing group (SIP or H.323) gives the hint of its first member only.
    hinted: set[str] = set()
    hints = []
    for v in problems:
        key = _key(profile, v)
        if v.hint and key not in hinted:
            hints.append(v.hint)
            hinted.add(key)
    hint = "; ".join(_unique(hints))
    groups = {k.removeprefix("group:"): v for k, v in counted.items() if k.startswith("group:")}
    return Judgement(Outcome(status, reason, hint, metrics), verdicts, groups)


def _short(message: str) -> str:
    """A session error without its "<profile> on <port>: " prefix (the reason has it)."""
    head, sep, rest = message.partition(": ")
    return rest if sep and " on " in head else message


def _key(profile: Profile, verdict: QueryVerdict) -> str:
    group = profile.queries[verdict.name].group
    return f"group:{group}" if group else verdict.name


def _best(a: Status, b: Status) -> Status:
    return a if _RANK.index(a) >= _RANK.index(b) else b


def _unique(items: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
