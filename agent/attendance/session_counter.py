"""Counting during a session, as the daemon does it: a burst every `interval_s`, smoothed
per session, one report per burst (the daemon publishes it). The burst itself runs in a
child process (agent.attendance.worker); this module is light to import."""

from __future__ import annotations

import time
from collections.abc import Callable

from agent.attendance.report import AttendanceReport, AttendanceSession, hysteresis_config
from agent.attendance.worker import Burst, count_burst_isolated
from agent.config import Settings
from agent.schedule.model import Session, expected_attendance

CountFn = Callable[[Settings], Burst]


class SessionCounter:
    def __init__(self, settings: Settings, count: CountFn = count_burst_isolated) -> None:
        self.settings = settings
        self._count = count
        self._sessions: dict[str, AttendanceSession] = {}
        self._next_at = 0.0

    def due(self, now: float) -> bool:
        """Monotonic `now`; the first burst of the agent's life is due at once."""
        return now >= self._next_at

    def next_in(self, now: float) -> float:
        return max(0.0, self._next_at - now)

    def count(self, session: Session, codec_count: int | None = None) -> AttendanceReport:
        cfg = self.settings.attendance
        self._next_at = time.monotonic() + cfg.interval_s
        burst = self._count(self.settings)
        counting = self._sessions.get(session.session_id)
        if counting is None:
            # One smoother per session: a new session starts from nothing, not from the last.
            self._sessions = {}
            counting = self._sessions[session.session_id] = AttendanceSession(
                session.session_id,
                burst.detector,
                expected_attendance(session, self.settings.site.expected_attendance),
                hysteresis_config(cfg),
            )
        return counting.add(burst.stats, tiled=burst.tiled, people_count_codec=codec_count)
