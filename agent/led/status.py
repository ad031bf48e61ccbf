"""The status LED as the daemon drives it: the pattern for the site's state, `identify` on
request. A broken LED is logged once and never stops the agent."""

from __future__ import annotations

import logging
import threading
import time

from agent.checks.model import Verdict
from agent.config import Settings
from agent.errors import AgentError
from agent.led.driver import LedDriver, Writer, write_attribute
from agent.led.patterns import IdentifyTimer, Pattern, choose_pattern

log = logging.getLogger(__name__)


class StatusLed:
    def __init__(self, settings: Settings, write: Writer = write_attribute) -> None:
        self._driver: LedDriver | None = None
        self._identify = IdentifyTimer()
        self._lock = threading.Lock()
        self.pattern: Pattern | None = None
        if settings.led.enabled:
            try:
                self._driver = LedDriver(settings.paths.sysfs_root, settings.led, write)
            except AgentError as exc:
                log.error("status LED disabled: %s", exc)

    @property
    def available(self) -> bool:
        return self._driver is not None

    def identify(self, seconds: float) -> float:
        """Blink for `seconds` (the next update shows it); returns the seconds."""
        with self._lock:
            self._identify.start(time.monotonic(), seconds)
        return seconds

    def next_change_in(self) -> float | None:
        """Seconds until identify ends (the loop wakes then to restore the pattern)."""
        now = time.monotonic()
        with self._lock:
            ends = self._identify.ends_at(now)
        return None if ends is None else max(0.0, ends - now)

    def update(self, verdict: Verdict | None, connected: bool, checking: bool) -> Pattern:
        with self._lock:
            identify = self._identify.active(time.monotonic())
        pattern = choose_pattern(verdict, connected, checking, identify)
        self.pattern = pattern
        if self._driver is not None:
            try:
                self._driver.show(pattern)
            except AgentError as exc:
                log.error("status LED: %s", exc)
                self._driver = None
        return pattern
