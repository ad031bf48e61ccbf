"""What the daemon plugs into the command service: its hooks, topics and stop, in one place,
so agent/runtime/daemon.py only calls `attach()` and passes `on_inbound` to its link."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Literal, Protocol

from pydantic import JsonValue

from agent.commands.actions import ActionContext, Runner, run_command
from agent.commands.service import CommandService, reply_route
from agent.config import COMPONENTS, Settings
from agent.contract.topics import name_of, topic_for
from agent.schedule.model import SchedulePayload
from agent.transport.mqtt import Inbound
from agent.transport.outbox import Outbox

log = logging.getLogger(__name__)

_EXIT_DRAIN_S = 5.0  # restart-agent: wait this long for the replies to leave before exiting


class CheckRunLike(Protocol):
    """What a command needs of a check run (agent.checks.model.CheckRun, which this layer
    does not import)."""

    def summary(self) -> dict[str, Any]: ...


class Host(Protocol):
    settings: Settings
    outbox: Outbox

    def check_now(
        self,
        trigger: Literal["command"],
        stop: threading.Event | None = None,
        only: Sequence[str] = (),
    ) -> CheckRunLike | None: ...

    def request_rebirth(self) -> None: ...

    def request_stop(self) -> None: ...

    def identify(self, seconds: float) -> JsonValue: ...

    def set_schedule(self, payload: SchedulePayload) -> JsonValue: ...


def command_topics(settings: Settings) -> list[str]:
    """Topic-table names the link subscribes to for commands."""
    if not settings.commands.enabled:
        return []
    return ["cmd", "fleet_cmd"] if settings.commands.fleet else ["cmd"]


def only_components(settings: Settings, only: Sequence[str]) -> Settings:
    """Settings with every component not in `only` switched off (a partial self-test)."""
    if not only:
        return settings
    update = {
        name: settings.component(name).model_copy(update={"enabled": False})
        for name in COMPONENTS
        if name not in only
    }
    return settings.model_copy(update=update)


def attach(host: Host, runner: Runner = run_command) -> CommandService | None:
    settings = host.settings
    if not settings.commands.enabled:
        return None

    def run_checks(only: Sequence[str]) -> JsonValue:
        from agent.commands.actions import ActionFailed  # noqa: PLC0415

        run = host.check_now("command", None, only)
        if run is None:
            raise ActionFailed("the self-test crashed or was stopped", "see the agent's log")
        return run.summary()

    def exit_soon() -> None:
        def wait_then_stop() -> None:
            end = time.monotonic() + _EXIT_DRAIN_S
            time.sleep(0.2)  # the `succeeded` reply is queued right after the action returns
            while host.outbox.stats().pending and time.monotonic() < end:
                time.sleep(0.1)
            log.warning("restart-agent: exiting so that systemd starts the agent again")
            host.request_stop()

        threading.Thread(target=wait_then_stop, name="restart-agent", daemon=True).start()

    context = ActionContext(
        settings=settings,
        run_checks=run_checks,
        rebirth=host.request_rebirth,
        exit_agent=exit_soon,
        runner=runner,
        identify=host.identify,
        set_schedule=host.set_schedule,
    )
    return CommandService(settings, host.outbox, context)


def inbound_handler(
    settings: Settings, service: CommandService | None
) -> Callable[[Inbound], None]:
    prefix, site_id = settings.broker.prefix, settings.site.site_id
    topics = {topic_for(prefix, site_id, name) for name in command_topics(settings)}
    fleet_topic = topic_for(prefix, site_id, "fleet_cmd")

    def handle(message: Inbound) -> None:
        if service is None or message.topic not in topics:
            log.debug("ignoring a message on %s", message.topic)
            return
        route = reply_route(settings, message.response_topic, message.correlation)
        service.on_message(message.payload, route, fleet=message.topic == fleet_topic)

    assert all(name_of(prefix, site_id, t) for t in topics)
    return handle
