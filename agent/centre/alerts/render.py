"""A notification as its reader sees it: a subject, a plain text and (for webhooks) a JSON
body, in the recipient's language, from agent/locale/messages/notify.toml.

Pure: no I/O. A group lists its sites (name, the alert's reason rendered in the reader's
language, since when in the centre's local time); a long group is cut with "... and N more"
so the text fits Telegram's 4096 characters, the smallest limit of the channels.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from agent.centre.alerts.model import (
    REGION_PREFIX,
    REGION_TIER,
    Alert,
    AlertKind,
    Notification,
    NotificationEvent,
)
from agent.i18n import Lang, say
from agent.messages import render

TELEGRAM_MAX_CHARS = 4096


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    body: dict[str, Any]


def local_time(ts: float, tz: tzinfo | None = None) -> str:
    """`ts` on the centre's wall clock (its TZ unless `tz` is given)."""
    return datetime.fromtimestamp(ts, tz).astimezone(tz).strftime("%Y-%m-%d %H:%M")


def event_label(event: NotificationEvent, lang: Lang) -> str:
    return say(f"notify.event.{event.value}", lang)


def _lang(n: Notification) -> Lang:
    return "en" if n.language == "en" else "vi"


def _one_line(text: str) -> str:
    """A subject is one header line: a site name from a site's own meta may hold a line
    break, which the e-mail library refuses (the notification would be given up)."""
    return " ".join(text.split())


def subject(site_id: str, name: str | None, lang: Lang) -> str:
    """What an alert or incident is about, to a reader: the site's name (else its id), or
    "region r001" for a region's (`region:r001`, which no site id can be)."""
    if site_id.startswith(REGION_PREFIX):
        return say("notify.region", lang, region=name or site_id[len(REGION_PREFIX) :])
    return name or site_id


def _label(a: Alert, lang: Lang) -> str:
    return subject(a.site_id, a.site_name, lang)


def _subject(n: Notification, lang: Lang, event: str, contact_name: str) -> str:
    return _one_line(_subject_text(n, lang, event, contact_name))


def _subject_text(n: Notification, lang: Lang, event: str, contact_name: str) -> str:
    alerts = n.alerts
    if n.event is NotificationEvent.TEST or not alerts:
        return say("notify.test_subject", lang, event=event, name=contact_name or n.contact_id)
    kind = say(f"notify.kind.{alerts[0].kind.value}", lang)
    if len(alerts) == 1:
        site = _label(alerts[0], lang)
        return say("notify.subject_one", lang, event=event, kind=kind, site=site)
    if all(a.tier == REGION_TIER for a in alerts):
        return say("notify.subject_regions", lang, event=event, kind=kind, count=len(alerts))
    districts = {a.district for a in alerts}
    if len(districts) == 1 and "" not in districts:
        return say(
            "notify.subject", lang, event=event, kind=kind, count=len(alerts),
            district=districts.pop(),
        )  # fmt: skip
    return say("notify.subject_everywhere", lang, event=event, kind=kind, count=len(alerts))


def _line(a: Alert, event: NotificationEvent, lang: Lang, tz: tzinfo | None) -> str:
    site = _label(a, lang)
    reason = render(a.reason, lang)
    if event is NotificationEvent.RECOVERED:
        at = local_time(a.resolved_at if a.resolved_at is not None else a.since, tz)
        return say("notify.line_recovered", lang, site=site, at=at, reason=reason)
    return say("notify.line", lang, site=site, reason=reason, since=local_time(a.since, tz))


def _fit(head: str, lines: list[str], foot: str, lang: Lang, max_chars: int) -> str:
    """head + as many lines as fit + "... and N more" + foot, within max_chars."""
    kept: list[str] = []
    used = len(head) + len(foot) + 2
    for i, line in enumerate(lines):
        left = len(lines) - i - 1
        reserve = len(say("notify.more", lang, count=left)) + 1 if left else 0
        if used + len(line) + 1 + reserve > max_chars:
            kept.append(say("notify.more", lang, count=len(lines) - i))
            break
        kept.append(line)
        used += len(line) + 1
    text = "\n".join([head, *kept, "", foot] if foot else [head, *kept])
    return text[:max_chars]


def _alert_json(a: Alert, lang: Lang) -> dict[str, Any]:
    return {
        "key": a.key,
        "rule": a.rule,
        "kind": a.kind.value,
        "severity": a.severity.value,
        "site_id": a.site_id,
        "site_name": a.site_name,
        "district": a.district,
        "tier": a.tier,
        "state": a.state.value,
        "since": a.since,
        "fired_at": a.fired_at,
        "resolved_at": a.resolved_at,
        "reason": render(a.reason, lang),
        "reason_id": a.reason.id,
        "session_id": a.session_id,
    }


def render_notification(
    n: Notification,
    *,
    contact_name: str = "",
    tz: tzinfo | None = None,
    max_chars: int = TELEGRAM_MAX_CHARS,
) -> Rendered:
    lang = _lang(n)
    event = event_label(n.event, lang)
    subject = _subject(n, lang, event, contact_name)
    if n.event is NotificationEvent.TEST or not n.alerts:
        channel = n.channel.kind.value
        if n.event is NotificationEvent.DEADMAN:
            text = say("notify.deadman_body", lang, at=local_time(n.created_at, tz))
        else:
            text = say("notify.test_body", lang, channel=channel)
    else:
        first = n.alerts[0]
        head = say(
            "notify.intro",
            lang,
            severity=say(f"notify.severity.{first.severity.value}", lang),
            kind=say(f"notify.kind.{first.kind.value}", lang),
        )
        lines = [_line(a, n.event, lang, tz) for a in n.alerts]
        foot = ""
        if n.event is not NotificationEvent.RECOVERED and first.kind is not AlertKind.TEST:
            foot = (
                say("notify.acknowledge", lang, key=first.key)
                if len(n.alerts) == 1
                else say("notify.acknowledge_group", lang)
            )
        text = _fit(head, lines, foot, lang, max_chars)
    body: dict[str, Any] = {
        "key": n.key,
        "event": n.event.value,
        "language": lang,
        "contact_id": n.contact_id,
        "created_at": n.created_at,
        "subject": subject,
        "text": text,
        "alerts": [_alert_json(a, lang) for a in n.alerts],
    }
    return Rendered(subject=subject[:max_chars], text=text, body=body)
