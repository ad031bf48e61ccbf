"""`edge-agent centre contacts add|list|show|remove|disable|enable|import`: the directory of
who is told of alerts (agent/centre/alerts/contacts.py), and who covers which sites.

Thin: options to a checked Contact, the Contact to the centre's database. A bad option or
file is refused with its fix and exit code 2, as argparse refuses a bad argument.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.centre import fleet
from agent.centre.alerts.contacts import (
    COLUMNS,
    ContactError,
    ContactStore,
    channels_from,
    dump,
    make_contact,
    parse_contacts,
    parse_quiet,
    unknown,
)
from agent.centre.alerts.model import Contact, Severity
from agent.centre.alerts.routing import in_place
from agent.centre.settings import CentreSettings, load_centre_settings
from agent.centre.store import Store
from agent.centre.store.base import existing, made
from agent.checks.model import ExitCode
from agent.i18n import LANGUAGES, error_text, t
from agent.messages import message

Command = Callable[[argparse.Namespace], int]


def _settings(args: argparse.Namespace) -> CentreSettings:
    return load_centre_settings(getattr(args, "config", None))


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _refusing(func: Command) -> Command:
    """Bad input is the caller's to fix: said with its fix, exit 2 (argparse's code)."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            return func(args)
        except ContactError as exc:
            sys.stderr.write(error_text(exc) + "\n")
            return int(ExitCode.CRITICAL)

    return run


def _store(args: argparse.Namespace) -> ContactStore:
    # The store `centre serve` made, never a new empty one: a wrong --config must say so,
    # not file contacts where no centre reads them.
    return ContactStore(existing(_settings(args).store_location))


def _existing(store: ContactStore, contact_id: str) -> Contact:
    contact = store.get(contact_id)
    if contact is None:
        raise unknown(contact_id)
    return contact


@_refusing
def cmd_add(args: argparse.Namespace) -> int:
    data: dict[str, Any] = {
        "id": args.id,
        "name": args.name,
        "level": args.level,
        "districts": args.district,
        "tiers": args.tier,
        "min_severity": args.min_severity,
        "channels": channels_from(args.email, args.webhook, args.telegram),
    }
    if args.lang:
        data["language"] = args.lang
    if args.quiet is not None:
        data["quiet"] = parse_quiet(args.quiet)
    contact = make_contact(data)
    store = _store(args)
    try:
        added, _ = store.put_many([contact])
    finally:
        store.close()
    if added:
        _out(t("contacts.cli.added", id=contact.id))
    else:
        _out(t("contacts.cli.updated", id=contact.id))
    return 0


@_refusing
def cmd_import(args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        data = path.read_bytes()
    except OSError:
        raise ContactError(
            message("contacts.error.unreadable", path=str(path)),
            message("contacts.hint.unreadable"),
        ) from None
    contacts = parse_contacts(data)  # every line checked before the database is opened
    store = _store(args)
    try:
        added, updated = store.put_many(contacts)
        total = len(store.list())
    finally:
        store.close()
    _out(t("contacts.cli.imported", added=added, updated=updated, total=total))
    return 0


def _all(args: argparse.Namespace) -> list[Contact]:
    settings = _settings(args)
    if not made(settings.store_location):
        return []
    store = ContactStore(settings.store_location)
    try:
        return store.list()
    finally:
        store.close()


def _yes_no(flag: bool) -> str:
    return t("contacts.cli.yes") if flag else t("contacts.cli.no")


def _quiet(contact: Contact) -> str:
    q = contact.quiet
    return "-" if q is None else f"{q.start:02d}-{q.end:02d}"


def _channels(contact: Contact) -> str:
    return ", ".join(f"{c.kind}:{c.address}" for c in contact.channels)


def _severity(contact: Contact) -> str:
    if contact.min_severity == Severity.CRITICAL:
        return t("contacts.severity.critical")
    return t("contacts.severity.warning")


def _level(contact: Contact) -> str:
    return {
        1: t("contacts.level.level1"),
        2: t("contacts.level.level2"),
        3: t("contacts.level.level3"),
    }[contact.level]


def _covers(contact: Contact, count: int) -> str:
    if contact.level == 1:
        return t("contacts.cli.covers.level1", count=count)
    if contact.level == 2:
        return t("contacts.cli.covers.level2", count=count)
    return t("contacts.cli.covers.level3", count=count)


def _head() -> list[str]:
    return [
        t("contacts.cli.col.id"),
        t("contacts.cli.col.name"),
        t("contacts.cli.col.level"),
        t("contacts.cli.col.districts"),
        t("contacts.cli.col.tiers"),
        t("contacts.cli.col.severity"),
        t("contacts.cli.col.channels"),
        t("contacts.cli.col.lang"),
        t("contacts.cli.col.quiet"),
        t("contacts.cli.col.enabled"),
    ]


@_refusing
def cmd_list(args: argparse.Namespace) -> int:
    contacts = _all(args)
    if args.json:
        _out(json.dumps([dump(c) for c in contacts], indent=2, ensure_ascii=False))
        return 0
    if not contacts:
        _out(t("contacts.cli.empty"))
        return 0
    head = _head()
    body = [
        [c.id, c.name, str(c.level), ", ".join(c.districts) or "*", ", ".join(c.tiers) or "*",
         _severity(c), _channels(c), c.language, _quiet(c), _yes_no(c.enabled)]
        for c in contacts
    ]  # fmt: skip
    _out(fleet.table([head, *body]))
    return 0


def _district(site: fleet.SiteRow) -> str:
    """The district a site's alerts carry: a district itself, a commune its parent."""
    if site.tier == "district":
        return site.site_id
    return site.parent or site.site_id


def _covered(settings: CentreSettings, contact: Contact) -> dict[str, list[str]]:
    """The sites on the roster or heard from that are in the contact's part: district → ids."""
    if not made(settings.store_location):
        return {}
    store = Store(settings.store_location)
    try:
        sites = store.sites(time.time(), settings.report_interval_s, settings.gap_grace_s)
    finally:
        store.close()
    out: dict[str, list[str]] = {}
    for site in sites:
        district = _district(site)
        if in_place(contact, district, site.tier):
            out.setdefault(district, []).append(site.site_id)
    return out


@_refusing
def cmd_show(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = ContactStore(existing(settings.store_location))
    try:
        contact = _existing(store, args.id)
    finally:
        store.close()
    covered = _covered(settings, contact)
    if args.json:
        _out(json.dumps(dump(contact) | {"sites": covered}, indent=2, ensure_ascii=False))
        return 0
    every = t("contacts.cli.all")
    values = [
        contact.id, contact.name, _level(contact), ", ".join(contact.districts) or every,
        ", ".join(contact.tiers) or every, _severity(contact), _channels(contact),
        contact.language, _quiet(contact), _yes_no(contact.enabled),
    ]  # fmt: skip
    _out(fleet.table([[k + ":", v] for k, v in zip(_head(), values, strict=True)]))
    _out(_covers(contact, sum(len(ids) for ids in covered.values())))
    for district, ids in sorted(covered.items()):
        _out(f"  {district}: {', '.join(sorted(ids))}")
    return 0


@_refusing
def cmd_remove(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        if not store.remove(args.id):
            raise unknown(args.id)
    finally:
        store.close()
    _out(t("contacts.cli.removed", id=args.id))
    return 0


def _set_enabled(args: argparse.Namespace, enabled: bool) -> int:
    store = _store(args)
    try:
        contact = _existing(store, args.id)
        store.put(contact.model_copy(update={"enabled": enabled}))
    finally:
        store.close()
    if enabled:
        _out(t("contacts.cli.enabled", id=args.id))
    else:
        _out(t("contacts.cli.disabled", id=args.id))
    return 0


@_refusing
def cmd_disable(args: argparse.Namespace) -> int:
    return _set_enabled(args, False)


@_refusing
def cmd_enable(args: argparse.Namespace) -> int:
    return _set_enabled(args, True)


def _id_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    func: Command,
    help_text: str,
    lang_help: str | None = None,
) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help_text)
    p.add_argument("id", metavar="ID", help=t("contacts.cli.id_help"))
    p.add_argument("--lang", choices=LANGUAGES, help=lang_help or t("cli.lang_help"))
    p.set_defaults(func=func)
    return p


def _add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # Here `--lang` is the contact's language (its messages); this command's own output
    # follows it too, as every command's does.
    add = _id_parser(sub, "add", cmd_add, t("contacts.cli.add_help"), t("contacts.cli.lang_help"))
    option = add.add_argument
    option(
        "--name",
        required=True,
        metavar=t("contacts.cli.metavar.name"),
        help=t("contacts.cli.name_help"),
    )
    option(
        "--level",
        default="1",
        metavar=t("contacts.cli.metavar.level"),
        help=t("contacts.cli.level_help"),
    )
    option(
        "--district",
        action="append",
        default=[],
        metavar=t("contacts.cli.metavar.district"),
        help=t("contacts.cli.district_help"),
    )
    option(
        "--tier",
        action="append",
        default=[],
        metavar=t("contacts.cli.metavar.tier"),
        help=t("contacts.cli.tier_help"),
    )
    option(
        "--min-severity",
        choices=[s.value for s in Severity],
        default=Severity.WARNING.value,
        help=t("contacts.cli.severity_help"),
    )
    option(
        "--email",
        action="append",
        default=[],
        metavar=t("contacts.cli.metavar.email"),
        help=t("contacts.cli.email_help"),
    )
    option(
        "--webhook",
        action="append",
        default=[],
        metavar=t("contacts.cli.metavar.webhook"),
        help=t("contacts.cli.webhook_help"),
    )
    option(
        "--telegram",
        action="append",
        default=[],
        metavar=t("contacts.cli.metavar.telegram"),
        help=t("contacts.cli.telegram_help"),
    )
    option("--quiet", metavar=t("contacts.cli.metavar.quiet"), help=t("contacts.cli.quiet_help"))


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("contacts", help=t("contacts.cli.help"))
    csub = p.add_subparsers(dest="contacts_action", required=True, metavar=t("cli.metavar.command"))
    _add_parser(csub)
    ls = csub.add_parser("list", help=t("contacts.cli.list_help"))
    ls.add_argument("--json", action="store_true", help=t("cli.json_help"))
    ls.add_argument("--lang", choices=LANGUAGES, help=t("cli.lang_help"))
    ls.set_defaults(func=cmd_list)
    show = _id_parser(csub, "show", cmd_show, t("contacts.cli.show_help"))
    show.add_argument("--json", action="store_true", help=t("cli.json_help"))
    _id_parser(csub, "remove", cmd_remove, t("contacts.cli.remove_help"))
    _id_parser(csub, "disable", cmd_disable, t("contacts.cli.disable_help"))
    _id_parser(csub, "enable", cmd_enable, t("contacts.cli.enable_help"))
    imp = csub.add_parser("import", help=t("contacts.cli.import_help", columns=", ".join(COLUMNS)))
    imp.add_argument("file", metavar=t("cli.metavar.file"), help=t("contacts.cli.file_help"))
    imp.add_argument("--lang", choices=LANGUAGES, help=t("cli.lang_help"))
    imp.set_defaults(func=cmd_import)
