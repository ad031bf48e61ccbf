"""What the daemon answers on its control socket (agent.control): `status` and `check`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agent import __version__
from agent.control import Handler
from agent.status import LinkView, OutboxView, StatusSnapshot

if TYPE_CHECKING:
    from agent.daemon import Agent


def status_snapshot(agent: Agent) -> StatusSnapshot:
    settings = agent.settings
    link = agent.link.status()
    stats = agent.outbox.stats()
    last = agent.last_check
    return StatusSnapshot(
        site_id=settings.site.site_id,
        site_name=settings.site.name,
        version=__version__,
        verdict=last.verdict if last else None,
        checked_at=last.at if last else None,
        results=last.results if last else [],
        link=LinkView(
            broker=f"{settings.broker.host}:{settings.broker.port}",
            connected=link.connected,
            protocol=link.protocol,
            last_error=link.last_error,
        ),
        outbox=OutboxView(
            pending=stats.pending, dropped_checks=stats.dropped_checks, refused=stats.refused
        ),
        led=agent.led_pattern,
    )


def control_handlers(agent: Agent) -> dict[str, Handler]:
    def status(_request: dict[str, Any]) -> dict[str, Any]:
        return status_snapshot(agent).model_dump(mode="json")

    def check(request: dict[str, Any]) -> dict[str, Any]:
        components = request.get("components") or []
        if not isinstance(components, list) or not all(isinstance(c, str) for c in components):
            raise ValueError("components must be a list of names")
        test = agent.check_now("command", only=components)
        if test is None:
            raise RuntimeError("the agent is stopping")
        return {
            "verdict": test.verdict.value,
            "results": [r.model_dump(mode="json") for r in test.results],
        }

    return {"status": status, "check": check}
