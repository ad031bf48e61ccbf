"""`edge-agent centre sites import|list|remove`: the roster of expected sites.

Thin: read the file, parse it (agent/centre/roster.py), store it (agent/centre/store.py).
The roster is a setup step: `import` makes the fleet database when there is none yet.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from agent.centre import fleet
from agent.centre.roster import parse_roster
from agent.centre.settings import CentreSettings, load_centre_settings
from agent.centre.store import Store
from agent.centre.store.base import made
from agent.checks.model import ExitCode
from agent.errors import RosterError
from agent.i18n import current_language, t
from agent.messages import message


def _settings(args: argparse.Namespace) -> CentreSettings:
    return load_centre_settings(getattr(args, "config", None))


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError:
        raise RosterError(
            message("roster.error.unreadable", path=str(path)), message("roster.hint.unreadable")
        ) from None
    entries = parse_roster(data)  # every row checked before the database is opened
    store = Store(_settings(args).store_location)
    try:
        change = store.import_roster(entries, time.time(), replace=args.replace)
        total = len(store.roster())
    finally:
        store.close()
    _out(t("roster.cli.imported", added=change.added, updated=change.updated,
           removed=len(change.removed), total=total))  # fmt: skip
    return 0


def _rows(settings: CentreSettings) -> list[dict[str, Any]]:
    if not made(settings.store_location):
        return []
    store = Store(settings.store_location)
    try:
        now = time.time()
        sites = store.sites(now, settings.report_interval_s, settings.gap_grace_s)
    finally:
        store.close()
    return [
        {
            "id": s.site_id,
            "name": s.name,
            "tier": s.tier,
            "parent": s.parent,
            "summoned": s.summoned,
            "condition": fleet.condition(s, now, settings.silent_after).value,
            "since": s.since,
        }
        for s in sites
        if s.on_roster
    ]


def _table(rows: list[dict[str, Any]]) -> str:
    lang = current_language()
    head = [
        t("roster.cli.col.id"),
        t("roster.cli.col.name"),
        t("roster.cli.col.tier"),
        t("roster.cli.col.parent"),
        t("roster.cli.col.summoned"),
        t("roster.cli.col.condition"),
    ]
    body = [
        [
            r["id"],
            r["name"],
            fleet.say(fleet.TIER + r["tier"], lang),
            r["parent"] or "-",
            "-" if r["summoned"] is None else str(r["summoned"]),
            fleet.say(fleet.CONDITION + r["condition"], lang),
        ]
        for r in rows
    ]
    return fleet.table([head, *body])


def cmd_list(args: argparse.Namespace) -> int:
    rows = _rows(_settings(args))
    if args.json:
        _out(json.dumps(rows, indent=2, ensure_ascii=False))
    elif rows:
        _out(_table(rows))
    else:
        _out(t("roster.cli.empty"))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if not made(settings.store_location):
        _out(t("roster.cli.not_listed", ids=", ".join(args.ids)))
        return int(ExitCode.WARNING)
    store = Store(settings.store_location)
    try:
        removed, absent = store.remove_from_roster(args.ids)
    finally:
        store.close()
    if removed:
        _out(t("roster.cli.removed", ids=", ".join(removed)))
    if absent:
        _out(t("roster.cli.not_listed", ids=", ".join(absent)))
    return int(ExitCode.WARNING) if absent else 0


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sites", help=t("roster.cli.help"))
    ssub = p.add_subparsers(dest="sites_action", required=True, metavar=t("cli.metavar.command"))
    imp = ssub.add_parser("import", help=t("roster.cli.import_help"))
    imp.add_argument("file", metavar=t("cli.metavar.file"), help=t("roster.cli.file_help"))
    imp.add_argument("--replace", action="store_true", help=t("roster.cli.replace_help"))
    imp.set_defaults(func=cmd_import)
    ls = ssub.add_parser("list", help=t("roster.cli.list_help"))
    ls.add_argument("--json", action="store_true", help=t("cli.json_help"))
    ls.set_defaults(func=cmd_list)
    rm = ssub.add_parser("remove", help=t("roster.cli.remove_help"))
    rm.add_argument("ids", nargs="+", metavar="ID", help=t("roster.cli.ids_help"))
    rm.set_defaults(func=cmd_remove)
