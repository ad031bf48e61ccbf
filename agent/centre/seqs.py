"""Sequence tracking per site, pure: what one arriving `seq` means, and how many reports are
lost once counted drops are taken off.

Queued reports (state, checks, attendance, cmd/reply) each take the site's next `seq`; the
outbox drains them in order, so one process sees them in order and a higher number than
expected opens a gap. A number below the expected one is either a duplicate (at-least-once
delivery: the store's primary key catches it before this is asked) or a late arrival that
fills a gap (a refused report retried later, or another centre process of a shared
subscription storing its neighbour). A gap counts as lost only after a grace period, and the
agent's own `outbox.dropped_checks` (grown since the centre first heard the site) explains
that many missing numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Step(StrEnum):
    FIRST = "first"  # the first report heard from this site: it starts the count
    NEXT = "next"  # exactly the expected number
    GAP = "gap"  # numbers were skipped: [gap_first, gap_last] are missing for now
    LATE = "late"  # below the expected number and not seen before: fills a gap


@dataclass(frozen=True)
class SeqStep:
    step: Step
    next_seq: int
    gap_first: int | None = None
    gap_last: int | None = None


def track(next_seq: int | None, seq: int) -> SeqStep:
    """The meaning of a new (not duplicate) `seq` when `next_seq` was expected."""
    if next_seq is None:
        return SeqStep(Step.FIRST, seq + 1)
    if seq == next_seq:
        return SeqStep(Step.NEXT, seq + 1)
    if seq > next_seq:
        return SeqStep(Step.GAP, seq + 1, next_seq, seq - 1)
    return SeqStep(Step.LATE, next_seq)


@dataclass(frozen=True)
class Gap:
    first: int
    last: int
    detected_at: float
    filled: int = 0

    @property
    def missing(self) -> int:
        return self.last - self.first + 1 - self.filled


@dataclass(frozen=True)
class Loss:
    missing: int  # numbers not (yet) received, past the grace period
    explained: int  # of which the agent counted as dropped from its full outbox
    pending: int  # numbers missing for less than the grace period

    @property
    def lost(self) -> int:
        return self.missing - self.explained


def loss(gaps: list[Gap], dropped_since_first: int, now: float, grace_s: float) -> Loss:
    """Reports lost: missing numbers older than `grace_s`, less those the agent dropped."""
    missing = sum(g.missing for g in gaps if now - g.detected_at >= grace_s)
    pending = sum(g.missing for g in gaps if now - g.detected_at < grace_s)
    explained = min(missing, max(0, dropped_since_first))
    return Loss(missing, explained, pending)
