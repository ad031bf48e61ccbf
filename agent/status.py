"""What `edge-agent status` shows: the running daemon's picture of the site. Pure: the
snapshot model (it crosses the control socket) and its rendering in English or Vietnamese."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from agent.checks.model import CheckResult, ExitCode, Verdict
from agent.i18n import N_, Lang, translate


class LinkView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    broker: str
    connected: bool
    protocol: str | None = None
    last_error: str = ""


class OutboxView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pending: int
    dropped_checks: int = 0
    refused: int = 0


class SessionView(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: str
    title: str = ""
    start: datetime


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


def exit_code(snapshot: StatusSnapshot) -> ExitCode:
    if snapshot.verdict is None:
        return ExitCode.UNKNOWN
    return _EXIT.get(snapshot.verdict, ExitCode.CRITICAL)


def render_status(snap: StatusSnapshot, lang: Lang) -> str:
    def t(message: str) -> str:
        return translate(message, lang)

    verdict = t(snap.verdict.value).upper() if snap.verdict else t(_NOT_CHECKED)
    checked = f" ({t(_LAST_CHECK)} {snap.checked_at:%Y-%m-%d %H:%M} UTC)" if snap.checked_at else ""
    link = t(_CONNECTED) if snap.link.connected else t(_DISCONNECTED)
    if snap.link.connected and snap.link.protocol:
        link += f", MQTT {snap.link.protocol}"
    if not snap.link.connected and snap.link.last_error:
        link += f" ({snap.link.last_error})"
    lines = [
        f"{t(_SITE)}: {snap.site_name} [{snap.site_id}], edge-agent {snap.version}",
        f"{t(_VERDICT)}: {verdict}{checked}",
        "",
    ]
    width = max([9, *(len(r.component) for r in snap.results)])
    for r in snap.results:
        lines.append(f"  {r.component:<{width}}  {t(r.status.value):<10} {r.reason}")
        if r.hint:
            lines.append(f"  {'':<{width}}  {'':<10} -> {r.hint}")
    if snap.results:
        lines.append("")
    session = (
        f"{snap.next_session.title or snap.next_session.session_id} "
        f"{snap.next_session.start:%Y-%m-%d %H:%M %Z}"
        if snap.next_session
        else t(_NONE)
    )
    lines += [
        f"{t(_BROKER)}: {snap.link.broker} - {link}",
        f"{t(_OUTBOX)}: {snap.outbox.pending} {t(_WAITING)}"
        + (f", {snap.outbox.dropped_checks} dropped" if snap.outbox.dropped_checks else ""),
        f"{t(_NEXT)}: {session}",
        f"{t(_LED)}: {snap.led or '-'}",
    ]
    return "\n".join(lines)
