"""Pre-session schedule: which checks are due, which session runs, when to look again.

Pure: no clock reads and no files. The caller passes `now` (an aware datetime) and persists
`Scheduler.record()` (see agent/schedule/store.py for the file side).

Sources. The centre publishes retained JSON on `<prefix>/schedule` (every site) and
`<prefix>/<site_id>/schedule` (one site), shaped like `SchedulePayload`; times must carry a
UTC offset. A site's own entries win over the all-sites ones with the same session_id, and a
site entry with `cancelled = true` removes that session for this site. The local file (TOML,
same shape, see docs/schedule.md) is the fallback: it is used only while neither centre
schedule is known; its times may omit the offset and are then read in the site's time zone.

Runs. For each session and each lead time (default 60 and 15 minutes) a pre-session check is
due once, from `start - lead` until the session starts. A run is keyed by (session_id, start,
lead): a session moved to a new time gets fresh runs at the new times, and a schedule sent
again unchanged (a retained message re-delivered on reconnect) changes nothing.

Clock jumps (NTP corrections, a dead RTC battery) are why due-ness is computed from the
record and not from timers:
- forward past a run time: the run is caught up once if its session has not started; if
  several runs of one session are due at once, only the latest runs and the earlier ones are
  recorded as superseded (one check, not two back to back);
- forward past a session's start: its runs are skipped and recorded as missed, once;
- backward: a run recorded done (or superseded, or covered by a later run of the same
  session) is never run again. A run recorded missed is not done: if the clock comes back
  before the session starts (a bogus jump corrected), it still runs, once.

Runs are claimed when `tick()` returns them (at most once): persist the record before running
the check, so a check that crashes the agent is not retried in a loop by the watchdog.

Quiet: while any session runs (start to end + overrun_minutes) the agent plays no loop tone
and runs no heavy checks. A pre-session check that falls due while another session runs
still runs, but in quiet mode (Tick.quiet tells the caller).

Why one file past 400 lines: the payload models and the maths over them (windows, lead times,
quiet periods) are one pure unit, tested directly together; neither half has another user.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.errors import AgentError, ConfigError
from agent.messages import Message, Param, message
from agent.validation import Invalid, pydantic_problem, toml_problem

SCHEMA_VERSION = "1"
MAX_SESSION = timedelta(hours=24)
MAX_ENTRIES = 1000
# Records of sessions no longer scheduled are dropped this long after their start.
KEEP = timedelta(days=2)
# What a codec's dial command may be given: SIP URIs, H.323 ids, E.164 numbers, IP addresses
# with a conference suffix (10.0.0.5##1001). No spaces, quotes, braces or line ends: the
# address goes verbatim into a command line on the codec's serial port.
CONFERENCE_ADDRESS = r"^[A-Za-z0-9][A-Za-z0-9@._:+#*=;/-]{0,199}$"


class ScheduleError(AgentError):
    """A schedule payload or file that cannot be used; the previous schedule stays."""


class ScheduleSettings(BaseModel):
    """`[schedule]`: when to run pre-session checks, and the local fallback file."""

    model_config = ConfigDict(extra="forbid")

    lead_minutes: list[int] = Field(
        default_factory=lambda: [60, 15],
        description="Run a full check this many minutes before each session (each lead once).",
    )
    local_file: Path = Field(
        Path("/etc/edge-agent/schedule.toml"),
        description="Fallback schedule (TOML) used while the centre's schedule is unknown; "
        "a missing file means no local sessions.",
    )
    overrun_minutes: int = Field(
        15,
        ge=0,
        le=240,
        description="Stay quiet this long after a session's scheduled end (sessions overrun).",
    )
    max_sleep_s: float = Field(
        30.0,
        gt=0,
        le=300,
        description="Longest wait between two looks at the clock: a clock jump is noticed "
        "within this.",
    )

    @field_validator("lead_minutes")
    @classmethod
    def _leads(cls, value: list[int]) -> list[int]:
        if not value:
            raise Invalid(message("schedule.no_leads"))
        if any(lead < 1 or lead > 24 * 60 for lead in value):
            raise Invalid(message("schedule.lead_range"))
        if len(set(value)) != len(value):
            raise Invalid(message("schedule.lead_twice"))
        return sorted(value, reverse=True)


def site_zone(name: str) -> ZoneInfo:
    """The site's time zone (settings site.timezone), or a ConfigError that says what to do."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            message("schedule.bad_zone", zone=repr(name)), message("schedule.bad_zone_hint")
        ) from None


class Session(BaseModel):
    """One session, as the centre (or the local file) describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    session_id: str = Field(min_length=1, max_length=128, description="Unique per session.")
    title: str = Field("", max_length=300)
    start: datetime
    end: datetime
    expected_attendance: int | None = Field(
        None, ge=0, description="People summoned; default: the site's expected_attendance."
    )
    cancelled: bool = Field(
        False, description="In one site's schedule: this site does not take part."
    )
    # Added within schema 1: optional, and agents before it ignore it (parse_payload).
    conference_address: str | None = Field(
        None,
        description="The conference to dial (SIP URI, H.323 id or number): what `rejoin` "
        "dials through the codec profile.",
    )

    @field_validator("conference_address")
    @classmethod
    def _dialable(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(CONFERENCE_ADDRESS, value):
            raise Invalid(message("schedule.bad_conference_address"))
        return value

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime, info: ValidationInfo) -> datetime:
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value
        zone = info.context.get("naive_tz") if isinstance(info.context, dict) else None
        if zone is None:
            raise Invalid(message("schedule.needs_offset"))
        return value.replace(tzinfo=zone)

    @model_validator(mode="after")
    def _span(self) -> Session:
        if self.end <= self.start:
            raise Invalid(message("schedule.end_before_start", session=self.session_id))
        if self.end - self.start > MAX_SESSION:
            raise Invalid(message("schedule.too_long", session=self.session_id))
        return self

    @property
    def key(self) -> tuple[str, datetime]:
        return self.session_id, self.start.astimezone(UTC)


class SchedulePayload(BaseModel):
    """The retained schedule message (and the local file's shape)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: str = Field(SCHEMA_VERSION, description="Payload layout; this agent: 1.")
    issued_at: datetime | None = Field(None, description="When the centre made it.")
    entries: list[Session] = Field(default_factory=list, max_length=MAX_ENTRIES)

    @field_validator("schema_version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != SCHEMA_VERSION:
            raise Invalid(
                message("schedule.bad_schema", version=repr(value), supported=repr(SCHEMA_VERSION))
            )
        return value

    @model_validator(mode="after")
    def _unique(self) -> SchedulePayload:
        seen: set[str] = set()
        for entry in self.entries:
            if entry.session_id in seen:
                raise Invalid(message("schedule.session_twice", session=repr(entry.session_id)))
            seen.add(entry.session_id)
        return self


def _validation_message(source: Param, exc: ValidationError, limit: int = 5) -> Message:
    parts: list[Message] = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"])
        problem = pydantic_problem(err)
        if not loc:  # the whole payload: the problem names what it is about
            parts.append(message("schedule.problem", problem=problem))
        elif err["type"] == "missing":
            parts.append(message("schedule.field_missing", field=loc))
        elif err["type"] == "extra_forbidden":
            parts.append(message("schedule.field_unknown", field=loc))
        else:
            parts.append(message("schedule.field_problem", field=loc, problem=problem))
    more = len(exc.errors()) - limit
    if more > 0:
        return message("schedule.invalid_more", source=source, problems=parts, more=more)
    return message("schedule.invalid", source=source, problems=parts)


def parse_payload(
    raw: bytes | str, source: Param | None = None, *, strict: bool = False
) -> SchedulePayload:
    """A retained schedule message. Empty (a cleared retained topic) means no sessions.

    Fields this agent does not know (a newer centre's) are ignored, so a schedule field added
    within the schema version does not cost deployed agents their schedule; `strict` refuses
    them instead (a schedule inside a signed command, whose body stays strict)."""
    source = message("schedule.message") if source is None else source
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if not text.strip():
        return SchedulePayload()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ScheduleError(
            message("schedule.not_json", source=source, error=exc.msg, line=exc.lineno),
            message("schedule.broken_hint"),
        ) from None
    except RecursionError:
        # json.loads recurses per nesting level; a hostile message must not get a traceback
        raise ScheduleError(
            message("schedule.too_deep", source=source), message("schedule.broken_hint")
        ) from None
    try:
        return SchedulePayload.model_validate(data, extra="forbid" if strict else "ignore")
    except ValidationError as exc:
        raise ScheduleError(
            _validation_message(source, exc), message("schedule.unusable_hint")
        ) from None


def parse_schedule_file(text: str, zone: tzinfo, source: Param | None = None) -> SchedulePayload:
    """The local fallback (TOML). Times without an offset are in the site's time zone.
    `source` names it in errors (a path, or a message such as schedule.file)."""
    source = message("schedule.file_unnamed") if source is None else source
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScheduleError(
            message("schedule.not_toml", source=source, error=toml_problem(exc)),
            message("schedule.not_toml_hint"),
        ) from None
    except RecursionError:
        raise ScheduleError(
            message("schedule.too_deep", source=source), message("schedule.too_deep_hint")
        ) from None
    try:
        return SchedulePayload.model_validate(data, context={"naive_tz": zone})
    except ValidationError as exc:
        raise ScheduleError(
            _validation_message(source, exc), message("schedule.fix_entries_hint")
        ) from None


def merge_schedules(
    all_sites: SchedulePayload | None, site: SchedulePayload | None
) -> list[Session]:
    """All-sites entries, overridden by this site's entries with the same session_id."""
    by_id: dict[str, Session] = {}
    for payload in (all_sites, site):
        if payload is not None:
            by_id.update((s.session_id, s) for s in payload.entries)
    return sorted((s for s in by_id.values() if not s.cancelled), key=lambda s: s.key[::-1])


ScheduleSource = Literal["centre", "local", "none"]


def effective_schedule(
    all_sites: SchedulePayload | None,
    site: SchedulePayload | None,
    local: SchedulePayload | None,
) -> tuple[list[Session], ScheduleSource]:
    """The centre's schedule once either of its topics is known, else the local file."""
    if all_sites is not None or site is not None:
        return merge_schedules(all_sites, site), "centre"
    if local is not None:
        return merge_schedules(None, local), "local"
    return [], "none"


RunOutcome = Literal["done", "superseded", "missed"]


class RunEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str
    start: datetime
    lead_minutes: int
    outcome: RunOutcome
    at: datetime


class RunRecord(BaseModel):
    """What the scheduler remembers across restarts (a few hundred bytes of JSON)."""

    model_config = ConfigDict(extra="forbid")

    version: Literal[1] = 1
    runs: list[RunEntry] = Field(default_factory=list)
    last_tick: datetime | None = None


RunKey = tuple[str, datetime, int]


@dataclass(frozen=True)
class PlannedRun:
    session: Session
    lead_minutes: int

    @property
    def run_at(self) -> datetime:
        return self.session.start.astimezone(UTC) - timedelta(minutes=self.lead_minutes)

    @property
    def key(self) -> RunKey:
        return (*self.session.key, self.lead_minutes)


@dataclass(frozen=True)
class Tick:
    """The answer for one `now`."""

    now: datetime
    due: tuple[PlannedRun, ...]  # run these now (already recorded as done)
    missed: tuple[PlannedRun, ...]  # newly found missed (report them once)
    superseded: tuple[PlannedRun, ...]  # folded into a due run of the same session
    current: tuple[Session, ...]  # running now: count attendance
    quiet: bool  # no loop tone, no heavy checks
    next_session: Session | None
    wake_at: datetime
    changed: bool  # the record changed: persist it (before running `due`)
    upcoming: tuple[Session, ...] = field(default=())


def _utc(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(UTC)


class Scheduler:
    """The pre-session state machine. Not thread-safe: one owner calls tick()."""

    def __init__(self, settings: ScheduleSettings, record: RunRecord | None = None) -> None:
        self.settings = settings
        self._sessions: list[Session] = []
        self._runs: dict[RunKey, RunEntry] = {}
        self._last_tick: datetime | None = None
        if record is not None:
            for entry in record.runs:
                key = (entry.session_id, entry.start.astimezone(UTC), entry.lead_minutes)
                self._runs[key] = entry
            self._last_tick = record.last_tick

    @property
    def sessions(self) -> Sequence[Session]:
        return self._sessions

    def set_sessions(self, sessions: Iterable[Session]) -> None:
        """Replace the schedule; pending runs follow it at the next tick()."""
        self._sessions = sorted(sessions, key=lambda s: s.key[::-1])

    def record(self) -> RunRecord:
        runs = sorted(self._runs.values(), key=lambda e: (e.start, e.session_id, -e.lead_minutes))
        return RunRecord(runs=runs, last_tick=self._last_tick)

    def outcome(self, run: PlannedRun) -> RunOutcome | None:
        entry = self._runs.get(run.key)
        return entry.outcome if entry else None

    def _note(self, run: PlannedRun, outcome: RunOutcome, now: datetime) -> None:
        self._runs[run.key] = RunEntry(
            session_id=run.session.session_id,
            start=run.session.start.astimezone(UTC),
            lead_minutes=run.lead_minutes,
            outcome=outcome,
            at=now,
        )

    def _runs_of(self, session: Session) -> list[PlannedRun]:
        """Earliest first (the leads are sorted longest first)."""
        return [PlannedRun(session, lead) for lead in self.settings.lead_minutes]

    def _covered(self, runs: list[PlannedRun], index: int) -> bool:
        """Done already, or made pointless by a later run of the same session that ran."""
        return any(self.outcome(r) in ("done", "superseded") for r in runs[index:])

    def tick(self, now: datetime) -> Tick:
        now = _utc(now)
        overrun = timedelta(minutes=self.settings.overrun_minutes)
        due: list[PlannedRun] = []
        missed: list[PlannedRun] = []
        superseded: list[PlannedRun] = []
        wake = [now + timedelta(seconds=self.settings.max_sleep_s)]
        before = dict(self._runs)

        for session in self._sessions:
            start, end = session.start.astimezone(UTC), session.end.astimezone(UTC)
            runs = self._runs_of(session)
            wake += [t for t in (start, end, end + overrun) if t > now]
            if now >= start:
                # Worth reporting only while the session is on, or when the run fell due
                # since the last look (downtime or a jump), not for ancient history.
                on = now < end + overrun
                for run in runs:
                    fresh = self._last_tick is not None and run.run_at > self._last_tick
                    if run.run_at <= now and self.outcome(run) is None and (on or fresh):
                        self._note(run, "missed", now)
                        missed.append(run)
                continue
            passed = [i for i, r in enumerate(runs) if r.run_at <= now]
            if passed and not self._covered(runs, passed[-1]):
                latest = runs[passed[-1]]
                self._note(latest, "done", now)
                due.append(latest)
                for i in passed[:-1]:
                    if self.outcome(runs[i]) in (None, "missed"):
                        self._note(runs[i], "superseded", now)
                        superseded.append(runs[i])
            wake += [r.run_at for r in runs if r.run_at > now]

        self._prune(now)
        self._last_tick = now
        current = tuple(s for s in self._sessions if s.start <= now < s.end)
        quiet = any(s.start <= now < s.end + overrun for s in self._sessions)
        upcoming = tuple(s for s in self._sessions if s.start > now)
        return Tick(
            now=now,
            due=tuple(due),
            missed=tuple(missed),
            superseded=tuple(superseded),
            current=current,
            quiet=quiet,
            next_session=upcoming[0] if upcoming else None,
            wake_at=min(wake),
            changed=self._runs != before,
            upcoming=upcoming,
        )

    def _prune(self, now: datetime) -> None:
        scheduled = {s.key for s in self._sessions}
        for key in list(self._runs):
            if key[:2] not in scheduled and key[1] < now - KEEP:
                del self._runs[key]


def expected_attendance(session: Session, site_default: int) -> int:
    return session.expected_attendance if session.expected_attendance is not None else site_default


def local_time(moment: datetime, zone: tzinfo) -> str:
    """A time as the site reads it: 2025-03-10 08:00 +07."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")
