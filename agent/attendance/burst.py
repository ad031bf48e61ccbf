"""One burst of frames to one count: which frames can be trusted, their median, the spread.

Pure (the report model imports it): numbers in, numbers out, and a message for why not. A count is
None ("unknown") when the camera could not see: too few usable frames (covered lens, dark
room, no frames at all). Never 0 then: 0 means an empty room was seen.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from agent import messages
from agent.messages import Message, message


@dataclass(frozen=True)
class FrameLook:
    mean_luma: float
    contrast: float  # standard deviation of luma


def frame_problem(seen: FrameLook, dark_luma: float, min_contrast: float) -> str | None:
    """Why a frame cannot be counted, or None if it can."""
    if seen.mean_luma < dark_luma:
        return "dark"
    if seen.contrast < min_contrast:
        return "uniform"
    return None


# What a technician reads when a burst is unknown, by its most common cause (the ids are
# literals here, where the catalogue test reads them).
UNKNOWN_REASONS = {
    "dark": "attendance.unknown.dark",
    "uniform": "attendance.unknown.uniform",
    "no_frames": "attendance.unknown.no_frames",
}


@dataclass(frozen=True)
class BurstStats:
    frames: int  # frames grabbed
    usable: int  # frames that could be counted
    counts: tuple[int, ...]  # per usable frame
    count: int | None  # median over usable frames; None: unknown
    spread: float | None  # interquartile range of the counts (0: all frames agree)
    unknown_reason: str | None = None  # the English of unknown_msg
    unknown_msg: Message | None = None

    @classmethod
    def blind(cls, frames: int, usable: int, counts: tuple[int, ...], why: Message) -> BurstStats:
        """An unknown count, and why."""
        return cls(frames, usable, counts, None, None, why.text, why)


def iqr(values: Sequence[int]) -> float:
    if len(values) < 2:
        return 0.0
    q = statistics.quantiles(values, n=4, method="inclusive")
    return float(q[2] - q[0])


def summarise_burst(
    counts: Sequence[int | None],
    problems: Sequence[str | None] = (),
    *,
    min_usable: float = 0.5,
    expected_frames: int | None = None,
) -> BurstStats:
    """Counts per frame (None for a frame that could not be counted) to the burst's count.

    `problems` gives each uncounted frame's reason ("dark", "uniform"); `expected_frames`
    is how many frames were asked for, so a camera that delivered too few is unknown too.
    The count is the median, rounded half up (with an even number of frames, two faces
    seen in half the frames count: a face detector misses far more often than it invents).
    """
    usable = [c for c in counts if c is not None]
    frames = len(counts)
    wanted = max(frames, expected_frames or 0)
    if not usable or len(usable) < min_usable * wanted:
        reasons = [p for p in problems if p in UNKNOWN_REASONS]
        if reasons and frames >= min_usable * wanted:
            why = messages.message(UNKNOWN_REASONS[max(sorted(set(reasons)), key=reasons.count)])
        elif frames == 0:
            why = message("attendance.unknown.no_frames")
        else:
            why = message("attendance.unknown.few_frames", frames=frames, wanted=wanted)
        return BurstStats.blind(frames, len(usable), tuple(usable), why)
    median = statistics.median(usable)
    return BurstStats(frames, len(usable), tuple(usable), int(median + 0.5), iqr(usable))
