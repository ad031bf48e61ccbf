"""What the daemon answers on its control socket (agent.control): `status` and `check`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.contract.payloads import utc_now
from agent.errors import AgentError
from agent.messages import message
from agent.runtime.control import Handler
from agent.runtime.status import LinkView, OutboxView, SessionView, StatusSnapshot
from agent.schedule.model import Session

if TYPE_CHECKING:
    from agent.runtime.daemon import Agent


def _moment(epoch: float | None) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if epoch else None


def _session(session: Session | None) -> SessionView | None:
    if session is None:
        return None
    return SessionView.model_validate(
        session.model_dump(include={"session_id", "title", "start", "end"})
    )


def status_snapshot(agent: Agent) -> StatusSnapshot:
    settings = agent.settings
    link = agent.link.status()
    stats = agent.outbox.stats()
    last = agent.last_check
    now = utc_now()
    running = agent.presession.current_sessions(now)
    return StatusSnapshot(
        site_id=settings.site.site_id,
        site_name=settings.site.name,
        version=__version__,
        verdict=last.verdict if last else None,
        checked_at=last.started_at if last else None,
        results=last.results if last else [],
        link=LinkView(
            broker=f"{settings.broker.host}:{settings.broker.port}",
            connected=link.connected,
            protocol=link.protocol,
            last_error=link.last_error,
            last_error_msg=link.last_error_msg,
            connected_since=_moment(link.connected_since),
            down_since=_moment(link.down_since),
        ),
        outbox=OutboxView(
            pending=stats.pending,
            dropped_checks=stats.dropped_checks,
            refused=stats.refused,
            oldest_pending=_moment(stats.oldest_created),
        ),
        current_session=_session(running[0] if running else None),
        next_session=_session(agent.presession.next_session(now)),
        led=agent.led_pattern,
        timezone=settings.site.timezone,
    )


def control_handlers(agent: Agent) -> dict[str, Handler]:
    def status(_request: dict[str, Any]) -> dict[str, Any]:
        return status_snapshot(agent).model_dump(mode="json")

    def check(request: dict[str, Any]) -> dict[str, Any]:
        components = request.get("components") or []
        if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
            raise AgentError(
                message("control.bad_components"), message("control.bad_components_hint")
            )
        # Asked without a stop event, check_now waits for a running check and returns None
        # only when the self-test's worker died: say that, not that the agent is stopping.
        run = agent.check_now("command", only=components)
        if run is None:
            raise AgentError(
                message("control.check_crashed"), message("control.check_crashed_hint")
            )
        return run.summary()

    return {"status": status, "check": check}
