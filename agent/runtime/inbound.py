"""Everything the site hears from the centre, routed in one place: each topic the daemon
subscribes to (commands, fleet commands, schedules) and the handler it goes to."""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.commands.service import CommandService, reply_route
from agent.config import Settings
from agent.contract.topics import name_of, topic_for
from agent.schedule.presession import Scope
from agent.transport.mqtt import Inbound

log = logging.getLogger(__name__)

ScheduleHandler = Callable[[Scope, bytes], None]
_SCHEDULES: dict[str, Scope] = {"schedule": "site", "fleet_schedule": "all"}


def command_topics(settings: Settings) -> list[str]:
    """Topic-table names the link subscribes to for commands."""
    if not settings.commands.enabled:
        return []
    return ["cmd", "fleet_cmd"] if settings.commands.fleet else ["cmd"]


class Router:
    """`subscriptions` for the link; called with each message the link receives. A message on
    any other topic is ignored (logged at debug level)."""

    def __init__(
        self,
        settings: Settings,
        commands: CommandService | None,
        schedules: ScheduleHandler | None = None,
    ) -> None:
        self.settings = settings
        self._commands = commands
        prefix, site_id = settings.broker.prefix, settings.site.site_id
        routes: dict[str, Callable[[Inbound], None]] = {}
        if commands is not None:
            for name in command_topics(settings):
                routes[topic_for(prefix, site_id, name)] = (
                    self._fleet_command if name == "fleet_cmd" else self._command
                )
        if schedules is not None:
            for name, scope in _SCHEDULES.items():
                routes[topic_for(prefix, site_id, name)] = _schedule(schedules, scope)
        assert all(name_of(prefix, site_id, t) for t in routes)
        self._routes = routes
        self.subscriptions = [*command_topics(settings), *(_SCHEDULES if schedules else ())]

    def __call__(self, message: Inbound) -> None:
        handler = self._routes.get(message.topic)
        if handler is None:
            log.debug("ignoring a message on %s", message.topic)
            return
        handler(message)

    def _command(self, message: Inbound, *, fleet: bool = False) -> None:
        assert self._commands is not None  # routed only when there is a command service
        route = reply_route(self.settings, message.response_topic, message.correlation)
        self._commands.on_message(message.payload, route, fleet=fleet)

    def _fleet_command(self, message: Inbound) -> None:
        self._command(message, fleet=True)


def _schedule(handler: ScheduleHandler, scope: Scope) -> Callable[[Inbound], None]:
    return lambda message: handler(scope, message.payload)
