"""Every payload the agent publishes, as pydantic models: the contract with the centre.

Each carries the envelope fields (`schema`, `site_id`, `seq`, `boot`, `ts`, `historical`);
docs/mqtt.md explains them. The JSON Schema of each model is checked in under `schemas/`
(`python -m agent.contract.schemas` writes them). Pure: no I/O.

Writers strict, readers lenient (docs/mqtt.md, "Evolving the contract"): the models refuse
unknown fields, so the agent cannot send a misspelt one; whoever reads a report goes through
`parse_report`, which ignores fields it does not know, so a newer agent's added field does
not cost an older centre the report. A change an old reader cannot take (a field removed,
renamed or retyped) means a new schema version string.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, field_validator

from agent.checks.live import LiveState, LiveVerdict
from agent.checks.model import CheckResult, CheckRun, Status, Trigger, Verdict
from agent.messages import Message

SCHEMA_PREFIX = "edge-agent"


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    # The published schema describes what the agent sends, and it always sends every field.
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        populate_by_name=True,
        json_schema_serialization_defaults_required=True,
    )
    # Fields added within schema version 1: an older writer leaves them out, so the published
    # schema does not require them (each has a default meaning "not said").
    added_fields: ClassVar[tuple[str, ...]] = ()


class Envelope(_Model):
    """Fields every payload carries, so the centre can order, de-duplicate and spot gaps."""

    kind: ClassVar[str] = ""

    schema_: str = Field(
        alias="schema", description="Payload type and version, e.g. edge-agent/state/1."
    )
    site_id: str
    seq: int = Field(
        0,
        ge=0,
        description="Per-site report number, monotonic across restarts; for availability and "
        "meta (not queued) the highest number assigned so far.",
    )
    boot: int = Field(
        0, ge=0, description="Connection counter: grows on every connect attempt (bdSeq)."
    )
    ts: AwareDatetime = Field(description="When the payload was made, ISO-8601 UTC.")
    historical: bool = Field(
        False,
        description="True when sent late from the outbox: made while the link was down, "
        "or in an earlier connection or process than the one delivering it.",
    )

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


def _schema_field(kind: str) -> Any:
    version = f"{SCHEMA_PREFIX}/{kind}/1"
    return Field(version, alias="schema", description="Payload type and version.")


class AvailabilityPayload(Envelope):
    kind: ClassVar[str] = "availability"
    schema_: Literal["edge-agent/availability/1"] = _schema_field("availability")
    status: Literal["online", "offline"]
    reason: str = Field(
        "", description="Why offline: `connection lost (will)` or `clean shutdown`."
    )
    keepalive_s: int = Field(description="The centre sees a dead link within ~1.5 x this.")


class SiteInfo(_Model):
    name: str
    tier: str
    parent: str | None
    timezone: str
    expected_attendance: int


class ComponentInfo(_Model):
    component: str
    enabled: bool
    required: bool
    device: str | None = Field(None, description="Device path, URL or port in use.")
    profile: str | None = Field(None, description="Firmware profile in use, if any.")


class MetaPayload(Envelope):
    kind: ClassVar[str] = "meta"
    added_fields: ClassVar[tuple[str, ...]] = ("heartbeat_s",)
    schema_: Literal["edge-agent/meta/1"] = _schema_field("meta")
    agent_version: str
    site: SiteInfo
    components: list[ComponentInfo]
    profiles: list[str] = Field(description="Firmware profiles in use.")
    capabilities: list[str] = Field(description="What this agent can report and do.")
    protocol: Literal["5", "3.1.1"]
    check_interval_s: float
    hostname: str
    started_at: AwareDatetime
    heartbeat_s: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="The agent publishes `state` at least this often while connected, in "
        "a session too (self-tests are skipped then, heartbeats are not); the centre judges "
        "silence from it. Absent (older agents): judged by check_interval_s.",
    )


class ComponentState(_Model):
    added_fields: ClassVar[tuple[str, ...]] = ("reason_msg", "hint_msg")
    status: Status
    reason: str
    hint: str = ""
    reason_msg: Message | None = Field(
        None, description="The reason as a message id with parameters (English: `reason`)."
    )
    hint_msg: Message | None = Field(
        None, description="The hint as a message id with parameters (English: `hint`)."
    )


class SessionRef(_Model):
    """A scheduled session (schedule issue); present once schedules exist."""

    session_id: str
    title: str = ""
    start: AwareDatetime
    end: AwareDatetime


class OutboxHealth(_Model):
    pending: int = Field(ge=0, description="Reports queued, not yet acknowledged.")
    pending_bytes: int = Field(ge=0)
    dropped_checks: int = Field(
        ge=0, description="Check reports dropped since install because the outbox was full."
    )
    refused: int = Field(ge=0, description="Reports the broker refused (ACL), still kept.")
    oldest_pending: AwareDatetime | None = None


StateCause = Literal["check", "birth", "heartbeat", "rebirth"]


class StatePayload(Envelope):
    kind: ClassVar[str] = "state"
    schema_: Literal["edge-agent/state/1"] = _schema_field("state")
    cause: StateCause = Field(
        description="check: a self-test just ran; birth: on connect; heartbeat: unchanged, "
        "proves liveness; rebirth: asked by the centre."
    )
    verdict: Verdict | None = Field(description="None until the first check is known.")
    components: dict[str, ComponentState]
    last_check: AwareDatetime | None
    current_session: SessionRef | None = None
    next_session: SessionRef | None = None
    outbox: OutboxHealth


# CheckRun first among the bases, so the envelope's fields come first in the JSON and the
# schema (pydantic orders fields from the last base to the first).
class ChecksPayload(CheckRun, Envelope):
    kind: ClassVar[str] = "checks"
    schema_: Literal["edge-agent/checks/1"] = _schema_field("checks")
    # A published run always says why it ran, when and how long (these keep their place).
    trigger: Trigger
    started_at: AwareDatetime
    duration_s: float = Field(ge=0)


class AttendancePayload(Envelope):
    """People counted in the room after one burst (agent/attendance); `count` None means
    unknown (the camera could not see), never 0. No image ever leaves the site."""

    kind: ClassVar[str] = "attendance"
    schema_: Literal["edge-agent/attendance/1"] = _schema_field("attendance")
    session_id: str | None
    count: int | None = Field(ge=0)
    spread: float | None = None
    detector: str
    expected: int | None = None
    rate: float | None = None
    peak: int | None = None
    median: float | None = None
    codec_count: int | None = Field(None, description="the codec's own people count, if any")
    tiled: bool = Field(False, description="small faces needed the tiled pass")
    burst_count: int | None = Field(None, description="this burst's median, before smoothing")
    frames: int = Field(0, ge=0, description="frames grabbed for this burst")
    frames_used: int = Field(0, ge=0, description="frames that could be counted")
    added_fields: ClassVar[tuple[str, ...]] = ("unknown_reason_msg",)
    unknown_reason: str | None = Field(None, description="why the burst could not count")
    unknown_reason_msg: Message | None = Field(
        None, description="`unknown_reason` as a message id with parameters."
    )


ReplyStatus = Literal["accepted", "progress", "succeeded", "failed", "rejected"]


class LivePayload(LiveState, Envelope):
    """The site's live state during a session (retained): republished on every change and
    at least every 60 s with the latest media figures; absent outside sessions (the last
    one says `session` None when a session ends)."""

    kind: ClassVar[str] = "live"
    schema_: Literal["edge-agent/live/1"] = _schema_field("live")
    session: SessionRef | None = Field(description="The session being watched; None: over.")


class LiveEventPayload(Envelope):
    """One transition of the live verdict (joined, dropped, poor, recovered), queued so a
    cut line loses none."""

    kind: ClassVar[str] = "live_event"
    schema_: Literal["edge-agent/live_event/1"] = _schema_field("live_event")
    session: SessionRef
    before: LiveVerdict | None = Field(description="None: the first verdict of the session.")
    after: LiveVerdict
    reason: str = ""
    reason_msg: Message | None = None


class CommandReplyPayload(Envelope):
    """A reply to a command (docs/mqtt.md, "Commands"): `accepted`, then any `progress`,
    then `succeeded` or `failed`; or only `rejected`."""

    kind: ClassVar[str] = "command_reply"
    schema_: Literal["edge-agent/command_reply/1"] = _schema_field("command_reply")
    command_id: str = Field(description="The command's id; empty when it could not be read.")
    status: ReplyStatus
    added_fields: ClassVar[tuple[str, ...]] = ("reason_msg",)
    reason: str = Field("", description="Why it failed or was rejected (`<reason>: <detail>`).")
    reason_msg: Message | None = Field(
        None,
        description="`reason` as a message id with parameters, for a reader in another "
        "language (the centre shows it in its operator's); absent: only the English.",
    )
    output: JsonValue = Field(None, description="What the action returned (e.g. the report).")


PAYLOADS: dict[str, type[Envelope]] = {
    m.kind: m
    for m in (
        AvailabilityPayload,
        MetaPayload,
        StatePayload,
        ChecksPayload,
        AttendancePayload,
        LivePayload,
        LiveEventPayload,
        CommandReplyPayload,
    )
}


_E = TypeVar("_E", bound=Envelope)


def parse_report(model: type[_E], data: bytes | str) -> _E:
    """A report as a reader takes it: JSON, validated, with fields this version does not know
    ignored (at every level) instead of refusing the report. ValidationError if not valid."""
    return model.model_validate_json(data, extra="ignore")


def state_components(results: list[CheckResult]) -> dict[str, ComponentState]:
    return {
        r.component: ComponentState(
            status=r.status,
            reason=r.reason,
            hint=r.hint,
            reason_msg=r.reason_msg,
            hint_msg=r.hint_msg,
        )
        for r in results
    }
