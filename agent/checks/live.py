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

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agent.config import SessionSettings
from agent.messages import Message, message


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
    lost_packets: int | None = Field(
        None,
        ge=0,
        description="Packets lost over the last interval, where the codec gives no total to "
        "make a % of (Poly advnetstats).",
    )
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


# ---- judging ---------------------------------------------------------------------------
#
# The thresholds ([session] in the settings) and where their defaults come from:
# - loss 8 %: Cisco Control Hub alerts on a room's packet loss above 8 % (as the issue
#   quotes it; not checked against Cisco's pages here).
# - round trip 300 ms: ITU-T G.114 keeps one-way delay under 150 ms for interactive use, and
#   the MCU probe times a TCP handshake, there and back: 2 x 150 ms. Control Hub's latency
#   alert is the same 300 ms.
# - 20 packets lost in an interval, for a codec that counts lost packets without a total
#   (Poly): 8 % (the loss threshold) of the 250 packets an audio channel sends in a 5-s
#   interval at 20 ms per packet; stricter for video (about 2 % of 1080p's ~1000).
# - jitter 30 ms: Cisco's QoS design guidance for interactive video (loss <= 1 %, one-way
#   latency <= 150 ms, jitter <= 30 ms); the network check's warn_jitter_ms is the same.
# - held 15 s: three polls at the default 5 s, so one bad interval (a key frame burst, a
#   retransmission) never makes `poor`; good again for 30 s before `poor` ends, so a line at
#   the edge shows `poor` steadily instead of flapping.
# `dropped` needs no hold: the codec saying it is not in the call is a fact, not a figure,
# and the centre must see it within seconds.


@dataclass(frozen=True)
class LiveSample:
    """One look during a session. `call` None: the codec's call is not read (no profile that
    reads calls, or the read failed: `call_problem` says why)."""

    call: CallState | None = None
    call_problem: Message | None = None
    path: tuple[PathStats, ...] = ()


@dataclass(frozen=True)
class LiveMemory:
    """What the judge keeps between samples: the verdict shown, and the verdict the latest
    samples point to (`raw`) with when they began to."""

    state: LiveState | None = None
    raw: LiveVerdict | None = None
    raw_since: datetime | None = None


@dataclass(frozen=True)
class _Raw:
    verdict: LiveVerdict
    reason: Message
    hint: Message | None = None


def _channel(media: MediaStats) -> Message:
    match media.kind, media.direction:
        case "audio", "in":
            return message("live.channel.audio_in")
        case "audio", "out":
            return message("live.channel.audio_out")
        case "video", "in":
            return message("live.channel.video_in")
        case "video", "out":
            return message("live.channel.video_out")
        case "content", "in":
            return message("live.channel.content_in")
        case _:
            return message("live.channel.content_out")


def _over(value: float | None, limit: float) -> float | None:
    """`value` when it is over `limit`, else None."""
    return value if value is not None and value > limit else None


def _media_problems(call: CallState, rules: SessionSettings) -> list[Message]:
    problems: list[Message] = []
    loss, jitter = rules.poor_loss_pct, rules.poor_jitter_ms
    for media in call.media:
        channel = _channel(media)
        if (lost := _over(media.loss_pct, loss)) is not None:
            problems.append(message("live.media_loss", channel=channel, loss=lost, limit=loss))
        if (jittered := _over(media.jitter_ms, jitter)) is not None:
            problems.append(
                message("live.media_jitter", channel=channel, jitter=jittered, limit=jitter)
            )
        most = rules.poor_lost_packets
        if media.loss_pct is None and (count := _over(media.lost_packets, most)) is not None:
            problems.append(message("live.media_lost", channel=channel, lost=count, limit=most))
    return problems


def _path_problems(paths: tuple[PathStats, ...], rules: SessionSettings) -> list[Message]:
    problems: list[Message] = []
    loss, rtt, jitter = rules.poor_loss_pct, rules.poor_rtt_ms, rules.poor_jitter_ms
    for path in paths:
        where = path.target
        if path.rtt_ms is None and (path.loss_pct is None or path.loss_pct >= 100):
            problems.append(message("live.path_down", target=where))
            continue
        if (lost := _over(path.loss_pct, loss)) is not None:
            problems.append(message("live.path_loss", target=where, loss=lost, limit=loss))
        if (slow := _over(path.rtt_ms, rtt)) is not None:
            problems.append(message("live.path_rtt", target=where, rtt=slow, limit=rtt))
        if (jittered := _over(path.jitter_ms, jitter)) is not None:
            problems.append(
                message("live.path_jitter", target=where, jitter=jittered, limit=jitter)
            )
    return problems


def _classify(sample: LiveSample, rules: SessionSettings) -> _Raw:
    """What this one sample says, before any hold."""
    call = sample.call
    if call is not None and call.in_call is False:
        return _Raw(LiveVerdict.DROPPED, message("live.dropped"), message("live.hint.rejoin"))
    in_call = call is not None and call.in_call is True
    if not in_call and not sample.path:
        if sample.call_problem is not None:
            reason = message("live.unknown.codec_error", problem=sample.call_problem)
            return _Raw(LiveVerdict.UNKNOWN, reason, message("live.hint.codec_error"))
        if call is not None:
            return _Raw(LiveVerdict.UNKNOWN, message("live.unknown.codec_silent"))
        return _Raw(
            LiveVerdict.UNKNOWN, message("live.unknown.nothing"), message("live.hint.nothing")
        )
    path_problems = _path_problems(sample.path, rules)
    problems = (_media_problems(call, rules) if call is not None else []) + path_problems
    if problems:
        down = any(p.id == "live.path_down" for p in path_problems)
        hint = message("live.hint.path_down") if down else message("live.hint.poor")
        return _Raw(LiveVerdict.POOR, message("live.poor", problems=problems), hint)
    if in_call:
        assert call is not None
        if call.far_end:
            return _Raw(LiveVerdict.IN_CALL, message("live.in_call_with", far_end=call.far_end))
        return _Raw(LiveVerdict.IN_CALL, message("live.in_call"))
    return _Raw(LiveVerdict.IN_CALL, message("live.path_good"))


def _seconds(since: datetime | None, now: datetime) -> float:
    return (now - since).total_seconds() if since is not None else 0.0


def held_rules(rules: SessionSettings, average_s: float | None) -> SessionSettings:
    """The site's rules for a codec that averages its figures over `average_s` (its
    profile's `[live] average_s`; Group Series: a minute): one bad minute shows in every
    poll of that minute, so a hold shorter than the average would call `poor` on a single
    event. Hold and recover are each at least the codec's average."""
    if average_s is None or (average_s <= rules.hold_s and average_s <= rules.recover_s):
        return rules
    hold_s, recover_s = max(rules.hold_s, average_s), max(rules.recover_s, average_s)
    return rules.model_copy(update={"hold_s": hold_s, "recover_s": recover_s})


def judge_live(
    memory: LiveMemory,
    sample: LiveSample,
    rules: SessionSettings,
    now: datetime,
    *,
    average_s: float | None = None,
) -> LiveMemory:
    """The next verdict from one more sample: `poor` once figures stay over a threshold for
    `hold_s`, and ends once they stay good for `recover_s`; `dropped` at once; `unknown` once
    nothing has told for `hold_s` (at once for the session's first sample). `average_s`:
    the codec's averaging time, which lengthens both holds (`held_rules`)."""
    rules = held_rules(rules, average_s)
    raw = _classify(sample, rules)
    raw_since = memory.raw_since if memory.raw is raw.verdict else now
    held = _seconds(raw_since, now)
    old = memory.state
    current = old.verdict if old is not None else None
    verdict: LiveVerdict | None
    if raw.verdict is LiveVerdict.POOR:
        if held >= rules.hold_s:
            verdict = LiveVerdict.POOR
        elif current in (None, LiveVerdict.DROPPED, LiveVerdict.UNKNOWN):
            # In the call again (or for the first time) with bad figures: joined first;
            # poor only once they have lasted.
            verdict = LiveVerdict.IN_CALL
        else:
            verdict = current
    elif raw.verdict is LiveVerdict.IN_CALL and current is LiveVerdict.POOR:
        verdict = LiveVerdict.IN_CALL if held >= rules.recover_s else current
    elif raw.verdict is LiveVerdict.UNKNOWN and current is not None:
        verdict = raw.verdict if held >= rules.hold_s else current
    else:
        verdict = raw.verdict
    if verdict is raw.verdict:
        reason, hint = raw.reason, raw.hint
    elif old is not None and old.verdict is verdict:
        reason, hint = old.reason_msg or raw.reason, old.hint_msg
    else:
        # Joined with figures not yet held bad long enough to call it poor.
        in_call = sample.call is not None and sample.call.in_call is True
        reason = message("live.in_call") if in_call else message("live.path_watch")
        hint = None
    state = LiveState(
        verdict=verdict,
        since=old.since if old is not None and old.verdict is verdict else now,
        reason=reason.text,
        reason_msg=reason,
        hint=hint.text if hint is not None else "",
        hint_msg=hint,
        call=sample.call,
        path=sample.path,
    )
    return LiveMemory(state=state, raw=raw.verdict, raw_since=raw_since)


__all__ = [
    "CallState",
    "LiveMemory",
    "LiveSample",
    "LiveState",
    "LiveVerdict",
    "MediaStats",
    "PathStats",
    "changed",
    "held_rules",
    "judge_live",
]
