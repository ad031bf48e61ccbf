"""The live session, pure: what the codec says of its call and media, and the live verdict.

A site in a session is `in_call`, `poor` (loss or jitter over a threshold held for a while),
`dropped` (the agent is online and the session runs, but the codec is not in the call: unlike
`offline` at the centre, where the agent itself is unreachable) or `unknown` (no way to tell:
no codec profile that reads calls, garbage replies, no MCU target). The judging lives here,
free of I/O; the readers (the codec through its profile, the MCU path through the network
probe) sit in agent/probes/ and the sampler in agent/runtime/.

The models are strict, as every writer's model is (agent/contract/payloads.py); a reader
takes a newer site's report with the contract's lenient `parse_report`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agent.messages import Message


class LiveVerdict(StrEnum):
    IN_CALL = "in_call"
    POOR = "poor"
    DROPPED = "dropped"
    UNKNOWN = "unknown"


class MediaStats(BaseModel):
    """One media channel over the last interval, as the codec reports it, normalised:
    a percentage where the codec gives packet counts (Cisco), None where it says nothing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["audio", "video", "content"]
    direction: Literal["in", "out"]
    loss_pct: float | None = Field(None, ge=0, le=100, description="Packets lost, %.")
    jitter_ms: float | None = Field(None, ge=0)
    rate_kbps: float | None = Field(None, ge=0)
    resolution: str | None = Field(None, max_length=32, description="e.g. 1920x1080")


class CallState(BaseModel):
    """What the codec said of its call at one poll. `in_call` None: it could not say."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    in_call: bool | None
    since: AwareDatetime | None = None
    far_end: str | None = Field(None, max_length=256)
    protocol: str | None = Field(None, max_length=16, description="SIP, H.323, ...")
    media: tuple[MediaStats, ...] = ()


class PathStats(BaseModel):
    """The network path to the MCU (targets with role `mcu`) over the last interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target: str = Field(max_length=256)
    loss_pct: float | None = Field(None, ge=0, le=100)
    rtt_ms: float | None = Field(None, ge=0)
    jitter_ms: float | None = Field(None, ge=0)


class LiveState(BaseModel):
    """The live verdict with its reason and hint (catalogue messages) and the figures it
    was judged on: what the site reports, what the centre shows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: LiveVerdict
    since: AwareDatetime = Field(description="When this verdict began.")
    reason: str = Field("", description="English, for logs and old readers.")
    reason_msg: Message | None = None
    hint: str = ""
    hint_msg: Message | None = None
    call: CallState | None = None
    path: tuple[PathStats, ...] = ()


def changed(old: LiveState | None, new: LiveState) -> bool:
    """A transition worth an event: the verdict moved (figures alone do not make one)."""
    return old is None or old.verdict is not new.verdict


__all__ = [
    "CallState",
    "LiveState",
    "LiveVerdict",
    "MediaStats",
    "PathStats",
    "changed",
]
