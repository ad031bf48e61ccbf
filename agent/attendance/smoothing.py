"""Counts across bursts: hysteresis so the reported number does not flap, and the session's
peak and median so far. Pure: burst counts in, reported counts out.

Rules (`Hysteresis.step`):
- A larger count shows after `rise_bursts` bursts (fast on: people arrive, and a face
  detector misses faces far more often than it invents them).
- A smaller count shows only after `fall_bursts` consecutive smaller bursts (slow off: a
  few heads bowed over papers must not empty the room).
- A change within the deadband (at most `deadband` people or `deadband_pct` % of the count)
  shows only after `settle_bursts` consecutive bursts on the same side, so 41, 42, 41, 42
  stays 41 and a real 42 still shows eventually.
- A change shows the value nearest the current one among the bursts that carried it.
- Blind bursts (None) keep the last count for `blind_hold_bursts` bursts, then the count is
  None: unknown, never 0. The first burst that sees again shows at once.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HysteresisConfig:
    rise_bursts: int = 1
    fall_bursts: int = 3
    settle_bursts: int = 3
    deadband: int = 1
    deadband_pct: float = 5.0
    blind_hold_bursts: int = 1

    def band(self, current: int) -> int:
        return max(self.deadband, int(current * self.deadband_pct / 100))


@dataclass
class Hysteresis:
    config: HysteresisConfig = field(default_factory=HysteresisConfig)
    shown: int | None = None
    _pending: list[int] = field(default_factory=list)
    _blind: int = 0

    def step(self, raw: int | None) -> int | None:
        cfg = self.config
        if raw is None:
            self._blind += 1
            self._pending.clear()
            if self._blind > cfg.blind_hold_bursts:
                self.shown = None
            return self.shown
        self._blind = 0
        if self.shown is None or raw == self.shown:
            self.shown = raw
            self._pending.clear()
            return self.shown
        rising = raw > self.shown
        if self._pending and (self._pending[0] > self.shown) != rising:
            self._pending.clear()  # the other side: the earlier change did not persist
        self._pending.append(raw)
        band = cfg.band(self.shown)
        small = any(abs(v - self.shown) <= band for v in self._pending)
        needed = cfg.settle_bursts if small else cfg.rise_bursts if rising else cfg.fall_bursts
        if len(self._pending) >= needed:
            self.shown = min(self._pending) if rising else max(self._pending)
            self._pending.clear()
        return self.shown


@dataclass
class SessionTally:
    """Peak and median of the reported counts of one session (unknowns left out)."""

    counts: list[int] = field(default_factory=list)

    def add(self, count: int | None) -> None:
        if count is not None:
            self.counts.append(count)

    @property
    def peak(self) -> int | None:
        return max(self.counts) if self.counts else None

    @property
    def median(self) -> float | None:
        return float(statistics.median(self.counts)) if self.counts else None
