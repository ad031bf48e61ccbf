"""`edge-agent centre serve|status|report|schedule`: the provincial centre's fleet side.

Thin: parse, load the centre's settings (centre.example.toml), call agent/centre/*.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.centre import fleet, leader, link, schedule_pub
from agent.centre.leader import Leadership
from agent.centre.orphans import Adopter
from agent.centre.settings import CentreSettings, load_centre_settings
from agent.centre.store.base import existing, is_url, shown
from agent.checks.model import ExitCode
from agent.errors import AlreadyRunning, ConfigError
from agent.i18n import Lang, current_language, t
from agent.messages import catalogue, message
from agent.schedule.model import Session
from agent.system.lockfile import hold
from agent.validation import pydantic_problem


def _settings(args: argparse.Namespace) -> CentreSettings:
    return load_centre_settings(getattr(args, "config", None))


def _config_arg(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: given after the action it wins; otherwise the global --config is kept.
    parser.add_argument(
        "--config",
        metavar=t("cli.metavar.file"),
        default=argparse.SUPPRESS,
        help=t("centre.config_help"),
    )


def _out(text: str) -> None:
    sys.stdout.write(text)


def _line(text: str) -> None:
    _out(text + "\n")


def _json(data: Any) -> None:
    _out(json.dumps(data, indent=2, default=str) + "\n")


# ---- serve -------------------------------------------------------------------------------


def _instance(value: str) -> str:
    # It names a lock file and suffixes the MQTT client id.
    if not re.fullmatch(r"[A-Za-z0-9_-]{0,64}", value):
        raise argparse.ArgumentTypeError(t("centre.serve.bad_instance", value=repr(value)))
    return value


def serve_lock_path(db_path: Path, instance: str) -> Path:
    """One `serve` per (database, instance); other instances share the database by design."""
    return db_path.with_name(f"{db_path.name}.serve{'-' + instance if instance else ''}.lock")


def _hold_instance(settings: CentreSettings, instance: str) -> object:
    """One `serve` per (store, instance): a lock file beside the SQLite file; on PostgreSQL,
    whose processes may run on several hosts, a lock in the database itself (an InstanceLock,
    taken again after a lost connection while serving: `keep()`)."""
    where = settings.store_location
    if not is_url(where):
        return hold(
            serve_lock_path(Path(where), instance),
            "centre.serve.already_running",
            "centre.serve.already_running_hint",
            instance=instance,
        )
    from agent.centre.instance_lock import InstanceLock  # noqa: PLC0415 - centre extra

    held = InstanceLock(str(where), instance)
    if holder := held.take():
        raise AlreadyRunning(
            message("centre.serve.already_running", instance=instance, pid=holder,
                    path=shown(where)),
            message("centre.serve.already_running_hint"),
        )  # fmt: skip
    return held


def _try_hold(settings: CentreSettings) -> Callable[[str], Callable[[], None] | None]:
    """Take another instance's serve lock if it runs nowhere: its release, or None."""

    def attempt(instance: str) -> Callable[[], None] | None:
        try:
            held = _hold_instance(settings, instance)
        except AlreadyRunning:
            return None
        if isinstance(held, int):
            return functools.partial(os.close, held)
        return held.release  # type: ignore[attr-defined, no-any-return]

    return attempt


def _taken_over(settings: CentreSettings, instance: str, held: object) -> None:
    """Serve stopped because another process took its PostgreSQL lock: say so, exit 3."""
    if holder := getattr(held, "taken_by", ""):
        raise AlreadyRunning(
            message("centre.serve.taken_over", instance=instance, pid=holder,
                    path=shown(settings.store_location)),
            message("centre.serve.already_running_hint"),
        )  # fmt: skip


# The centre keeps every site's rows for its whole life and makes a few objects per report
# that live a moment. With Python's default first threshold (700 allocations) many of those
# are still alive at a young collection, get promoted, and make the oldest generation grow
# fast enough that it is collected every few seconds: a walk over the whole heap with every
# thread stopped. bench/scale.py at 20,000 sites on PostgreSQL, 60 s: the leading centre ran
# 20 full collections (2.9 s in all, the longest 270 ms), p99 publish -> stored 1,015 ms;
# with 50,000: 1 (122 ms), p99 841 ms, its CPU 43 -> 39 %, RSS 166 -> 175 MB.
GC_THRESHOLDS = (50_000, 20, 10)


def cmd_serve(args: argparse.Namespace) -> int:
    from agent.centre.ingest import Ingest  # noqa: PLC0415 - paho only where it is needed
    from agent.system.logs import setup_logging  # noqa: PLC0415

    settings = _settings(args)
    setup_logging(args.log_level)
    gc.set_threshold(*GC_THRESHOLDS)
    # Two processes with one client id would take the broker session from each other.
    instance_lock: Any = _hold_instance(settings, args.instance)  # held while serving
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if hasattr(instance_lock, "keep"):  # PostgreSQL's: kept across a lost connection
        instance_lock.keep(stop.set)
    if args.seconds:
        timer = threading.Timer(args.seconds, stop.set)
        timer.daemon = True
        timer.start()
    # One process of those sharing the store does the once-only work (centre/leader.py).
    leadership = Leadership(settings.store_location, args.instance).start()
    leads = leadership.is_leader
    ingest = Ingest(settings, args.instance, leads).start()
    # The leader also stores what the broker keeps for a dead instance (centre/orphans.py).
    adopter = Adopter(
        settings, args.instance, leads, _try_hold(settings),
        steady=lambda: ingest.database_steady(link.STALE_S),
    ).start()  # fmt: skip
    delivery = engine = None
    if settings.alerts.enabled:
        from agent.centre.alerts.delivery import Delivery  # noqa: PLC0415
        from agent.centre.alerts.engine import AlertEngine  # noqa: PLC0415

        delivery = Delivery(settings.alerts, settings.store_location, leads=leads).start()
        engine = AlertEngine(settings, on_queued=delivery.wake, leadership=leadership).start()
    _line(
        t(
            "centre.serve.storing",
            topics=f"{settings.broker.prefix}/+/...",
            broker=f"{settings.broker.host}:{settings.broker.port}",
            path=shown(settings.store_location),
        )
    )
    dashboard = None
    try:
        if args.http:
            try:
                from agent.centre.web.server import Dashboard  # noqa: PLC0415 - centre extra
            except ImportError as exc:
                raise ConfigError(
                    message("centre.serve.no_web", module=exc.name or "fastapi"),
                    message("centre.serve.no_web_hint"),
                ) from None
            dashboard = Dashboard(settings, args.http, leads=leads).start()
            _line(t("centre.serve.dashboard", url=dashboard.url))
        sys.stdout.flush()
        ingest.wait(stop)
    finally:
        if dashboard is not None:
            dashboard.stop()
        if engine is not None:
            engine.stop()
        if delivery is not None:
            delivery.stop()
        adopter.stop()
        # Taken over: the link row and the broker session are the other process's now.
        ingest.stop(forget=not getattr(instance_lock, "taken_by", ""), dead=set(adopter.away))
        leadership.stop()
    _line(t("centre.serve.stopped", stored=ingest.stored, rejected=ingest.rejected))
    _taken_over(settings, args.instance, instance_lock)
    return 0


# ---- status ------------------------------------------------------------------------------


def _exit_code(view: fleet.FleetView) -> int:
    c = view.counts
    if c["fault"] or c["offline"] or c["silent"] or c["never_seen"] or c["unreachable"]:
        return int(ExitCode.CRITICAL)
    if c["degraded"] or c["unknown"]:
        return int(ExitCode.WARNING)
    return int(ExitCode.OK)


def _store(settings: CentreSettings) -> Any:
    from agent.centre.store import Store  # noqa: PLC0415

    return Store(existing(settings.store_location))


def _condition(code: str, lang: Lang) -> str:
    """A recorded condition in `lang`; one this release does not know, as it was stored."""
    msg_id = fleet.CONDITION + code
    return fleet.say(msg_id, lang) if msg_id in catalogue() else code


def _leader_line(who: leader.Leader | None) -> str:
    if who is None:
        return t("centre.status.no_leader")
    when = datetime.fromtimestamp(who.since).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    return t("centre.status.leader", instance=who.instance or "-", host=who.host, pid=who.pid,
             time=when)  # fmt: skip


def cmd_status(args: argparse.Namespace) -> int:
    settings = _settings(args)
    store = _store(settings)
    try:
        centre = link.read(store.db, time.time())
        who = leader.read(store.db, time.time())
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
            {**view.to_json(), "centre": centre.to_json(),
             "leader": who.to_json() if who else None,
             "events": [e.__dict__ for e in events]}
        )  # fmt: skip
    else:
        lang = current_language()
        _out(link.describe(centre) + "\n")
        _out(_leader_line(who) + "\n")
        _out(fleet.render(view, lang))
        if events:
            _line(t("centre.status.changes", count=len(events)))
            for e in events:
                when = datetime.fromtimestamp(e.at).astimezone().strftime("%m-%d %H:%M:%S")
                old = _condition(e.old, lang) if e.old else "-"
                # The detail was stored in English when the change was seen.
                new = _condition(e.new, lang)
                _out(f"  {when} {e.site_id}: {old} -> {new}  {e.detail}\n")
    return _exit_code(view)


# ---- report ------------------------------------------------------------------------------


def cmd_report(args: argparse.Namespace) -> int:
    from agent.centre.report import document, export, read, text  # noqa: PLC0415

    settings = _settings(args)
    _store(settings).close()  # a wrong --config must not make a new database
    result = read.read_report(settings.store_location, args.session, time.time())
    lang = current_language()
    written: list[str] = []
    if args.csv:
        Path(args.csv).write_bytes(export.to_csv(result, lang))
        written.append(args.csv)
    if args.html or args.pdf:
        page = document.to_html(result, "vi")  # the printable document is for the province
        if args.html:
            Path(args.html).write_text(page, encoding="utf-8")
            written.append(args.html)
        if args.pdf:
            Path(args.pdf).write_bytes(document.to_pdf(page))
            written.append(args.pdf)
    if args.json:
        _json(result.to_json())
    else:
        _out(text.render(result, lang))
        for path in written:
            _line(t("centre.report.written", path=path))
    return 0 if result.known else int(ExitCode.WARNING)


# ---- schedule ----------------------------------------------------------------------------


def _aware(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(t("centre.schedule.not_iso", text=repr(text))) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(t("centre.schedule.no_offset", text=repr(text)))
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
            conference_address=args.conference,
        )
    except ValidationError as exc:
        # The first problem in the reader's words (str(exc) ends with pydantic's help URL).
        raise ConfigError(
            message("centre.schedule.bad_session", error=pydantic_problem(exc.errors()[0])),
            message("centre.schedule.bad_session_hint"),
        ) from None
    now = schedule_pub.utc_now()
    current = schedule_pub.fetch(settings, args.site)
    topic = schedule_pub.publish(
        settings, args.site, schedule_pub.with_session(current, session, now)
    )
    _line(
        t(
            "centre.schedule.added",
            topic=topic,
            session=args.session_id,
            count=len(current.entries),
        )
    )
    return 0


def cmd_schedule_remove(args: argparse.Namespace) -> int:
    settings = _settings(args)
    current = schedule_pub.fetch(settings, args.site)
    changed, found = schedule_pub.without_session(current, args.session_id, schedule_pub.utc_now())
    if not found:
        _line(t("centre.schedule.not_there", session=args.session_id))
        return int(ExitCode.WARNING)
    topic = schedule_pub.publish(settings, args.site, changed)
    _line(t("centre.schedule.removed", topic=topic, session=args.session_id))
    return 0


def cmd_schedule_list(args: argparse.Namespace) -> int:
    settings = _settings(args)
    current = schedule_pub.fetch(settings, args.site)
    if args.json:
        _json(current.model_dump(mode="json"))
        return 0
    topic = schedule_pub.schedule_topic(settings.broker.prefix, args.site)
    _line(t("centre.schedule.listed", topic=topic, count=len(current.entries)))
    for e in current.entries:
        expected = e.expected_attendance
        extra = t("centre.schedule.expected", count=expected) if expected is not None else ""
        flag = t("centre.schedule.cancelled") if e.cancelled else ""
        if e.conference_address:
            extra += t("schedule.conference", address=e.conference_address)
        _out(
            f"  {e.session_id}  {e.start.isoformat()} -> {e.end.isoformat()}  "
            f"{e.title}{extra}{flag}\n"
        )
    return 0


# ---- dashboard accounts -------------------------------------------------------------------


def _accounts(args: argparse.Namespace) -> Any:
    from agent.centre.web.accounts import Accounts  # noqa: PLC0415 - the centre extra

    return Accounts(_settings(args).store_location)


def _read_password() -> str:
    """From a prompt (twice) on a terminal, else the first line of stdin: never argv, where
    every user of the host could read it."""
    import getpass  # noqa: PLC0415

    if sys.stdin.isatty():
        first = getpass.getpass(t("centre.user.password"))
        if getpass.getpass(t("centre.user.again")) != first:
            raise ConfigError(message("centre.user.differ"), message("centre.user.differ_hint"))
        return first
    return sys.stdin.readline().rstrip("\r\n")


_ROLES = ("operator", "viewer")
_OPERATOR = "centre.user.role.operator"
_VIEWER = "centre.user.role.viewer"


def _role(code: str) -> str:
    """A role in the reader's words; one this release does not know, as stored."""
    if code == "operator":
        return t(_OPERATOR)
    return t(_VIEWER) if code == "viewer" else code


def cmd_user_add(args: argparse.Namespace) -> int:
    from agent.centre.web.accounts import AccountError, Role  # noqa: PLC0415

    accounts = _accounts(args)
    try:
        accounts.add(args.name, _read_password(), Role(args.role), replace=args.replace)
    except AccountError as exc:
        # The accounts say why in the reader's language (exc.msg); the CLI adds where to look.
        raise ConfigError(exc.msg or exc.message, message("centre.user.refused_hint")) from None
    finally:
        accounts.close()
    _line(t("centre.user.added", name=args.name, role=_role(args.role)))
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
    width = max(len(_role(code)) for code in _ROLES)
    for u in users:
        when = datetime.fromtimestamp(u.created).astimezone().strftime("%Y-%m-%d %H:%M")
        role = f"{_role(u.role.value):<{width}}"
        _line(t("centre.user.line", name=f"{u.name:<24}", role=role, when=when))
    if not users:
        _line(t("centre.user.none"))
    return 0


def cmd_user_remove(args: argparse.Namespace) -> int:
    accounts = _accounts(args)
    try:
        found = accounts.remove(args.name)
    finally:
        accounts.close()
    if not found:
        _line(t("centre.user.not_found", name=args.name))
        return int(ExitCode.WARNING)
    _line(t("centre.user.removed", name=args.name))
    return 0


# ---- parsers -----------------------------------------------------------------------------


def _json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help=t("cli.json_help"))


def _add_user_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("user", help=t("centre.user.help"))
    usub = p.add_subparsers(dest="user_action", required=True, metavar=t("cli.metavar.action"))
    name = t("cli.metavar.name")
    a = usub.add_parser("add", help=t("centre.user.add_help"))
    _config_arg(a)
    a.add_argument("name", metavar=name, help=t("centre.user.name_help"))
    a.add_argument(
        "--role",
        choices=list(_ROLES),
        required=True,
        metavar=t("centre.metavar.role"),
        help=t("centre.user.role_help"),
    )
    a.add_argument("--replace", action="store_true", help=t("centre.user.replace_help"))
    a.set_defaults(func=cmd_user_add)
    ls = usub.add_parser("list", help=t("centre.user.list_help"))
    _config_arg(ls)
    _json_arg(ls)
    ls.set_defaults(func=cmd_user_list)
    r = usub.add_parser("remove", help=t("centre.user.remove_help"))
    _config_arg(r)
    r.add_argument("name", metavar=name, help=t("centre.user.name_help"))
    r.set_defaults(func=cmd_user_remove)


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help=t("centre.serve.help"))
    _config_arg(p)
    p.add_argument(
        "--instance",
        default="",
        type=_instance,
        metavar=t("cli.metavar.name"),
        help=t("centre.serve.instance_help"),
    )
    p.add_argument(
        "--seconds",
        type=float,
        default=0,
        metavar=t("cli.metavar.seconds"),
        help=t("centre.serve.seconds_help"),
    )
    p.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        metavar=t("centre.metavar.level"),
        help=t("centre.serve.log_level_help"),
    )
    p.add_argument(
        "--http", metavar=t("centre.metavar.host_port"), help=t("centre.serve.http_help")
    )
    p.set_defaults(func=cmd_serve)

    _add_user_parsers(sub)

    p = sub.add_parser("status", help=t("centre.status.help"))
    _config_arg(p)
    _json_arg(p)
    p.add_argument(
        "--events",
        type=int,
        default=10,
        metavar=t("centre.metavar.n"),
        help=t("centre.status.events_help"),
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help=t("centre.report.help"))
    _config_arg(p)
    p.add_argument(
        "session", metavar=t("centre.metavar.session"), help=t("centre.schedule.session_id_help")
    )
    p.add_argument("--csv", metavar=t("cli.metavar.file"), help=t("centre.report.csv_help"))
    p.add_argument("--pdf", metavar=t("cli.metavar.file"), help=t("centre.report.pdf_help"))
    p.add_argument("--html", metavar=t("cli.metavar.file"), help=t("centre.report.html_help"))
    _json_arg(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("schedule", help=t("centre.schedule.help"))
    ssub = p.add_subparsers(dest="schedule_action", required=True, metavar=t("cli.metavar.action"))
    site_help = t("centre.schedule.site_help")
    site = t("centre.metavar.site")
    session = t("centre.metavar.session")
    session_help = t("centre.schedule.session_id_help")
    when = t("centre.metavar.time")
    a = ssub.add_parser("add", help=t("centre.schedule.add_help"))
    _config_arg(a)
    a.add_argument("session_id", metavar=session, help=session_help)
    for bound in ("--start", "--end"):
        a.add_argument(
            bound, type=_aware, required=True, metavar=when, help=t("centre.schedule.time_help")
        )
    a.add_argument(
        "--title", default="", metavar=t("centre.metavar.title"),
        help=t("centre.schedule.title_help"),
    )  # fmt: skip
    a.add_argument(
        "--expected", type=int, default=None, metavar=t("centre.metavar.n"),
        help=t("centre.schedule.expected_help"),
    )  # fmt: skip
    a.add_argument(
        "--conference", default=None, metavar=t("schedule.metavar.address"),
        help=t("schedule.conference_help"),
    )  # fmt: skip
    a.add_argument("--site", metavar=site, help=site_help)
    a.set_defaults(func=cmd_schedule_add)
    r = ssub.add_parser("remove", help=t("centre.schedule.remove_help"))
    _config_arg(r)
    r.add_argument("session_id", metavar=session, help=session_help)
    r.add_argument("--site", metavar=site, help=site_help)
    r.set_defaults(func=cmd_schedule_remove)
    ls = ssub.add_parser("list", help=t("centre.schedule.list_help"))
    _config_arg(ls)
    ls.add_argument("--site", metavar=site, help=site_help)
    _json_arg(ls)
    ls.set_defaults(func=cmd_schedule_list)
