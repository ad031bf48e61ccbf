"""The attendance report of one burst, and the session that accumulates them. Pure.

`AttendanceReport` is what goes to the centre on `<prefix>/<site_id>/attendance`:
agent.runtime.reports makes the payload of it (the envelope added, `people_count_codec`
sent as `codec_count`, `measured_at` left to the envelope's `ts`). It carries numbers only:
no image, crop, box or embedding ever leaves the device.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from agent.attendance.burst import BurstStats
from agent.attendance.settings import AttendanceSettings
from agent.attendance.smoothing import Hysteresis, HysteresisConfig, SessionTally
from agent.messages import Message


class AttendanceReport(BaseModel):
    """People counted at a site during a session, after one burst of frames."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str = Field(description="The scheduled session being counted.")
    measured_at: AwareDatetime = Field(description="When the burst was taken, UTC.")
    count: int | None = Field(
        ge=0,
        description="People present (smoothed across bursts). None: unknown, the camera "
        "could not see; never 0 for that.",
    )
    spread: float | None = Field(
        ge=0,
        description="Interquartile range of the per-frame counts of this burst (0: every "
        "frame agreed); None when unknown.",
    )
    detector: str = Field(description="Face detector that counted, e.g. `centerface`.")
    tiled: bool = Field(description="Whether small faces needed the tiled pass.")
    expected: int | None = Field(
        ge=0, description="People summoned (schedule or site settings); None: not known."
    )
    rate: float | None = Field(ge=0, description="count / expected; None if either unknown.")
    peak: int | None = Field(ge=0, description="Highest count so far this session.")
    median: float | None = Field(ge=0, description="Median count so far this session.")
    burst_count: int | None = Field(
        ge=0, description="This burst's own median, before smoothing; None: blind burst."
    )
    people_count_codec: int | None = Field(
        None, ge=0, description="The codec's own people count, if it reports one."
    )
    frames: int = Field(ge=0, description="Frames grabbed for this burst.")
    frames_used: int = Field(ge=0, description="Frames that could be counted.")
    unknown_reason: str | None = Field(
        None, description="Why the burst could not count (covered lens, no frames...)."
    )
    unknown_reason_msg: Message | None = Field(
        None, description="`unknown_reason` as a message, for a reader in another language."
    )


def hysteresis_config(settings: AttendanceSettings) -> HysteresisConfig:
    return HysteresisConfig(
        rise_bursts=settings.rise_bursts,
        fall_bursts=settings.fall_bursts,
        settle_bursts=settings.settle_bursts,
        deadband=settings.deadband,
        deadband_pct=settings.deadband_pct,
        blind_hold_bursts=settings.blind_hold_bursts,
    )


def attendance_rate(count: int | None, expected: int | None) -> float | None:
    if count is None or not expected:
        return None
    return round(count / expected, 4)


@dataclass
class AttendanceSession:
    """One session's counting: each burst in, one report out."""

    session_id: str
    detector: str
    expected: int | None = None
    config: HysteresisConfig = field(default_factory=HysteresisConfig)
    smoother: Hysteresis = field(init=False)
    tally: SessionTally = field(default_factory=SessionTally)

    def __post_init__(self) -> None:
        self.smoother = Hysteresis(self.config)
        if self.expected == 0:
            self.expected = None  # "nobody summoned" is a missing setting, not a target

    def add(
        self,
        burst: BurstStats,
        *,
        tiled: bool = False,
        people_count_codec: int | None = None,
        at: datetime | None = None,
    ) -> AttendanceReport:
        count = self.smoother.step(burst.count)
        self.tally.add(count)
        codec = (
            people_count_codec
            if people_count_codec is not None and people_count_codec >= 0
            else None
        )
        return AttendanceReport(
            session_id=self.session_id,
            measured_at=(at or datetime.now(UTC)).astimezone(UTC),
            count=count,
            spread=burst.spread,
            detector=self.detector,
            tiled=tiled,
            expected=self.expected,
            rate=attendance_rate(count, self.expected),
            peak=self.tally.peak,
            median=self.tally.median,
            burst_count=burst.count,
            people_count_codec=codec,
            frames=burst.frames,
            frames_used=burst.usable,
            unknown_reason=burst.unknown_reason,
            unknown_reason_msg=burst.unknown_msg,
        )
