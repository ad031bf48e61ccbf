"""The alerts' shapes, one per thing that crosses between the parts (rules → engine → store →
routing → queue → channels → CLI and page), and the `[alerts]` settings of centre.toml.

Pure: no I/O. Times are UTC epoch seconds (floats), as in the fleet store.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from agent.messages import Message


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Severity(StrEnum):
    """How loud: `warning` reaches the site's district technicians; `critical` also the
    province desk, and escalates when left unacknowledged."""

    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY_ORDER = {Severity.WARNING: 0, Severity.CRITICAL: 1}


class AlertKind(StrEnum):
    """What a rule watches. One rule per kind and parameters in `[[alerts.rules]]`."""

    CHECK_FAILED = "check_failed"  # a required component failing at a pre-session lead time
    SITE_DOWN = "site_down"  # offline, silent or never seen before a session
    CALL_DROPPED = "call_dropped"  # the live verdict `dropped` during a session
    MEDIA_POOR = "media_poor"  # the live verdict `poor` during a session
    LOW_ATTENDANCE = "low_attendance"  # counted below a share of the summoned number
    OUTBOX_BACKLOG = "outbox_backlog"  # reports queued at a site over a limit
    OLD_FIRMWARE = "old_firmware"  # a device's firmware below its profile's min_firmware
    REGION_DOWN = "region_down"  # a regional broker's bridge to the centre down (one per region)
    TEST = "test"  # `centre alerts test CONTACT`: no rule, no site


# The subject of an alert about a region rather than a site: a site id never holds a ":"
# (agent/config.py), so `region:<region>` cannot be taken for one.
REGION_TIER = "region"
REGION_PREFIX = "region:"


def region_subject(region: str) -> str:
    return REGION_PREFIX + region


class Rule(_Model):
    """One line of `[[alerts.rules]]`: a kind, how loud, how long it must hold before it
    fires (so a flap does not page) and the kind's own parameters."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Unique name of the rule.")
    kind: AlertKind
    severity: Severity = Severity.WARNING
    for_s: float = Field(120.0, ge=0, description="Held this long before it fires.")
    lead_minutes: int | None = Field(
        None, ge=0, description="check_failed / site_down: minutes before a session's start."
    )
    share: float | None = Field(
        None, gt=0, le=1, description="low_attendance: the share of the summoned number."
    )
    after_minutes: float | None = Field(
        None, ge=0, description="low_attendance: minutes after the start it is judged."
    )
    pending_over: int | None = Field(
        None, ge=1, description="outbox_backlog: reports queued at the site."
    )
    remind_every_s: float | None = Field(
        None, gt=0, description="Say it again this often while firing and unacknowledged."
    )
    escalate_after_s: float | None = Field(
        None, gt=0, description="critical: unacknowledged this long → the next level is told."
    )


class AlertState(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Alert(_Model):
    """One rule firing for one site (or for the centre itself: site_id ""). `key` is stable
    for the rule and site, so the same trouble is one alert, not one per evaluation.

    A region's alert (`region_down`) has the subject `region:<region>` as its site id, the
    region as its name, no district and the tier `region` (REGION_TIER): only contacts
    without a district or tier restriction cover it (docs/alerts.md)."""

    key: str = Field(description="rule id + ':' + site id")
    rule: str
    kind: AlertKind
    severity: Severity
    site_id: str
    site_name: str = ""
    district: str = Field("", description="The site's district (its parent, or itself).")
    tier: str = "commune"
    state: AlertState = AlertState.FIRING
    since: float = Field(description="When the condition began (before the hold).")
    fired_at: float | None = None
    resolved_at: float | None = None
    reason: Message
    session_id: str | None = None
    acked_by: str | None = None
    acked_at: float | None = None
    escalated: bool = False


class Incident(_Model):
    """One alert's life, kept with the fleet's retention: opened at the first firing,
    acknowledged (who, when), closed at recovery."""

    id: int
    alert_key: str
    rule: str
    kind: AlertKind
    severity: Severity
    site_id: str
    district: str = ""
    tier: str = "commune"
    opened_at: float
    acked_at: float | None = None
    acked_by: str | None = None
    closed_at: float | None = None
    reason: Message

    @property
    def time_to_ack_s(self) -> float | None:
        return None if self.acked_at is None else self.acked_at - self.opened_at

    @property
    def time_to_repair_s(self) -> float | None:
        return None if self.closed_at is None else self.closed_at - self.opened_at


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"
    TELEGRAM = "telegram"


class Channel(_Model):
    kind: ChannelKind
    address: str = Field(
        min_length=1, description="URL (webhook), e-mail address, or Telegram chat id."
    )


class QuietHours(_Model):
    """Local wall-clock hours (the centre's time zone) when only critical alerts are sent;
    `start` > `end` spans midnight (22 → 6)."""

    start: int = Field(ge=0, le=23)
    end: int = Field(ge=0, le=23)


class Contact(_Model):
    """One person or desk in the directory. Empty `districts` and `tiers`: everywhere."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    name: str = Field(min_length=1)
    level: int = Field(
        1, ge=1, le=3, description="1 district technician, 2 province desk, 3 escalation."
    )
    districts: tuple[str, ...] = ()
    tiers: tuple[str, ...] = ()
    min_severity: Severity = Severity.WARNING
    channels: tuple[Channel, ...] = Field(min_length=1)
    language: str = Field("vi", pattern=r"^(en|vi)$")
    quiet: QuietHours | None = None
    enabled: bool = True


class NotificationEvent(StrEnum):
    RAISED = "raised"
    RECOVERED = "recovered"
    REMINDER = "reminder"
    ESCALATED = "escalated"
    TEST = "test"
    DEADMAN = "deadman"


class NotificationStatus(StrEnum):
    PENDING = "pending"  # waiting for its next attempt
    SENT = "sent"  # the channel took it
    FAILED = "failed"  # given up after the attempts allowed (said in the log and the CLI)


class Notification(_Model):
    """One message to one contact on one channel: one alert, or a group of one kind in one
    district. Stored before it is sent; `key` is the idempotency key the receiver sees
    (webhook header, e-mail Message-ID), the same on every attempt."""

    id: int | None = None
    key: str
    contact_id: str
    channel: Channel
    language: str
    event: NotificationEvent
    alerts: tuple[Alert, ...]
    created_at: float
    status: NotificationStatus = NotificationStatus.PENDING
    attempts: int = 0
    next_at: float = 0.0
    last_error: str = ""
    sent_at: float | None = None


__all__ = [
    "REGION_PREFIX",
    "REGION_TIER",
    "SEVERITY_ORDER",
    "Alert",
    "AlertKind",
    "AlertState",
    "Channel",
    "ChannelKind",
    "Contact",
    "Incident",
    "Notification",
    "NotificationEvent",
    "NotificationStatus",
    "QuietHours",
    "Rule",
    "Severity",
    "region_subject",
]
