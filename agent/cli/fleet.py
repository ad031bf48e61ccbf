"""`edge-agent centre serve|status|report|schedule`: the provincial centre's fleet side.

Thin: parse, load the centre's settings (centre.example.toml), call agent/centre/*.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.centre import fleet, link, report, schedule_pub
from agent.centre.settings import CentreSettings, load_centre_settings
from agent.checks.model import ExitCode
from agent.errors import ConfigError
from agent.i18n import N_, current_language
from agent.schedule.model import Session
from agent.system.lockfile import hold


def _settings(args: argparse.Namespace) -> CentreSettings:
    return load_centre_settings(getattr(args, "config", None))


def _config_arg(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: given after the action it wins; otherwise the global --config is kept.
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="centre settings (default: $EDGE_AGENT_CENTRE_CONFIG or /etc/edge-agent/centre.toml)",
    )


def _out(text: str) -> None:
    sys.stdout.write(text)


def _json(data: Any) -> None:
    _out(json.dumps(data, indent=2, default=str) + "\n")


# ---- serve -------------------------------------------------------------------------------


def _instance(value: str) -> str:
    # It names a lock file and suffixes the MQTT client id.
    if not re.fullmatch(r"[A-Za-z0-9_-]{0,64}", value):
        raise argparse.ArgumentTypeError(
            f"{value!r}: letters, digits, '-' and '_' only (at most 64)"
        )
    return value


def serve_lock_path(db_path: Path, instance: str) -> Path:
    """One `serve` per (database, instance); other instances share the database by design."""
    return db_path.with_name(f"{db_path.name}.serve{'-' + instance if instance else ''}.lock")


def cmd_serve(args: argparse.Namespace) -> int:
    from agent.centre.ingest import Ingest  # noqa: PLC0415 - paho only where it is needed
    from agent.system.logs import setup_logging  # noqa: PLC0415

    settings = _settings(args)
    setup_logging(args.log_level)
    # Two processes with one client id would take the broker session from each other.
    hold(
        serve_lock_path(settings.db_path, args.instance),
        N_("centre serve --instance '%(instance)s' is already running (pid %(pid)s, %(path)s)"),
        N_("stop it first, or start this one with another --instance to share the load"),
        instance=args.instance,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if args.seconds:
        timer = threading.Timer(args.seconds, stop.set)
        timer.daemon = True
        timer.start()
    ingest = Ingest(settings, args.instance).start()
    _out(
        f"centre: storing {settings.broker.prefix}/+/... from {settings.broker.host}:"
        f"{settings.broker.port} into {settings.db_path}\n"
    )
    dashboard = None
    try:
        if args.http:
            try:
                from agent.centre.web.server import Dashboard  # noqa: PLC0415 - centre extra
            except ImportError as exc:
                raise ConfigError(
                    f"--http: the dashboard needs {exc.name or 'its web stack'}",
                    "install the centre extra: pip install 'edge-agent[centre]'",
                ) from None
            dashboard = Dashboard(settings, args.http).start()
            _out(f"centre: dashboard on {dashboard.url}\n")
        sys.stdout.flush()
        ingest.wait(stop)
    finally:
        if dashboard is not None:
            dashboard.stop()
        ingest.stop()
    _out(f"centre: stopped; {ingest.stored} report(s) stored, {ingest.rejected} rejected\n")
    return 0


# ---- status ------------------------------------------------------------------------------


def _exit_code(view: fleet.FleetView) -> int:
    c = view.counts
    if c["fault"] or c["offline"] or c["silent"] or c["never_seen"]:
        return int(ExitCode.CRITICAL)
    if c["degraded"] or c["unknown"]:
        return int(ExitCode.WARNING)
    return int(ExitCode.OK)


def _store(settings: CentreSettings) -> Any:
    from agent.centre.store import Store  # noqa: PLC0415

    if not settings.db_path.exists():
        raise ConfigError(
            f"fleet database {settings.db_path}: not found",
            "start `edge-agent centre serve` first, or fix db_path in the centre settings",
        )
    return Store(settings.db_path)


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _store(settings)
    try:
        centre = link.read(store.db, time.time())
        # while the centre is blind, its sites as they were when it lost the broker
        now = centre.judged_at or time.time()
        sites = store.sites(now, settings.report_interval_s, settings.gap_grace_s)
        # The components' reasons in the operator's language; JSON (for scripts) in English.
        lang = "en" if args.json else current_language()
        view = fleet.fleet_view(sites, now, settings.silent_after, lang)
        events = store.events(limit=args.events) if args.events else []
    finally:
        store.close()
    if args.json:
        _json(
            {**view.to_json(), "centre": centre.to_json(), "events": [e.__dict__ for e in events]}
        )
    else:
        _out(link.describe(centre) + "\n")
        _out(fleet.render(view))
        if events:
            _out(f"last {len(events)} change(s):\n")
            for e in events:
                when = datetime.fromtimestamp(e.at).astimezone().strftime("%m-%d %H:%M:%S")
                _out(f"  {when} {e.site_id}: {e.old or '-'} -> {e.new}  {e.detail}\n")
    return _exit_code(view)


# ---- report ------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _store(settings)
    try:
        result = report.session_report(
            args.session, store.attendance(args.session), store.expected_of()
        )
    finally:
        store.close()
    if args.csv:
        Path(args.csv).write_text(report.to_csv(result))
    if args.json:
        _json(result.to_json())
    else:
        _out(report.render(result))
        if args.csv:
            _out(f"written: {args.csv}\n")
    return 0 if result.sites else int(ExitCode.WARNING)


# ---- schedule ----------------------------------------------------------------------------


def _aware(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} needs a UTC offset, e.g. +07:00")
    return value


def cmd_schedule_add(args: argparse.Namespace) -> int:
    settings = _settings(args)
    try:
        session = Session(
            session_id=args.session_id,
            title=args.title,
            start=args.start,
            end=args.end,
            expected_attendance=args.expected,
        )
    except ValueError as exc:
        raise ConfigError(
            f"session: {str(exc).splitlines()[-1].strip()}", "fix the times"
        ) from None
    now = schedule_pub.utc_now()
    current = schedule_pub.fetch(settings, args.site)
    topic = schedule_pub.publish(
        settings, args.site, schedule_pub.with_session(current, session, now)
    )
    _out(f"published {topic}: {args.session_id} added ({len(current.entries)} entries before)\n")
    return 0


def cmd_schedule_remove(args: argparse.Namespace) -> int:
    settings = _settings(args)
    current = schedule_pub.fetch(settings, args.site)
    changed, found = schedule_pub.without_session(current, args.session_id, schedule_pub.utc_now())
    if not found:
        _out(f"{args.session_id}: not in the schedule; nothing published\n")
        return int(ExitCode.WARNING)
    topic = schedule_pub.publish(settings, args.site, changed)
    _out(f"published {topic}: {args.session_id} removed\n")
    return 0


def cmd_schedule_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    current = schedule_pub.fetch(settings, args.site)
    if args.json:
        _json(current.model_dump(mode="json"))
        return 0
    topic = schedule_pub.schedule_topic(settings.broker.prefix, args.site)
    _out(f"{topic}: {len(current.entries)} session(s)\n")
    for e in current.entries:
        extra = f" expected {e.expected_attendance}" if e.expected_attendance is not None else ""
        flag = " CANCELLED" if e.cancelled else ""
        _out(
            f"  {e.session_id}  {e.start.isoformat()} -> {e.end.isoformat()}  "
            f"{e.title}{extra}{flag}\n"
        )
    return 0


# ---- dashboard accounts -------------------------------------------------------------------


def _accounts(args: argparse.Namespace) -> Any:
    from agent.centre.web.accounts import Accounts  # noqa: PLC0415 - the centre extra

    return Accounts(_settings(args).db_path)


def _read_password() -> str:
    """From a prompt (twice) on a terminal, else the first line of stdin: never argv, where
    every user of the host could read it."""
    import getpass  # noqa: PLC0415

    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise ConfigError("the two passwords differ", "type the same password twice")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_user_add(args: argparse.Namespace) -> int:
    from agent.centre.web.accounts import AccountError, Role  # noqa: PLC0415

    accounts = _accounts(args)
    try:
        accounts.add(args.name, _read_password(), Role(args.role), replace=args.replace)
    except AccountError as exc:
        raise ConfigError(str(exc), "see `edge-agent centre user add --help`") from None
    finally:
        accounts.close()
    _out(f"user {args.name}: {args.role}\n")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    try:
        users = accounts.users()
    finally:
        accounts.close()
    if args.json:
        _json([{"name": u.name, "role": u.role.value, "created": u.created} for u in users])
        return 0
    for u in users:
        when = datetime.fromtimestamp(u.created).astimezone().strftime("%Y-%m-%d %H:%M")
        _out(f"{u.name:<24} {u.role.value:<9} since {when}\n")
    if not users:
        _out("no accounts; add one with `edge-agent centre user add NAME --role operator`\n")
    return 0


def cmd_user_remove(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    try:
        found = accounts.remove(args.name)
    finally:
        accounts.close()
    _out(f"user {args.name}: {'removed' if found else 'not found'}\n")
    return 0 if found else int(ExitCode.WARNING)


# ---- parsers -----------------------------------------------------------------------------


def _add_user_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("user", help="dashboard accounts: add, list, remove")
    usub = p.add_subparsers(dest="user_action", required=True, metavar="ACTION")
    a = usub.add_parser("add", help="add an account (the password is read from stdin or a prompt)")
    _config_arg(a)
    a.add_argument("name")
    a.add_argument("--role", choices=["operator", "viewer"], required=True)
    a.add_argument("--replace", action="store_true", help="change an existing account")
    a.set_defaults(func=cmd_user_add)
    ls = usub.add_parser("list", help="the accounts and their roles")
    _config_arg(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_user_list)
    r = usub.add_parser("remove", help="remove an account (and end its sessions)")
    _config_arg(r)
    r.add_argument("name")
    r.set_defaults(func=cmd_user_remove)


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="subscribe to every site and keep the fleet database")
    _config_arg(p)
    p.add_argument(
        "--instance",
        default="",
        type=_instance,
        help="suffix of the MQTT client id, one per process when several share the load",
    )
    p.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="also serve the web dashboard there (docs/dashboard.md), e.g. 127.0.0.1:8080",
    )
    p.set_defaults(func=cmd_serve)

    _add_user_parsers(sub)

    p = sub.add_parser("status", help="the fleet at a glance: ready, degraded, fault, ...")
    _config_arg(p)
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--events",
        type=int,
        default=10,
        metavar="N",
        help="also show the last N condition changes (0: none)",
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help="attendance per site for one session")
    _config_arg(p)
    p.add_argument("session", metavar="SESSION")
    p.add_argument("--csv", metavar="FILE", help="also write the report as CSV")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("schedule", help="publish the retained schedule")
    ssub = p.add_subparsers(dest="schedule_action", required=True, metavar="ACTION")
    site_help = "one site's schedule (default: every site's)"
    a = ssub.add_parser("add", help="add or replace a session")
    _config_arg(a)
    a.add_argument("session_id")
    a.add_argument("--start", type=_aware, required=True, help="ISO-8601 with offset")
    a.add_argument("--end", type=_aware, required=True, help="ISO-8601 with offset")
    a.add_argument("--title", default="")
    a.add_argument("--expected", type=int, default=None, help="people summoned")
    a.add_argument("--site", help=site_help)
    a.set_defaults(func=cmd_schedule_add)
    r = ssub.add_parser("remove", help="remove a session")
    _config_arg(r)
    r.add_argument("session_id")
    r.add_argument("--site", help=site_help)
    r.set_defaults(func=cmd_schedule_remove)
    ls = ssub.add_parser("list", help="the schedule retained at the broker")
    _config_arg(ls)
    ls.add_argument("--site", help=site_help)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_schedule_list)
