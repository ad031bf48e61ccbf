"""What `edge-agent status` shows: the running daemon's picture of the site. Pure: the
snapshot model (it crosses the control socket) and its rendering in English or Vietnamese."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict

from agent.checks.model import CheckResult, ExitCode, Verdict
from agent.i18n import N_, Lang, translate
from agent.led.patterns import PATTERN_NAMES, Pattern
from agent.messages import render_or
from agent.schedule.model import local_time


class LinkView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker: str
    connected: bool
    protocol: str | None = None
    last_error: str = ""
    connected_since: datetime | None = None
    down_since: datetime | None = None  # when the centre lost sight of the site


class OutboxView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pending: int
    dropped_checks: int = 0
    refused: int = 0
    oldest_pending: datetime | None = None


class SessionView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str
    title: str = ""
    start: datetime
    end: datetime | None = None


class StatusSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    site_id: str
    site_name: str
    version: str
    verdict: Verdict | None = None
    checked_at: datetime | None = None
    results: list[CheckResult] = []
    link: LinkView
    outbox: OutboxView
    next_session: SessionView | None = None
    led: str | None = None
    current_session: SessionView | None = None
    # The site's zone (settings site.timezone): every time is shown in it. A daemon that
    # does not send it sent UTC times.
    timezone: str = "UTC"

    def zone(self) -> tzinfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            return UTC

    def localised(self) -> StatusSnapshot:
        """The same snapshot with every time in the site's zone (for --json)."""
        zone = self.zone()

        def shift(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.astimezone(zone)
            if isinstance(value, dict):
                return {k: shift(v) for k, v in value.items()}
            if isinstance(value, list):
                return [shift(v) for v in value]
            return value

        return StatusSnapshot.model_validate(shift(self.model_dump()))


_EXIT = {Verdict.READY: ExitCode.OK, Verdict.DEGRADED: ExitCode.WARNING}

# Headings, marked for the catalogue.
_SITE = N_("site")
_VERDICT = N_("verdict")
_NOT_CHECKED = N_("not checked yet")
_BROKER = N_("broker")
_CONNECTED = N_("connected")
_DISCONNECTED = N_("not connected")
_OUTBOX = N_("outbox")
_WAITING = N_("reports waiting")
_NEXT = N_("next session")
_NONE = N_("none scheduled")
_LED = N_("status LED")
_LAST_CHECK = N_("last check")
_CURRENT = N_("current session")
_RUNNING_SINCE = N_("running since %(time)s")
_ENDS = N_("ends %(time)s")
_SINCE = N_("since %(time)s")
_OLDEST = N_("oldest %(time)s")
_DROPPED = N_("dropped")
_ZONE = N_("time zone")
_UNSEEN = N_("%(verdict)s here, but the centre cannot see this site: broker unreachable")


def exit_code(snapshot: StatusSnapshot) -> ExitCode:
    """0 ready, 1 degraded, 2 fault, 3 not checked; ready is 1 while the broker link is
    down, since the centre does not see the site ready."""
    if snapshot.verdict is None:
        return ExitCode.UNKNOWN
    code = _EXIT.get(snapshot.verdict, ExitCode.CRITICAL)
    if code is ExitCode.OK and not snapshot.link.connected:
        return ExitCode.WARNING
    return code


def _session_line(session: SessionView, zone: tzinfo, lang: Lang) -> str:
    """Title, since when, until when (the end's date only when it is another day)."""
    name = session.title or session.session_id
    text = f"{name}, " + translate(_RUNNING_SINCE, lang) % {"time": local_time(session.start, zone)}
    if session.end is not None:
        end = session.end.astimezone(zone)
        same_day = end.date() == session.start.astimezone(zone).date()
        shown = f"{end:%H:%M}" if same_day else local_time(end, zone)
        text += ", " + translate(_ENDS, lang) % {"time": shown}
    return text


def _led_name(value: str | None, lang: Lang) -> str:
    """The pattern's name as the legend shows it, not its code (`no_broker`)."""
    if not value:
        return "-"
    try:
        return translate(PATTERN_NAMES[Pattern(value)], lang)
    except (ValueError, KeyError):  # a newer daemon's pattern: its code beats nothing
        return value


def render_status(snap: StatusSnapshot, lang: Lang) -> str:
    def t(message: str) -> str:
        return translate(message, lang)

    zone = snap.zone()

    def when(moment: datetime) -> str:
        return local_time(moment, zone)

    def since(moment: datetime | None) -> str:
        return " " + t(_SINCE) % {"time": when(moment)} if moment else ""

    verdict = t(snap.verdict.value).upper() if snap.verdict else t(_NOT_CHECKED)
    if snap.link.connected:
        link = t(_CONNECTED) + since(snap.link.connected_since)
        if snap.link.protocol:
            link += f", MQTT {snap.link.protocol}"
    else:
        link = t(_DISCONNECTED) + since(snap.link.down_since)  # the reason is on the verdict
    if snap.link.connected:
        verdict_lines = [
            f"{t(_VERDICT)}: {verdict}"
            + (f" ({t(_LAST_CHECK)} {when(snap.checked_at)})" if snap.checked_at else "")
        ]
    else:
        # The local verdict is only half the answer: the centre sees nothing of it.
        unseen = t(_UNSEEN) % {"verdict": verdict} + since(snap.link.down_since)
        if snap.link.last_error:
            unseen += f" ({snap.link.last_error})"
        verdict_lines = [f"{t(_VERDICT)}: {unseen}"]
        if snap.checked_at:
            verdict_lines.append(f"{t(_LAST_CHECK)}: {when(snap.checked_at)}")
    lines = [
        f"{t(_SITE)}: {snap.site_name} [{snap.site_id}], edge-agent {snap.version}",
        *verdict_lines,
        "",
    ]
    width = max([9, *(len(r.component) for r in snap.results)])
    for r in snap.results:
        reason = render_or(r.reason_msg, r.reason, lang)
        lines.append(f"  {r.component:<{width}}  {t(r.status.value):<10} {reason}")
        if r.hint:
            lines.append(f"  {'':<{width}}  {'':<10} -> {render_or(r.hint_msg, r.hint, lang)}")
    if snap.results:
        lines.append("")
    outbox = f"{t(_OUTBOX)}: {snap.outbox.pending} {t(_WAITING)}"
    if snap.outbox.pending and snap.outbox.oldest_pending:
        outbox += " (" + t(_OLDEST) % {"time": when(snap.outbox.oldest_pending)} + ")"
    if snap.outbox.dropped_checks:
        outbox += f", {snap.outbox.dropped_checks} {t(_DROPPED)}"
    lines += [f"{t(_BROKER)}: {snap.link.broker} - {link}", outbox]
    if snap.current_session:
        lines.append(f"{t(_CURRENT)}: {_session_line(snap.current_session, zone, lang)}")
    session = (
        f"{snap.next_session.title or snap.next_session.session_id} {when(snap.next_session.start)}"
        if snap.next_session
        else t(_NONE)
    )
    lines += [
        f"{t(_NEXT)}: {session}",
        f"{t(_LED)}: {_led_name(snap.led, lang)}",
        f"{t(_ZONE)}: {zone}",  # the zone the times above are in
    ]
    return "\n".join(lines)
