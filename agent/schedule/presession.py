"""Pre-session checks in the daemon: the pure Scheduler (agent/schedule/model.py) fed with the
centre's retained schedules (and the local fallback file), its run record kept on disk.

The daemon calls `tick(now)` from its loop; due runs become full self-tests with trigger
`pre-session`. Schedules received over MQTT are cached, so a site that boots with its line
down still knows its sessions.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Literal

from agent.config import Settings
from agent.errors import AgentError
from agent.schedule.model import (
    SchedulePayload,
    Scheduler,
    Session,
    Tick,
    effective_schedule,
    parse_payload,
    site_zone,
)
from agent.schedule.store import (
    RECORD_NAME,
    cache_payload,
    load_record,
    read_local_schedule,
    save_record,
)

log = logging.getLogger(__name__)

Scope = Literal["all", "site"]
_CACHE = {"all": "schedule-all.json", "site": "schedule-site.json"}


class PreSession:
    def __init__(self, settings: Settings) -> None:
        self._state_dir = settings.paths.state_dir
        self._lock = threading.Lock()
        self._zone = site_zone(settings.site.timezone)
        self._record_path = self._state_dir / RECORD_NAME
        self.scheduler = Scheduler(settings.schedule, load_record(self._record_path))
        self._payloads: dict[Scope, SchedulePayload | None] = {
            scope: self._cached(scope) for scope in ("all", "site")
        }
        try:
            self._local = read_local_schedule(settings.schedule.local_file, self._zone)
        except AgentError as exc:
            log.error("local schedule ignored: %s", exc)
            self._local = None
        self.source = "none"
        self._apply()

    def _cached(self, scope: Scope) -> SchedulePayload | None:
        path = self._state_dir / _CACHE[scope]
        try:
            return parse_payload(path.read_bytes(), str(path))
        except FileNotFoundError:
            return None
        except AgentError as exc:
            log.warning("cached schedule ignored: %s", exc)
            return None

    def _apply(self) -> None:
        sessions, self.source = effective_schedule(
            self._payloads["all"], self._payloads["site"], self._local
        )
        self.scheduler.set_sessions(sessions)

    def on_schedule(self, scope: Scope, raw: bytes) -> None:
        """A retained schedule from the centre; a bad one is logged and changes nothing."""
        if not raw:  # a cleared retained message: no schedule on that topic any more
            payload = None
        else:
            try:
                payload = parse_payload(raw, f"{scope} schedule message")
            except AgentError as exc:
                log.error("schedule refused: %s", exc)
                return
        with self._lock:
            self._payloads[scope] = payload
            try:
                if payload is not None:
                    cache_payload(self._state_dir / _CACHE[scope], payload)
                else:
                    Path(self._state_dir / _CACHE[scope]).unlink(missing_ok=True)
            except OSError as exc:
                # Not cached (state_dir full?): it still applies now, only a restart without
                # the link would not know it.
                log.error("schedule (%s) not cached: %s", scope, exc)
            self._apply()
        log.info("schedule (%s) now has %d session(s)", scope, len(self.scheduler.sessions))

    def tick(self, now: datetime) -> Tick:
        """What is due now; the record is saved before the caller runs anything."""
        with self._lock:
            tick = self.scheduler.tick(now)
            if tick.changed:
                try:
                    save_record(self._record_path, self.scheduler.record())
                except OSError as exc:
                    # Run anyway (the record in memory still holds the claim): at worst a
                    # restart before the disk has room runs one check again.
                    log.error("schedule run record not saved: %s", exc)
        for run in tick.missed:
            log.warning(
                "pre-session check %d min before %s missed (clock jump or agent down)",
                run.lead_minutes,
                run.session.session_id,
            )
        return tick

    def current_sessions(self, now: datetime) -> list[Session]:
        """The sessions running at `now` (start to end, as Tick.current counts them)."""
        return [s for s in self.scheduler.sessions if s.start <= now < s.end]

    def next_session(self, now: datetime) -> Session | None:
        upcoming = [s for s in self.scheduler.sessions if s.start >= now]
        return min(upcoming, key=lambda s: s.start) if upcoming else None
