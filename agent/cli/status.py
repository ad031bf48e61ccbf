"""`edge-agent status` (asks the running daemon) and `edge-agent logs` (its journal)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from agent.config import load_settings
from agent.errors import AgentError
from agent.i18n import LANGUAGES, select_language, t
from agent.messages import message
from agent.runtime.control import ask, socket_path
from agent.runtime.status import StatusSnapshot, exit_code, render_status

UNIT = "edge-agent.service"
# Exists only while systemd is PID 1 (sd_booted(3)); without it there is no journal to read.
SYSTEMD_RUNNING = Path("/run/systemd/system")


def _status(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    lang = select_language(args.lang)
    path = socket_path(settings.paths.state_dir)
    reply = ask(path, {"op": "status"})
    if reply is None:
        raise AgentError(message("status.not_running", path=str(path)), message("status.start_it"))
    if not reply.get("ok"):
        raise AgentError(message("status.no_answer", error=str(reply.get("error"))))
    snapshot = StatusSnapshot.model_validate(reply["result"])
    if args.json:
        text = snapshot.localised().model_dump_json(indent=2)
    else:
        text = render_status(snapshot, lang)
    sys.stdout.write(text + "\n")
    return int(exit_code(snapshot))


def _init_name() -> str:
    try:
        return Path("/proc/1/comm").read_text(encoding="utf-8").strip() or "?"
    except OSError:
        return "?"


def _logs(args: argparse.Namespace) -> int:
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        raise AgentError(message("cli.logs.no_journalctl"), message("cli.logs.where"))
    if not SYSTEMD_RUNNING.is_dir():
        # journalctl would print "No journal files were found" and exit 0: say it plainly.
        raise AgentError(
            message("cli.logs.no_systemd", init=_init_name()), message("cli.logs.where")
        )
    cmd = [journalctl, "--unit", UNIT, "--no-pager", "--lines", str(args.lines)]
    if args.follow:
        cmd.append("--follow")
    return subprocess.call(cmd)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser(
        "status", help=t("cli.status.help"), description=t("cli.status.description")
    )
    status.add_argument("--json", action="store_true", help=t("cli.json_help"))
    status.add_argument("--lang", choices=LANGUAGES, help=t("cli.lang_help"))
    status.set_defaults(func=_status)

    logs = sub.add_parser("logs", help=t("cli.logs.help"))
    logs.add_argument(
        "-n",
        "--lines",
        type=int,
        default=100,
        metavar=t("cli.metavar.lines"),
        help=t("cli.logs.lines_help"),
    )
    logs.add_argument("-f", "--follow", action="store_true", help=t("cli.logs.follow_help"))
    logs.add_argument("--lang", choices=LANGUAGES, help=t("cli.lang_help"))
    logs.set_defaults(func=_logs)
