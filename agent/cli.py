"""Command line: parse, load settings, call the app. No logic lives here."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from agent import __version__
from agent.checks.model import ExitCode
from agent.errors import AgentError

# Each module adds its own sub-commands: add_parsers(subparsers) sets `func` on each parser;
# func(args) returns the exit code.
_COMMAND_MODULES = (
    "agent.cli_check",
    "agent.cli_devices",
    "agent.cli_profiles",
    "agent.cli_sim",
    "agent.cli_run",
    "agent.cli_led",
    "agent.cli_centre",
    "agent.cli_status",
    "agent.cli_attendance",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edge-agent", description="Keeps a video-conference site ready."
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="settings file (default: $EDGE_AGENT_CONFIG or /etc/edge-agent/agent.toml)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except AgentError as exc:
        print(f"edge-agent: {exc}", file=sys.stderr)  # noqa: T201 - CLI output
        return int(ExitCode.UNKNOWN)
    except KeyboardInterrupt:
        return 130
