"""`centre schedule add|list|remove`: read, change and republish the retained schedule
(agent/schedule/model.py's SchedulePayload) on `<prefix>/schedule` (every site) or
`<prefix>/<site_id>/schedule` (one site). Pure edits apart from the broker round trip."""

from __future__ import annotations

import dataclasses
import os
import time
from datetime import UTC, datetime

from agent.centre.settings import CentreSettings
from agent.contract.topics import topic_for
from agent.errors import TransportError
from agent.messages import message
from agent.schedule.model import SchedulePayload, Session, parse_payload
from agent.transport.listener import Listener
from agent.transport.mqtt import endpoint


def with_session(payload: SchedulePayload, session: Session, now: datetime) -> SchedulePayload:
    """The schedule with `session` added, or replacing the entry with its session_id."""
    entries = [e for e in payload.entries if e.session_id != session.session_id]
    entries.append(session)
    entries.sort(key=lambda e: (e.start, e.session_id))
    return SchedulePayload(issued_at=now, entries=entries)


def without_session(
    payload: SchedulePayload, session_id: str, now: datetime
) -> tuple[SchedulePayload, bool]:
    entries = [e for e in payload.entries if e.session_id != session_id]
    found = len(entries) != len(payload.entries)
    return SchedulePayload(issued_at=now, entries=entries), found


def schedule_topic(prefix: str, site_id: str | None) -> str:
    if site_id:
        return topic_for(prefix, site_id, "schedule")
    return topic_for(prefix, "", "fleet_schedule")


def _listener(settings: CentreSettings, topic: str) -> Listener:
    where = endpoint(settings.broker, f"edge-agent-centre-schedule-{os.getpid()}")
    where = dataclasses.replace(where, session_expiry_s=0, clean_start=True)
    return Listener(where, [topic], protocol=settings.broker.protocol).start(
        timeout=settings.broker.connect_timeout_s
    )


def fetch(settings: CentreSettings, site_id: str | None, wait_s: float = 1.0) -> SchedulePayload:
    """The schedule now retained at the broker (empty when there is none)."""
    topic = schedule_topic(settings.broker.prefix, site_id)
    with _listener(settings, topic) as listener:
        listener.wait_for(lambda ms: any(m.retain for m in ms), wait_s)
        retained = [m for m in listener.messages(topic) if m.retain]
    return parse_payload(retained[-1].payload, topic) if retained else SchedulePayload()


def publish(
    settings: CentreSettings, site_id: str | None, payload: SchedulePayload, timeout: float = 5.0
) -> str:
    """Publish retained and wait until the broker hands it back (proof it was taken)."""
    topic = schedule_topic(settings.broker.prefix, site_id)
    body = payload.model_dump_json(exclude_none=True).encode()
    with _listener(settings, topic) as listener:
        time.sleep(0.1)  # let any retained copy arrive first, so it is not taken as the echo
        listener.clear()
        listener.publish(topic, body, qos=1, retain=True)
        if not listener.wait_for(lambda ms: any(m.payload == body for m in ms), timeout):
            raise TransportError(
                message("broker.schedule_unconfirmed", topic=topic, seconds=timeout),
                message("broker.hint.acl"),
            )
    return topic


def utc_now() -> datetime:
    return datetime.now(UTC)
