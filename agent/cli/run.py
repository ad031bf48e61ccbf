"""`edge-agent run`: the daemon (systemd starts it)."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from agent.checks.model import ExitCode
from agent.config import load_settings
from agent.i18n import N_
from agent.system.lockfile import hold
from agent.system.logs import setup_logging
from agent.system.workers import kill_leftovers

LOCK_NAME = "agent.lock"


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    setup_logging("debug" if args.verbose else settings.log_level)
    state_dir = settings.paths.state_dir
    # Before anything that a running daemon owns (the broker session, the control socket,
    # the outbox, its workers) is touched: a second daemon would knock the first off.
    hold(
        state_dir / LOCK_NAME,
        N_("edge-agent is already running with this state directory (pid %(pid)s, %(path)s)"),
        N_(
            "`edge-agent status` asks it; stop it first (systemctl stop edge-agent), or give "
            "this one another paths.state_dir"
        ),
    )
    kill_leftovers(state_dir)
    # Imported here so `edge-agent check` never loads the transport.
    from agent.runtime.daemon import Agent  # noqa: PLC0415

    agent = Agent(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.duration is not None:
        timer = threading.Timer(args.duration, stop.set)
        timer.daemon = True
        timer.start()
    agent.run(stop)
    return int(ExitCode.OK)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run",
        help="run the agent: self-test on an interval and report to the centre over MQTT",
        description="The agent daemon. Stops cleanly (publishing `offline`) on SIGTERM/SIGINT.",
    )
    run.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    run.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds (demos, tests)"
    )
    run.set_defaults(func=_run)
