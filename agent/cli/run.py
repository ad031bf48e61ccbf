"""`edge-agent run`: the daemon (systemd starts it)."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from agent.checks.model import ExitCode
from agent.config import load_settings
from agent.i18n import t
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
        "run.already_running",
        "run.already_running_hint",
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
    run = sub.add_parser("run", help=t("run.help"), description=t("run.description"))
    run.add_argument("-v", "--verbose", action="store_true", help=t("run.verbose_help"))
    run.add_argument(
        "--duration", type=float, metavar=t("cli.metavar.seconds"), help=t("run.duration_help")
    )
    run.set_defaults(func=_run)
