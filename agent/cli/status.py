"""`edge-agent status` (asks the running daemon) and `edge-agent logs` (its journal)."""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from agent.config import load_settings
from agent.errors import AgentError
from agent.i18n import N_, _, select_language, translate
from agent.runtime.control import ask, socket_path
from agent.runtime.status import StatusSnapshot, exit_code, render_status

UNIT = "edge-agent.service"
# Exists only while systemd is PID 1 (sd_booted(3)); without it there is no journal to read.
SYSTEMD_RUNNING = Path("/run/systemd/system")

_NO_JOURNALCTL = N_("no systemd journal here: journalctl is not installed")
_NO_SYSTEMD = N_("no systemd journal here: systemd is not running (PID 1 is %(init)s)")
_WHERE_LOGS = N_(
    "the agent writes its log to stderr: under systemd that goes to the journal; started "
    "another way, its log is wherever that stderr was redirected (e.g. `edge-agent run "
    "2>>/var/log/edge-agent.log`)"
)


_NOT_RUNNING = N_("edge-agent is not running (nobody answers on %(path)s)")
_START_IT = N_(
    "start it with `systemctl start edge-agent`; `edge-agent check` tests the devices without it"
)
_NO_ANSWER = N_("the agent could not answer: %(error)s")


def _status(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    lang = select_language(args.lang)
    path = socket_path(settings.paths.state_dir)
    reply = ask(path, {"op": "status"})
    if reply is None:
        raise AgentError(translate(_NOT_RUNNING, lang) % {"path": path}, translate(_START_IT, lang))
    if not reply.get("ok"):
        raise AgentError(translate(_NO_ANSWER, lang) % {"error": reply.get("error")})
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
    lang = select_language(args.lang)
    journalctl = shutil.which("journalctl")
    if journalctl is None:
        raise AgentError(translate(_NO_JOURNALCTL, lang), translate(_WHERE_LOGS, lang))
    if not SYSTEMD_RUNNING.is_dir():
        # journalctl would print "No journal files were found" and exit 0: say it plainly.
        raise AgentError(
            translate(_NO_SYSTEMD, lang) % {"init": _init_name()}, translate(_WHERE_LOGS, lang)
        )
    cmd = [journalctl, "--unit", UNIT, "--no-pager", "--lines", str(args.lines)]
    if args.follow:
        cmd.append("--follow")
    return subprocess.call(cmd)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser(
        "status",
        help="the running agent's view: verdict, components, broker link, outbox, next session",
        description="Exit 0 ready, 1 degraded or ready but not connected to the broker (the "
        "centre cannot see the site), 2 fault, 3 not checked or agent not running.",
    )
    status.add_argument("--json", action="store_true")
    status.add_argument("--lang", choices=("en", "vi"), help="default: from LANG")
    status.set_defaults(func=_status)

    logs = sub.add_parser("logs", help="recent log lines of the agent's systemd unit")
    logs.add_argument("-n", "--lines", type=int, default=100, metavar=_("LINES"))
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--lang", choices=("en", "vi"), help="default: from LANG")
    logs.set_defaults(func=_logs)
