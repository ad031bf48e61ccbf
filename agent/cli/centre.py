"""`edge-agent centre ...`: the provincial centre's side (fleet view, commands, schedule)."""

from __future__ import annotations

import argparse
import importlib

from agent.i18n import t

# Each module adds its actions under `centre`: add_centre_parsers(centre_subparsers).
_CENTRE_MODULES = (
    "agent.cli.fleet",
    "agent.cli.send",
    "agent.cli.display",
    "agent.cli.sites",
    "agent.cli.notify",
    "agent.cli.contacts",
    "agent.cli.alerts",
    "agent.cli.brokers",
    "agent.cli.store",
)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    centre = sub.add_parser("centre", help=t("centre.help"))
    centre_sub = centre.add_subparsers(
        dest="centre_command", required=True, metavar=t("cli.metavar.action")
    )
    for name in _CENTRE_MODULES:
        importlib.import_module(name).add_centre_parsers(centre_sub)
