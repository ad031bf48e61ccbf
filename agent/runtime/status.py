"""What `edge-agent status` shows: the running daemon's picture of the site. Pure: the
snapshot model (it crosses the control socket) and its rendering in English or Vietnamese."""

from __future__ import annotations

from datetime import UTC, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict

from agent.checks.model import CheckResult, ExitCode, Status, Verdict
from agent.i18n import Lang, say
from agent.led.patterns import PATTERN_NAMES, Pattern
from agent.messages import Message, render_or
from agent.schedule.model import local_time


class LinkView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker: str
    connected: bool
    protocol: str | None = None
    last_error: str = ""
    last_error_msg: Message | None = None  # the same, to render in the reader's language
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

# The words of a verdict and of a check's status: never their raw codes.
VERDICT_WORDS = {
    Verdict.READY: "status.verdict_word.ready",
    Verdict.DEGRADED: "status.verdict_word.degraded",
    Verdict.FAULT: "status.verdict_word.fault",
}
STATUS_WORDS = {
    Status.OK: "status.result.ok",
    Status.WARN: "status.result.warn",
    Status.FAIL: "status.result.fail",
    Status.SKIPPED: "status.result.skipped",
    Status.ERROR: "status.result.error",
}


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
    text = say("status.running_since", lang, name=name, time=local_time(session.start, zone))
    if session.end is not None:
        end = session.end.astimezone(zone)
        same_day = end.date() == session.start.astimezone(zone).date()
        shown = f"{end:%H:%M}" if same_day else local_time(end, zone)
        text += ", " + say("status.ends", lang, time=shown)
    return text


def _led_name(value: str | None, lang: Lang) -> str:
    """The pattern's name as the legend shows it, not its code (`no_broker`)."""
    if not value:
        return "-"
    try:
        return say(PATTERN_NAMES[Pattern(value)], lang)
    except (ValueError, KeyError):  # a newer daemon's pattern: its code beats nothing
        return value


def render_status(snap: StatusSnapshot, lang: Lang) -> str:
    zone = snap.zone()

    def when(moment: datetime) -> str:
        return local_time(moment, zone)

    def since(moment: datetime | None) -> str:
        return " " + say("status.since", lang, time=when(moment)) if moment else ""

    verdict = (
        say(VERDICT_WORDS[snap.verdict], lang).upper()
        if snap.verdict
        else say("status.not_checked", lang)
    )
    if snap.link.connected:
        link = say("status.connected", lang) + since(snap.link.connected_since)
        if snap.link.protocol:
            link += f", MQTT {snap.link.protocol}"
    else:
        link = say("status.disconnected", lang) + since(snap.link.down_since)
    if snap.link.connected:
        verdict_lines = [
            say("status.verdict_checked", lang, verdict=verdict, time=when(snap.checked_at))
            if snap.checked_at
            else say("status.verdict", lang, verdict=verdict)
        ]
    else:
        # The local verdict is only half the answer: the centre sees nothing of it.
        unseen = say("status.unseen", lang, verdict=verdict) + since(snap.link.down_since)
        error = render_or(snap.link.last_error_msg, snap.link.last_error, lang)
        if error:
            unseen += f" ({error})"
        verdict_lines = [unseen]
        if snap.checked_at:
            verdict_lines.append(say("status.last_check", lang, time=when(snap.checked_at)))
    site = say("status.site", lang, name=snap.site_name, site_id=snap.site_id, version=snap.version)
    lines = [site, *verdict_lines, ""]
    words = [say(STATUS_WORDS[r.status], lang) for r in snap.results]
    width = max([9, *(len(r.component) for r in snap.results)])
    status_width = max([10, *(len(w) for w in words)])
    for r, word in zip(snap.results, words, strict=True):
        reason = render_or(r.reason_msg, r.reason, lang)
        lines.append(f"  {r.component:<{width}}  {word:<{status_width}} {reason}")
        if r.hint:
            hint = render_or(r.hint_msg, r.hint, lang)
            lines.append(f"  {'':<{width}}  {'':<{status_width}} -> {hint}")
    if snap.results:
        lines.append("")
    outbox = say("status.outbox", lang, count=snap.outbox.pending)
    if snap.outbox.pending and snap.outbox.oldest_pending:
        outbox += " (" + say("status.oldest", lang, time=when(snap.outbox.oldest_pending)) + ")"
    if snap.outbox.dropped_checks:
        outbox += ", " + say("status.dropped", lang, count=snap.outbox.dropped_checks)
    lines += [say("status.broker", lang, broker=snap.link.broker, link=link), outbox]
    if snap.current_session:
        session = _session_line(snap.current_session, zone, lang)
        lines.append(say("status.current_session", lang, session=session))
    session = (
        f"{snap.next_session.title or snap.next_session.session_id} {when(snap.next_session.start)}"
        if snap.next_session
        else say("status.none_scheduled", lang)
    )
    lines += [
        say("status.next_session", lang, session=session),
        say("status.led", lang, pattern=_led_name(snap.led, lang)),
        say("status.zone", lang, zone=str(zone)),  # the zone the times above are in
    ]
    return "\n".join(lines)
