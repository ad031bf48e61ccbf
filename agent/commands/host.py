"""What the daemon plugs into the command service: its hooks and stop, in one place, so
agent/runtime/daemon.py only calls `attach()` (agent/runtime/inbound.py routes the messages)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Literal, Protocol

from pydantic import JsonValue

from agent.checks.model import CheckRun
from agent.commands.actions import ActionContext, Runner, run_command
from agent.commands.service import CommandService
from agent.config import Settings
from agent.contract.payloads import utc_now
from agent.messages import message
from agent.schedule.model import SchedulePayload
from agent.schedule.presession import PreSession
from agent.transport.outbox import Outbox

log = logging.getLogger(__name__)

_EXIT_DRAIN_S = 5.0  # restart-agent: wait this long for the replies to leave before exiting


class Host(Protocol):
    settings: Settings
    outbox: Outbox
    presession: PreSession

    def check_now(
        self,
        trigger: Literal["command"],
        stop: threading.Event | None = None,
        only: Sequence[str] = (),
    ) -> CheckRun | None: ...

    def request_rebirth(self) -> None: ...

    def request_stop(self) -> None: ...

    def identify(self, seconds: float) -> JsonValue: ...

    def set_schedule(self, payload: SchedulePayload) -> JsonValue: ...


def attach(host: Host, runner: Runner = run_command) -> CommandService | None:
    settings = host.settings
    if not settings.commands.enabled:
        return None

    def run_checks(only: Sequence[str]) -> JsonValue:
        from agent.commands.actions import ActionFailed  # noqa: PLC0415

        run = host.check_now("command", None, only)
        if run is None:
            raise ActionFailed(
                message("command.failed.selftest"), message("command.failed.see_log")
            )
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
        # Read from a command thread: set_sessions() swaps the list whole, never edits it.
        current_sessions=lambda: host.presession.current_sessions(utc_now()),
    )
    return CommandService(settings, host.outbox, context)
