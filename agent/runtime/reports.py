"""Every report the site publishes, built from settings and what the agent knows: the birth
record (`meta`), `state`, `checks`, `attendance`, `live` and `live/event`; and the last check
as saved on disk. The daemon decides when; this module decides what goes in. Pure but for the
host name and the clock (`ts`)."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime

from agent import __version__
from agent.attendance.report import AttendanceReport
from agent.checks.live import LiveState
from agent.checks.model import CheckResult, CheckRun, Verdict
from agent.components import COMPONENTS, TABLE
from agent.config import Settings
from agent.contract.payloads import (
    AttendancePayload,
    ChecksPayload,
    ComponentInfo,
    LiveEventPayload,
    LivePayload,
    MetaPayload,
    OutboxHealth,
    SessionRef,
    SiteInfo,
    StateCause,
    StatePayload,
    state_components,
    utc_now,
)
from agent.schedule.model import Session
from agent.transport.mqtt import Protocol
from agent.transport.outbox import OutboxStats

CAPABILITIES = ("checks", "state", "store-and-forward", "rebirth")


def last_check_bytes(run: CheckRun) -> bytes:
    """The latest check as saved on disk, so a restarted agent does not forget the site. The
    file keeps the form earlier versions wrote and read: verdict, results and `at` (when the
    run started); why it ran and how long it took are not kept, nor the reasons and hints as
    messages (an earlier version would refuse the file; the check at start-up brings them
    back within a minute)."""
    if run.started_at is None:
        raise ValueError("a check is saved with its start time")
    summary = run.model_dump(
        mode="json",
        include={"verdict", "results"},
        exclude={"results": {"__all__": {"reason_msg", "hint_msg"}}},
    )
    return json.dumps({**summary, "at": run.started_at.isoformat()}).encode()


def last_check_from_bytes(data: bytes) -> CheckRun:
    """ValueError, KeyError or TypeError when the saved file is not one."""
    raw = json.loads(data)
    return CheckRun(
        verdict=Verdict(raw["verdict"]),
        results=[CheckResult.model_validate(r) for r in raw["results"]],
        started_at=datetime.fromisoformat(raw["at"]),
    )


def checks_payload(settings: Settings, run: CheckRun) -> ChecksPayload:
    """`run` (its trigger, start and duration known) as the `checks` report."""
    return ChecksPayload(site_id=settings.site.site_id, ts=utc_now(), **dict(run))


def state_payload(
    settings: Settings,
    cause: StateCause,
    *,
    now: datetime,
    last: CheckRun | None,
    stats: OutboxStats,
    current: Session | None,
    upcoming: Session | None,
) -> StatePayload:
    """The site's state: the last check's picture, the sessions, the outbox's health."""
    oldest = stats.oldest_created
    return StatePayload(
        site_id=settings.site.site_id,
        ts=now,
        cause=cause,
        current_session=session_ref(current),
        next_session=session_ref(upcoming),
        verdict=last.verdict if last else None,
        components=state_components(last.results) if last else {},
        last_check=last.started_at if last else None,
        outbox=OutboxHealth(
            pending=stats.pending,
            pending_bytes=stats.pending_bytes,
            dropped_checks=stats.dropped_checks,
            refused=stats.refused,
            oldest_pending=datetime.fromtimestamp(oldest, UTC) if oldest else None,
        ),
    )


def attendance_payload(settings: Settings, report: AttendanceReport) -> AttendancePayload:
    """One burst's report as the `attendance` payload: the same fields, but for when it was
    measured (the envelope's `ts` says when it was made) and the codec's count, which the
    contract calls `codec_count`."""
    fields = report.model_dump(exclude={"measured_at", "people_count_codec"})
    return AttendancePayload(
        site_id=settings.site.site_id,
        ts=utc_now(),
        codec_count=report.people_count_codec,
        **fields,
    )


def live_payload(settings: Settings, state: LiveState, session: Session | None) -> LivePayload:
    """The live state of `session`; None: the session is over (the last one)."""
    return LivePayload(
        site_id=settings.site.site_id, ts=utc_now(), session=session_ref(session), **dict(state)
    )


def live_event_payload(
    settings: Settings, before: LiveState | None, after: LiveState, session: Session
) -> LiveEventPayload:
    ref = session_ref(session)
    assert ref is not None
    return LiveEventPayload(
        site_id=settings.site.site_id,
        ts=utc_now(),
        session=ref,
        before=before.verdict if before else None,
        after=after.verdict,
        reason=after.reason,
        reason_msg=after.reason_msg,
    )


def meta_payload(settings: Settings, protocol: Protocol, started_at: datetime) -> MetaPayload:
    components = []
    for name in COMPONENTS:
        section = settings.component(name)
        device, profile = TABLE[name].device(settings)
        components.append(
            ComponentInfo(
                component=name,
                enabled=section.enabled,
                required=section.required,
                device=device,
                profile=profile,
            )
        )
    site = settings.site
    return MetaPayload(
        site_id=site.site_id,
        ts=utc_now(),
        agent_version=__version__,
        site=SiteInfo(
            name=site.name,
            tier=site.tier.value,
            parent=site.parent,
            timezone=site.timezone,
            expected_attendance=site.expected_attendance,
        ),
        components=components,
        profiles=sorted({c.profile for c in components if c.enabled and c.profile}),
        capabilities=[*CAPABILITIES, *(["commands"] if settings.commands.enabled else [])],
        protocol=protocol.value,
        check_interval_s=settings.report.check_interval_s,
        heartbeat_s=settings.report.state_heartbeat_s,
        hostname=socket.gethostname(),
        started_at=started_at,
    )


def session_ref(session: Session | None) -> SessionRef | None:
    if session is None:
        return None
    return SessionRef(
        session_id=session.session_id, title=session.title, start=session.start, end=session.end
    )
