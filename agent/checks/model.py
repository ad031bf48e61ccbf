"""The result every probe returns, and the rules that turn results into a site verdict.

Pure code: no I/O here, so the rules are tested directly.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agent.messages import Message

MetricValue = float | int | str | bool | None
# Why a self-test ran: the daemon's start, its interval, a command (the centre's, the
# technician's `edge-agent check`) or a session about to begin.
Trigger = Literal["startup", "interval", "command", "pre-session"]


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"
    ERROR = "error"


class Verdict(StrEnum):
    READY = "ready"
    DEGRADED = "degraded"
    FAULT = "fault"


class ExitCode(IntEnum):
    """The monitoring-plugin convention (Nagios, Icinga, Zabbix all read it)."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass(frozen=True)
class Outcome:
    """What a probe found. The runner stamps it with component, start time and duration.

    `reason` and `hint` are English; a converted probe also gives them as messages
    (`reason_msg`, `hint_msg`) for readers to render in their own language."""

    status: Status
    reason: str
    hint: str = ""
    metrics: Mapping[str, MetricValue] = field(default_factory=dict)
    reason_msg: Message | None = None
    hint_msg: Message | None = None


def ok(reason: str, **metrics: MetricValue) -> Outcome:
    return Outcome(Status.OK, reason, "", metrics)


def said(
    status: Status,
    reason: Message,
    hint: Message | None = None,
    metrics: Mapping[str, MetricValue] | None = None,
) -> Outcome:
    """An outcome told as messages, with their English texts as `reason` and `hint`."""
    return Outcome(status, reason.text, hint.text if hint else "", metrics or {}, reason, hint)


class CheckResult(BaseModel):
    """One component's check, as reported to the centre and shown to the technician."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    component: str
    status: Status
    reason: str = Field(description="One line: what was found.")
    hint: str = Field("", description="What a technician on site can do about it.")
    metrics: dict[str, MetricValue] = Field(default_factory=dict)
    started_at: datetime
    duration_s: float = Field(ge=0)
    # Added within schema version 1: absent from older sites and from probes not converted.
    reason_msg: Message | None = Field(
        None, description="The reason as a message id with parameters (English: `reason`)."
    )
    hint_msg: Message | None = Field(
        None, description="The hint as a message id with parameters (English: `hint`)."
    )

    @classmethod
    def from_outcome(
        cls, component: str, outcome: Outcome, started_at: datetime, duration_s: float
    ) -> CheckResult:
        return cls(
            component=component,
            status=outcome.status,
            reason=outcome.reason,
            hint=outcome.hint,
            metrics=dict(outcome.metrics),
            started_at=started_at,
            duration_s=round(duration_s, 4),
            reason_msg=outcome.reason_msg,
            hint_msg=outcome.hint_msg,
        )


class CheckRun(BaseModel):
    """One self-test of the site: why and when it ran, how long it took, each component's
    result and the site's verdict.

    The one shape of a check run: the `checks` payload is this with the envelope, the daemon
    keeps its latest (and saves it), the status snapshot shows it, and the control socket,
    the `run-checks` command and `edge-agent check --json` answer its `summary()`. A field
    is None where it is not known: the probes' side knows the results and the verdict (the
    daemon adds why, when and how long), the saved last check keeps when but not why nor how
    long, and a summary read back carries the verdict and the results only.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    trigger: Trigger | None = None
    verdict: Verdict
    started_at: AwareDatetime | None = None
    duration_s: float | None = Field(None, ge=0)
    results: list[CheckResult]

    def summary(self) -> dict[str, Any]:
        """The verdict and the results as JSON values, in that order."""
        return self.model_dump(mode="json", include={"verdict", "results"})


_BAD = {Status.FAIL, Status.ERROR}


def worst_status(statuses: Iterable[Status]) -> Status:
    """The worst of several statuses of one component (e.g. sub-checks of a probe)."""
    order = [Status.ERROR, Status.FAIL, Status.WARN, Status.OK, Status.SKIPPED]
    present = set(statuses)
    for status in order:
        if status in present:
            return status
    return Status.SKIPPED


def site_verdict(results: Iterable[CheckResult], required: Iterable[str]) -> Verdict:
    """ready | degraded | fault for the site.

    - a required component that failed, errored or was not checked at all -> fault
      (the centre must not believe a site is ready when we never looked);
    - a required component that was skipped, an optional one that failed, or any warning
      -> degraded;
    - otherwise ready.
    """
    by_component = {r.component: r for r in results}
    required_set = set(required)
    verdict = Verdict.READY
    for component in required_set:
        result = by_component.get(component)
        if result is None or result.status in _BAD:
            return Verdict.FAULT
        if result.status in (Status.WARN, Status.SKIPPED):
            verdict = Verdict.DEGRADED
    for component, result in by_component.items():
        if component not in required_set and result.status in (_BAD | {Status.WARN}):
            verdict = Verdict.DEGRADED
    return verdict


def exit_code(results: Iterable[CheckResult]) -> ExitCode:
    """0 all ok, 1 some warn, 2 some fail/error, 3 nothing could run."""
    statuses = [r.status for r in results]
    if not statuses or all(s is Status.SKIPPED for s in statuses):
        return ExitCode.UNKNOWN
    if any(s in _BAD for s in statuses):
        return ExitCode.CRITICAL
    if Status.WARN in statuses:
        return ExitCode.WARNING
    return ExitCode.OK
