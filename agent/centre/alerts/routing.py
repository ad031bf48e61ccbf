"""Who is told what, pure: from the alerts of one event and the contact directory, one
notification per (contact, channel) holding every alert that contact covers.

Coverage, in the directory's words (docs/alerts.md, "Contacts and routing"):
- a disabled contact is told nothing; an alert below the contact's `min_severity` neither;
- `districts` and `tiers`, when given, limit a contact to those (empty: everywhere);
- level 1 (a district technician) gets the alerts of its districts; level 2 (the province
  desk) gets the critical ones only; level 3 is told only when an alert escalates to it;
- an escalation (`level` > 1) goes to the contacts of exactly that level;
- reminders and the recovery go to everyone told so far: the escalations' contacts too.

Quiet hours hold back what can wait: a notification of warnings only, inside the contact's
quiet hours, is queued with `next_at` at their end (deferred, not dropped); anything
critical goes out at once.

The key is the idempotency key the receiver sees: a hash of the event, the alerts' keys with
their firing times, the contact and the channel. The engine enqueueing the same event twice
(a restart between its steps) therefore makes one notification, while the same alert firing
again later (a new `fired_at`) is a new one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence

from agent.centre.alerts.model import (
    SEVERITY_ORDER,
    Alert,
    Contact,
    Notification,
    NotificationEvent,
    Severity,
)

_HOUR_S = 3600.0
# Events a person asked for, or about the centre itself: not filtered by coverage and not
# held by quiet hours (the contact was chosen by hand).
_DIRECT = frozenset({NotificationEvent.TEST, NotificationEvent.DEADMAN})


def in_place(contact: Contact, district: str, tier: str) -> bool:
    """Whether a site of `district` and `tier` is in the contact's part of the province."""
    if contact.districts and district not in contact.districts:
        return False
    return not contact.tiers or tier in contact.tiers


def covers(contact: Contact, alert: Alert, level: int = 1) -> bool:
    """Whether `contact` is told of `alert` at escalation `level` (1: not escalated)."""
    if not contact.enabled:
        return False
    if SEVERITY_ORDER[alert.severity] < SEVERITY_ORDER[contact.min_severity]:
        return False
    if level > 1:
        if contact.level != level:
            return False
    elif contact.level == 2:
        if alert.severity != Severity.CRITICAL:
            return False
    elif contact.level != 1:
        return False  # level 3 waits for an escalation
    return in_place(contact, alert.district, alert.tier)


def told_of(contact: Contact, alert: Alert, reached: int) -> bool:
    """Whether `contact` was told of `alert` raised and escalated up to level `reached`: who
    hears its reminders and its recovery (the level-3 contact it was escalated to too)."""
    return any(covers(contact, alert, level) for level in range(1, reached + 1))


def covering(alert: Alert, contacts: Sequence[Contact], level: int = 1) -> list[Contact]:
    """The contacts told of `alert` ("who will be told"), in the directory's order."""
    return [c for c in contacts if covers(c, alert, level)]


def in_quiet_hours(contact: Contact, local_hour: int) -> bool:
    quiet = contact.quiet
    if quiet is None or quiet.start == quiet.end:
        return False
    if quiet.start < quiet.end:
        return quiet.start <= local_hour < quiet.end
    return local_hour >= quiet.start or local_hour < quiet.end  # spans midnight


def quiet_end(now: float, local_hour: int, end_hour: int) -> float:
    """The epoch at which local time next reaches `end_hour`:00. The local offset is taken to
    be whole hours (Vietnam's is +7), so the minutes past the hour are the epoch's."""
    hours = (end_hour - local_hour) % 24 or 24
    return now - now % _HOUR_S + hours * _HOUR_S


def idempotency_key(
    event: NotificationEvent,
    alerts: Sequence[Alert],
    contact_id: str,
    channel: str,
    round_: int = 0,
) -> str:
    fired = sorted([a.key, a.fired_at] for a in alerts)
    parts: list[object] = [str(event), fired, contact_id, channel]
    if round_:
        parts.append(round_)  # only when given: the keys of earlier releases stay as they were
    text = json.dumps(parts, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def notifications(
    event: NotificationEvent,
    alerts: Sequence[Alert],
    contacts: Sequence[Contact],
    *,
    now: float,
    local_hour: int,
    level: int = 1,
    round_: int = 0,
    reached: Mapping[str, int] | None = None,
) -> list[Notification]:
    """One notification per (contact, channel) with the alerts that contact covers.
    `round_`: which reminder (1, 2, ...) or escalation level this is, so each round is a new
    key while the same round queued again (a restart) is the same one. `reached` (alert key
    -> the highest level it was escalated to) routes to everyone told of each alert so far
    (reminders, recovery) instead of to one `level`."""
    out: list[Notification] = []
    for contact in contacts:
        if event in _DIRECT:
            mine = tuple(alerts)
        elif reached is not None:
            mine = tuple(a for a in alerts if told_of(contact, a, reached.get(a.key, 1)))
        else:
            mine = tuple(a for a in alerts if covers(contact, a, level))
        if not mine:
            continue
        next_at = now
        urgent = any(a.severity == Severity.CRITICAL for a in mine)
        quiet = contact.quiet
        if quiet and event not in _DIRECT and not urgent and in_quiet_hours(contact, local_hour):
            next_at = quiet_end(now, local_hour, quiet.end)
        for channel in contact.channels:
            address = f"{channel.kind}:{channel.address}"
            out.append(
                Notification(
                    key=idempotency_key(event, mine, contact.id, address, round_),
                    contact_id=contact.id,
                    channel=channel,
                    language=contact.language,
                    event=event,
                    alerts=mine,
                    created_at=now,
                    next_at=next_at,
                )
            )
    return out


__all__ = [
    "covering",
    "covers",
    "idempotency_key",
    "in_place",
    "in_quiet_hours",
    "notifications",
    "quiet_end",
    "told_of",
]
