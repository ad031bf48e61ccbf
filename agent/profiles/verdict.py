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

from agent.checks.model import MetricValue, Outcome, Status, said, worst_status
from agent.errors import DeviceTimeout, ProbeError
from agent.messages import Message, catalogue, message, render
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
    """One query judged; `text` and `hint` are the English of `text_msg` and `hint_msg`."""

    name: str
    status: Status
    text_msg: Message | None
    hint_msg: Message | None = None
    fields: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, MetricValue] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return self.text_msg.text if self.text_msg else ""

    @property
    def hint(self) -> str:
        return self.hint_msg.text if self.hint_msg else ""


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    queries: list[QueryVerdict]
    groups: dict[str, Status] = field(default_factory=dict)  # group -> its best status


def profile_words(value: str) -> Message:
    """A profile's label or hint in the reader's language: the shipped profiles name theirs
    by catalogue id (profile.label.*, profile.hint.*); a site's own profile may write plain
    text, shown as its author wrote it."""
    if value in catalogue():
        said_ = Message(id=value)  # an id from a profile file, not from code: checked by tests
        return said_.model_copy(update={"text": render(said_, "en")})
    return message("profile.text", text=value)


def _known(kind: str, word: str) -> Message | None:
    """profile.<kind>.<word> when the catalogue has it: "camera input" -> camera_input."""
    key = f"profile.{kind}." + re.sub(r"[\s-]+", "_", word.strip().lower())
    if key not in catalogue():
        return None
    said_ = Message(id=key)
    return said_.model_copy(update={"text": render(said_, "en")})


def label_words(label: str) -> Message:
    """A query's label ("firmware") in the reader's language, or as the profile writes it."""
    return _known("label", label) or message("profile.text", text=label)


def field_words(name: str) -> Message:
    return _known("field", name) or message("profile.text", text=name)


def value_words(value: str | int) -> str | int | Message:
    """A value a profile mapped a device's raw answer to ("standby"), said in the reader's
    language when it is one of the catalogue's words; the device's own text otherwise."""
    found = _known("value", value) if isinstance(value, str) else None
    # Only the very word (a device's "Connected" stays as the device says it).
    return found if found is not None and found.text == value else value


def _hint(value: str) -> Message | None:
    return profile_words(value) if value else None


def _error_text(error: ProbeError) -> Message:
    return error.msg or message("profile.text", text=error.message)


def _error_hint(error: ProbeError | None) -> Message | None:
    if error is None or not error.hint:
        return None
    return error.hint_msg or message("profile.text", text=error.hint)


def version_tuple(text: str) -> tuple[int, ...] | None:
    """(9, 15, 3, 22) from 'ce9.15.3.22' or 'Release 6.2.2-100'; None without digits."""
    match = re.search(r"\d+(?:\.\d+)*", text)
    return tuple(int(p) for p in match.group(0).split(".")) if match else None


def version_below(version: str, minimum: str) -> bool | None:
    have, want = version_tuple(version), version_tuple(minimum)
    if have is None or want is None:
        return None
    return have < want


def _rule(rule: Rule, value: str, label: Message, profile: Profile) -> QueryVerdict:
    """One rule on one value; the verdict's `name` is filled by the caller."""
    if isinstance(rule, ValuesRule):
        lowered = value.lower()
        status = _STATUS[rule.otherwise]
        for name, values in (("ok", rule.ok), ("warn", rule.warn), ("fail", rule.fail)):
            if lowered in (v.lower() for v in values):
                status = _STATUS[name]
                break
        hint = _hint(rule.hint) if status != Status.OK else None
        return QueryVerdict(
            "",
            status,
            message("profile.verdict.value", label=label, value=value_words(value)),
            hint,
        )
    if isinstance(rule, MinVersionRule):
        minimum = rule.minimum or profile.min_firmware or ""
        below = version_below(value, minimum)
        if below is None:
            return QueryVerdict(
                "",
                Status.WARN,
                message("profile.verdict.unreadable", label=label, value=value),
                message("profile.hint.pattern"),
            )
        if below:
            return QueryVerdict(
                "",
                Status.WARN,
                message("profile.verdict.below", label=label, value=value, minimum=minimum),
                message("profile.hint.update_to", hint=profile_words(rule.hint), minimum=minimum),
            )
        return QueryVerdict(
            "", Status.OK, message("profile.verdict.value", label=label, value=value)
        )
    if isinstance(rule, NumberRule):
        try:
            number = int(value)
        except ValueError:
            return QueryVerdict(
                "",
                Status.WARN,
                message("profile.verdict.not_a_number", label=label, value=value),
                _hint(rule.hint),
            )
        if rule.unknown_below is not None and number < rule.unknown_below:
            return QueryVerdict(
                "",
                Status.OK,
                message("profile.verdict.unknown", label=label),
                metrics={rule.field: None},
            )
        status = Status.OK
        if rule.fail_below is not None and number < rule.fail_below:
            status = Status.FAIL
        elif rule.warn_below is not None and number < rule.warn_below:
            status = Status.WARN
        hint = _hint(rule.hint) if status != Status.OK else None
        return QueryVerdict(
            "",
            status,
            message("profile.verdict.value", label=label, value=number),
            hint,
            metrics={rule.field: number},
        )
    assert isinstance(rule, InfoRule)
    return QueryVerdict(
        "", Status.OK, message("profile.verdict.value", label=label, value=value_words(value))
    )


def judge_query(profile: Profile, name: str, result: QueryResult) -> QueryVerdict:
    query: Query = profile.queries[name]
    query_label = label_words(query.label)
    if not result.asked:
        status = Status.FAIL if query.required else Status.SKIPPED
        hint = _error_hint(result.error)
        return QueryVerdict(name, status, None, hint if query.required else None)
    if result.error is not None:
        if not query.required:
            return QueryVerdict(
                name, Status.SKIPPED, message("profile.verdict.not_available", label=query_label)
            )
        return QueryVerdict(
            name, Status.FAIL, _short(_error_text(result.error)), _error_hint(result.error)
        )
    metrics: dict[str, MetricValue] = dict(result.fields)
    parts: list[QueryVerdict] = []
    for rule in query.rules:
        value = result.fields.get(rule.field)
        if value is None:
            parts.append(
                QueryVerdict(
                    "",
                    Status.WARN,
                    message("profile.verdict.no_field", label=query_label, field=rule.field),
                )
            )
            continue
        label = query_label if len(query.rules) == 1 else field_words(rule.field)
        verdict = _rule(rule, value, label, profile)
        metrics.update(verdict.metrics)
        parts.append(verdict)
    status = worst_status(p.status for p in parts) if parts else Status.OK
    text: Message | None
    if len(parts) == 1:
        text = parts[0].text_msg
    else:
        bad = [p.text_msg for p in parts if p.status != Status.OK and p.text_msg]
        judged = all(isinstance(r, ValuesRule) for r in query.rules)
        every = [p.text_msg for p in parts if p.text_msg]
        shown = bad or ([message("profile.verdict.ok")] if judged else every)
        text = message("profile.verdict.parts", label=query_label, parts=shown)
    hints = _unique(p.hint_msg for p in parts if p.hint_msg)
    hint = message("profile.hints", hints=hints) if hints else None
    return QueryVerdict(name, status, text, hint, dict(result.fields), metrics)


def judge(profile: Profile, results: Sequence[QueryResult], label: str | Message) -> Judgement:
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
    texts = [v.text_msg for v in problems + rest if v.text_msg]
    unasked = [r.name for r in results if not r.asked]
    if unasked:
        texts.append(message("profile.verdict.not_asked", names=", ".join(unasked)))
    if isinstance(label, str):
        label = message("profile.text", text=label)
    parts: Message | list[Message] = texts or message("profile.verdict.nothing_asked")
    reason = message("profile.verdict.reason", label=label, parts=parts)
    # A failing group (SIP or H.323) gives the hint of its first member only.
    hinted: set[str] = set()
    hints: list[Message] = []
    for v in problems:
        key = _key(profile, v)
        if v.hint_msg and key not in hinted:
            hints.append(v.hint_msg)
            hinted.add(key)
    unique = _unique(hints)
    hint = message("profile.hints", hints=unique) if unique else None
    groups = {k.removeprefix("group:"): v for k, v in counted.items() if k.startswith("group:")}
    return Judgement(said(status, reason, hint, metrics), verdicts, groups)


# A session error names its device; inside the check's reason, which names it already, the
# same error is said without it.
_SHORT = {
    "profile.at_query": "profile.short.at_query",
    "profile.no_answer": "profile.short.no_answer",
    "profile.unrecognised": "profile.short.unrecognised",
    "profile.program_hung": "profile.short.program_hung",
    "profile.not_asked": "profile.short.not_asked",
}


def _short(said_: Message) -> Message:
    """A session error without its "<profile> on <port>: " prefix (the reason has it)."""
    if said_.id == "profile.at":
        text = said_.params.get("text", "")
        return text if isinstance(text, Message) else message("profile.text", text=str(text))
    if said_.id not in _SHORT:
        return said_
    params = {k: v for k, v in said_.params.items() if k != "target"}
    short = Message(id=_SHORT[said_.id], params=params)
    return short.model_copy(update={"text": render(short, "en")})


def _key(profile: Profile, verdict: QueryVerdict) -> str:
    group = profile.queries[verdict.name].group
    return f"group:{group}" if group else verdict.name


def _best(a: Status, b: Status) -> Status:
    return a if _RANK.index(a) >= _RANK.index(b) else b


def _unique(items: Iterable[Message]) -> list[Message]:
    seen: list[Message] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen
