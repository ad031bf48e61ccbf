"""`edge-agent centre store migrate --from FILE --to URL`: copy an SQLite store into an empty
PostgreSQL database (docs/store.md), before pointing the centre's db_url at it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from agent.centre.store import Store
from agent.centre.store.base import open_database
from agent.centre.store.copy import copy_tables
from agent.errors import ConfigError
from agent.i18n import t
from agent.messages import message


class _Closes(Protocol):
    def close(self) -> None: ...


def _parts() -> list[Callable[[Path | str], _Closes]]:
    """Every part that keeps tables in the store: opening one brings its tables up to date.
    Imported here, not at the top: the accounts bring the web stack (argon2)."""
    from agent.centre.alerts.contacts import ContactStore  # noqa: PLC0415
    from agent.centre.alerts.engine import engine_tables  # noqa: PLC0415
    from agent.centre.alerts.queue import NotificationQueue  # noqa: PLC0415
    from agent.centre.alerts.store import AlertStore  # noqa: PLC0415
    from agent.centre.web.accounts import Accounts  # noqa: PLC0415

    return [Store, AlertStore, ContactStore, NotificationQueue, engine_tables, Accounts]


def cmd_migrate(args: argparse.Namespace) -> int:
    source = Path(args.source)
    if not source.is_file():
        # Opening it would make an empty one, and copy nothing.
        raise ConfigError(
            message("store.error.no_source", path=str(source)), message("store.hint.no_source")
        )
    for part in _parts():  # both at the newest schema, so their columns match
        part(source).close()
        part(args.to).close()
    src, dst = open_database(source), open_database(args.to)
    try:
        have = dst.tables()
        tables = sorted((src.tables() & have) - {"schema_version"})
        copied = copy_tables(src, dst, tables)
        left = sorted(src.tables() - have)
    finally:
        src.close()
        dst.close()
    for table, rows in copied.items():
        sys.stdout.write(t("store.cli.copied_table", table=table, rows=rows) + "\n")
    sys.stdout.write(t("store.cli.copied", rows=sum(copied.values()), tables=len(copied)) + "\n")
    if left:
        sys.stdout.write(t("store.cli.left_out", tables=", ".join(left)) + "\n")
    return 0


def _url(value: str) -> str:
    if not value.startswith("postgresql://"):
        raise argparse.ArgumentTypeError(t("store.cli.not_a_url", value=value))
    return value


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("store", help=t("store.cli.help"))
    ssub = p.add_subparsers(dest="store_action", required=True, metavar=t("cli.metavar.command"))
    mig = ssub.add_parser("migrate", help=t("store.cli.migrate_help"))
    mig.add_argument("--from", dest="source", required=True, metavar=t("store.cli.metavar_file"),
                     help=t("store.cli.from_help"))  # fmt: skip
    mig.add_argument("--to", required=True, type=_url, metavar="URL", help=t("store.cli.to_help"))
    mig.set_defaults(func=cmd_migrate)
