"""`edge-agent check` and `edge-agent config check`."""

from __future__ import annotations

import argparse
import sys

from agent.checks.model import CheckRun, ExitCode, exit_code
from agent.checks.report import render_json, render_table
from agent.components import COMPONENTS
from agent.config import Settings, Tier, config_path, load_settings
from agent.errors import AgentError
from agent.i18n import select_language, t
from agent.messages import Message, message
from agent.runtime.control import ask, socket_path
from agent.selftest.runner import build_probes
from agent.selftest.worker import run_selftest_isolated
from agent.system.logs import setup_logging

_TIERS = {
    Tier.PROVINCE: "config.tier.province",
    Tier.DISTRICT: "config.tier.district",
    Tier.COMMUNE: "config.tier.commune",
}


def _said(value: object) -> Message | None:
    """A message the agent sent in its reply; None when there is none or it is unreadable
    (an older agent: its English `error` is shown instead)."""
    try:
        return None if value is None else Message.model_validate(value)
    except ValueError:
        return None


def _ask_daemon(settings: Settings, components: list[str]) -> CheckRun | None:
    """The running daemon runs the check (it holds the devices); None when it does not run."""
    timeout = 30.0 + max((settings.component(c).timeout_s for c in COMPONENTS), default=0)
    request = {"op": "check", "components": components}
    reply = ask(socket_path(settings.paths.state_dir), request, timeout)
    if reply is None:
        return None
    if not reply.get("ok"):
        # The agent's own message, in the reader's language, where it sent one.
        said, hint = _said(reply.get("error_msg")), _said(reply.get("hint_msg"))
        raise AgentError(
            message("check.daemon_failed", error=said or str(reply.get("error"))), hint or ""
        )
    return CheckRun.model_validate(reply["result"])


def _check(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    setup_logging("warning" if not args.verbose else "debug")
    build_probes(settings, args.components)  # names an unknown component before asking
    test = None if args.local else _ask_daemon(settings, args.components)
    if test is None:
        # In a child, as the daemon does: a driver stuck in the kernel (or PortAudio flooding
        # stderr when its server dies) is killed at the deadline instead of hanging the CLI.
        test = run_selftest_isolated(settings, args.components)
    if args.json:
        text = render_json(test)
    else:
        text = render_table(test.results, test.verdict, select_language(args.lang))
    sys.stdout.write(text + "\n")
    return int(exit_code(test.results))


def _config_check(args: argparse.Namespace) -> int:
    from agent.schedule.model import site_zone  # noqa: PLC0415
    from agent.schedule.store import read_local_schedule  # noqa: PLC0415

    settings = load_settings(args.config)
    path = config_path(args.config)
    summary = t(
        "config.cli.ok",
        path=str(path),
        site=settings.site.site_id,
        tier=Message(id=_TIERS[settings.site.tier]),
        host=settings.broker.host,
        port=settings.broker.port,
        components=", ".join(settings.enabled_components()) or t("config.cli.no_components"),
    )
    sys.stdout.write(summary + "\n")
    # The daemon only logs a bad local schedule and runs without it; say so here, before.
    local = settings.schedule.local_file
    schedule = read_local_schedule(local, site_zone(settings.site.timezone))
    if schedule is None:
        sys.stdout.write(t("config.cli.schedule_none", path=str(local)) + "\n")
    else:
        count = len(schedule.entries)
        sys.stdout.write(t("config.cli.schedule_ok", path=str(local), count=count) + "\n")
    return int(ExitCode.OK)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser("check", help=t("check.help"), description=t("check.description"))
    check.add_argument(
        "components",
        nargs="*",
        metavar=t("check.metavar_component"),
        help=t("check.components_help", components=", ".join(COMPONENTS)),
    )
    check.add_argument("--json", action="store_true", help=t("check.json_help"))
    check.add_argument("--lang", choices=("en", "vi"), help=t("check.lang_help"))
    check.add_argument("-v", "--verbose", action="store_true", help=t("check.verbose_help"))
    check.add_argument("--local", action="store_true", help=t("check.local_help"))
    check.set_defaults(func=_check)

    config = sub.add_parser("config", help=t("config.cli.help"))
    config_sub = config.add_subparsers(
        dest="config_command", required=True, metavar=t("config.cli.metavar_action")
    )
    validate = config_sub.add_parser("check", help=t("config.cli.check_help"))
    validate.set_defaults(func=_config_check)
