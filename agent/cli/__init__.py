"""Command line: parse, load settings, call the app. No logic lives here."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Callable, Iterator, Sequence

from agent import __version__
from agent.checks.model import ExitCode
from agent.errors import AgentError
from agent.i18n import LANGUAGES, error_text, select_language, set_language, t

# Each module adds its own sub-commands: add_parsers(subparsers) sets `func` on each parser;
# func(args) returns the exit code.
_COMMAND_MODULES = (
    "agent.cli.check",
    "agent.cli.devices",
    "agent.cli.profiles",
    "agent.cli.sim",
    "agent.cli.run",
    "agent.cli.led",
    "agent.cli.centre",
    "agent.cli.status",
    "agent.cli.attendance",
)
# What a shell reports for a process killed by SIGPIPE (128 + 13): `cmd | head` stopped it.
_EXIT_BROKEN_PIPE = 141


def _leaves(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parsers that run a command (no sub-commands of their own)."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):  # aliases share a parser
            yield from _leaves(child)


def build_parser() -> argparse.ArgumentParser:
    # Help texts and the usage line's placeholders (which argument errors print too) are in
    # the reader's language: the language is chosen before the parser is built.
    parser = argparse.ArgumentParser(prog="edge-agent", description=t("cli.description"))
    parser.add_argument(
        "--version",
        action="version",
        version=f"edge-agent {__version__}",
        help=t("cli.version_help"),  # argparse 3.11 does not ask gettext for this one
    )
    parser.add_argument("--config", metavar=t("cli.metavar.file"), help=t("cli.config_help"))
    sub = parser.add_subparsers(dest="command", required=True, metavar=t("cli.metavar.command"))
    for name in _COMMAND_MODULES:
        importlib.import_module(name).add_parsers(sub)
    # `--config` after the command too (`config check --config F`): people type it there.
    # SUPPRESS keeps the global value when it is not given after the command.
    for leaf in _leaves(parser):
        if "--config" not in leaf._option_string_actions:
            leaf.add_argument(
                "--config",
                metavar=t("cli.metavar.file"),
                default=argparse.SUPPRESS,
                help=t("cli.config_help"),
            )
    return parser


def _lang_in(argv: Sequence[str]) -> str | None:
    """`--lang vi` before argparse has read it: its own errors are then in that language."""
    for i, arg in enumerate(argv):
        value = arg.partition("=")[2] if arg.startswith("--lang=") else None
        if arg == "--lang" and i + 1 < len(argv):
            value = argv[i + 1]
        if value in LANGUAGES:
            return value
    return None


def _run(argv: Sequence[str] | None) -> int:
    set_language(select_language(_lang_in(sys.argv[1:] if argv is None else argv)))
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except AgentError as exc:
        print(error_text(exc), file=sys.stderr)  # noqa: T201 - CLI output
        return int(ExitCode.UNKNOWN)
    except KeyboardInterrupt:
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _run(argv)
        sys.stdout.flush()  # here, so a closed pipe is seen now and not at interpreter exit
    except BrokenPipeError:
        # The reader left (`edge-agent centre status | head`): stop quietly, as a Unix filter
        # does. stdout goes to /dev/null so the interpreter's last flush cannot fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return _EXIT_BROKEN_PIPE
    return code
