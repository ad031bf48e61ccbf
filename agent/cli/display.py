"""`edge-agent centre display issue|list|revoke`: wall screens, read-only pages that stay
logged in until revoked (agent/centre/web/accounts.py keeps them, hashed)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import datetime
from typing import Any

from agent.checks.model import ExitCode
from agent.cli.fleet import _config_arg, _settings
from agent.errors import ConfigError
from agent.i18n import t
from agent.messages import message

DEFAULT_URL = "http://127.0.0.1:8080/"


def _accounts(args: argparse.Namespace) -> Any:
    from agent.centre.web.accounts import Accounts  # noqa: PLC0415 - the centre extra

    return Accounts(_settings(args).store_location)


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M")


def wall_url(base: str, invite: str) -> str:
    return f"{base.rstrip('/')}/wall#token={invite}"


def cmd_issue(args: argparse.Namespace) -> int:
    from agent.centre.web.accounts import NAME_PATTERN, DisplayExists  # noqa: PLC0415

    if not re.match(NAME_PATTERN, args.name):
        raise ConfigError(
            message("display.wall.bad_name", name=args.name), message("display.wall.bad_name_hint")
        )
    accounts = _accounts(args)
    try:
        invite = accounts.issue_display(args.name, replace=args.replace)
    except DisplayExists:
        raise ConfigError(
            message("display.wall.exists", name=args.name), message("display.wall.exists_hint")
        ) from None
    finally:
        accounts.close()
    sys.stdout.write(t("display.wall.issued", name=args.name) + "\n")
    sys.stdout.write(wall_url(args.url, invite) + "\n")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    try:
        shown = accounts.displays()
    finally:
        accounts.close()
    if args.json:
        rows = [d.__dict__ for d in shown]
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    for d in shown:
        if d.invited:
            state = t("display.wall.state_waiting")
        elif d.opened is not None:
            state = t("display.wall.state_open", time=_when(d.opened))
        else:
            state = t("display.wall.state_closed")
        created = _when(d.created)
        sys.stdout.write(t("display.wall.row", name=d.name, created=created, state=state) + "\n")
    if not shown:
        sys.stdout.write(t("display.wall.none") + "\n")
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    try:
        found = accounts.revoke_display(args.name)
    finally:
        accounts.close()
    if found:
        sys.stdout.write(t("display.wall.revoked", name=args.name) + "\n")
    else:
        sys.stdout.write(t("display.wall.not_found", name=args.name) + "\n")
    return 0 if found else int(ExitCode.WARNING)


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("display", help=t("display.wall.help"))
    dsub = p.add_subparsers(dest="display_action", required=True, metavar=t("cli.metavar.action"))
    a = dsub.add_parser("issue", help=t("display.wall.issue_help"))
    _config_arg(a)
    a.add_argument("name", metavar=t("cli.metavar.name"))
    a.add_argument("--url", default=DEFAULT_URL, help=t("display.wall.url_help", url=DEFAULT_URL))
    a.add_argument("--replace", action="store_true", help=t("display.wall.replace_help"))
    a.set_defaults(func=cmd_issue)
    ls = dsub.add_parser("list", help=t("display.wall.list_help"))
    _config_arg(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_list)
    r = dsub.add_parser("revoke", help=t("display.wall.revoke_help"))
    _config_arg(r)
    r.add_argument("name", metavar=t("cli.metavar.name"))
    r.set_defaults(func=cmd_revoke)
