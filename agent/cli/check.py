"""`edge-agent check` and `edge-agent config check`."""

from __future__ import annotations

import argparse
import sys

from agent.checks.model import CheckRun, ExitCode, exit_code
from agent.checks.report import render_json, render_table
from agent.components import COMPONENTS
from agent.config import Settings, config_path, load_settings
from agent.errors import AgentError
from agent.i18n import _, ngettext, select_language
from agent.runtime.control import ask, socket_path
from agent.selftest.runner import build_probes
from agent.selftest.worker import run_selftest_isolated
from agent.system.logs import setup_logging


def _ask_daemon(settings: Settings, components: list[str]) -> CheckRun | None:
    """The running daemon runs the check (it holds the devices); None when it does not run."""
    timeout = 30.0 + max((settings.component(c).timeout_s for c in COMPONENTS), default=0)
    request = {"op": "check", "components": components}
    reply = ask(socket_path(settings.paths.state_dir), request, timeout)
    if reply is None:
        return None
    if not reply.get("ok"):
        raise AgentError(f"the running agent could not check: {reply.get('error')}")
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
    summary = _(
        "%(path)s: OK - site %(site)s (%(tier)s), broker %(host)s:%(port)s, components: "
        "%(components)s"
    ) % {
        "path": path,
        "site": settings.site.site_id,
        "tier": _(settings.site.tier.value),
        "host": settings.broker.host,
        "port": settings.broker.port,
        "components": ", ".join(settings.enabled_components()) or _("none"),
    }
    sys.stdout.write(summary + "\n")
    # The daemon only logs a bad local schedule and runs without it; say so here, before.
    local = settings.schedule.local_file
    schedule = read_local_schedule(local, site_zone(settings.site.timezone))
    if schedule is None:
        sys.stdout.write(_("%(path)s: none (the centre's schedule only)") % {"path": local} + "\n")
    else:
        count = len(schedule.entries)
        line = ngettext(
            "%(path)s: OK - %(count)d session", "%(path)s: OK - %(count)d sessions", count
        )
        sys.stdout.write(line % {"path": local, "count": count} + "\n")
    return int(ExitCode.OK)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser(
        "check",
        help="self-test the site's devices now",
        description="Run the self-tests. Exit 0 all ok, 1 warning, 2 failure, 3 could not run.",
    )
    check.add_argument(
        "components", nargs="*", metavar=_("COMPONENT"), help=f"any of: {', '.join(COMPONENTS)}"
    )
    check.add_argument("--json", action="store_true", help="machine-readable output")
    check.add_argument("--lang", choices=("en", "vi"), help="default: from LANG")
    check.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")
    check.add_argument(
        "--local",
        action="store_true",
        help="run the probes here even if the agent daemon runs (it normally does the check)",
    )
    check.set_defaults(func=_check)

    config = sub.add_parser("config", help="settings file tools")
    config_sub = config.add_subparsers(dest="config_command", required=True, metavar=_("ACTION"))
    validate = config_sub.add_parser("check", help="validate the settings without running")
    validate.set_defaults(func=_config_check)
