"""Pacing for the link: reconnect backoff and the drain's rate limit. Pure, clock passed in."""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_delay(
    attempt: int, low: float, high: float, rand: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with jitter: in [cap/2, cap], cap = min(high, low * 2**attempt).

    The random half spreads the reconnects of hundreds of sites after a broker restart (the
    thundering herd); the fixed half keeps a single site from hammering a dead broker.
    """
    cap = min(max(high, low), low * 2.0 ** min(attempt, 32))
    return cap / 2 + rand() * cap / 2


class TokenBucket:
    """At most `rate` sends per second on average, bursts of up to `burst`; rate 0: no limit."""

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._at = now

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self, now: float) -> None:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now

    def available(self, now: float) -> int:
        if self.unlimited:
            return self.burst
        self._refill(now)
        return int(self._tokens)

    def take(self, now: float, n: int = 1) -> None:
        if not self.unlimited:
            self._refill(now)
            self._tokens -= n

    def wait_s(self, now: float) -> float:
        """Seconds until one token is available (0 when one is)."""
        if self.unlimited:
            return 0.0
        self._refill(now)
        return max(0.0, (1 - self._tokens) / self.rate)
