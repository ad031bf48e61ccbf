"""`edge-agent centre alerts list|ack|silence|silences|unsilence` and `centre incidents
[list]|show|ack|stats`: the alerts firing, the incidents and their times, the silences.

Thin: parse, open the alert store (agent/centre/alerts/store.py), print in the reader's
language (`--json` for scripts: codes and epoch seconds, reasons as catalogue messages).
Bad input (an unknown number or key, a bad length of time) exits 2 with the fix.
"""

from __future__ import annotations

import argparse
import getpass
import json
import re
import sys
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from agent.centre import fleet
from agent.centre.alerts.model import Incident
from agent.centre.alerts.store import AlertStore, GroupBy, Scope, Silence
from agent.centre.settings import CentreSettings, load_centre_settings
from agent.centre.store.base import existing
from agent.cli.notify import add_test_parser
from agent.errors import ConfigError
from agent.i18n import LANGUAGES, current_language, error_text, t
from agent.messages import Message, Param, catalogue, message, render

T = TypeVar("T")
_BAD_INPUT = 2  # as argparse exits on a bad argument
# Longer is a typo (9999999w): a time that far cannot be shown, and a silence is not for ever.
_LONGEST_S = 400 * 86400
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def duration(text: str) -> float:
    """'90s', '30m', '2h', '7d', '1h30m' → seconds (argparse type)."""
    value = text.strip().lower()
    parts = _DURATION.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise argparse.ArgumentTypeError(t("incidents.cli.bad_duration", text=repr(text)))
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0 or seconds > _LONGEST_S:
        raise argparse.ArgumentTypeError(t("incidents.cli.bad_duration", text=repr(text)))
    return seconds


def moment(text: str) -> float:
    """An ISO time, local when it has no offset → epoch seconds (argparse type)."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(t("incidents.cli.bad_time", text=repr(text))) from None
    return (value if value.tzinfo else value.astimezone()).timestamp()


def _when(at: float | None) -> str:
    if at is None:
        return "-"
    return datetime.fromtimestamp(at).astimezone().strftime("%Y-%m-%d %H:%M")


def span(seconds: float | None) -> str:
    """A length of time as the desk reads it: 45s, 4m10s, 2h05m, 3d04h (no words: the same
    in both languages)."""
    if seconds is None:
        return "-"
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _json(data: Any) -> None:
    _out(json.dumps(data, indent=2, ensure_ascii=False))


def _refuse(msg: Message, hint: Message) -> int:
    sys.stderr.write(error_text(ConfigError(msg, hint)) + "\n")
    return _BAD_INPUT


def _settings(args: argparse.Namespace) -> CentreSettings:
    return load_centre_settings(getattr(args, "config", None))


def _open(args: argparse.Namespace) -> AlertStore:
    settings = _settings(args)
    # The same words as `centre status`: a wrong --config must not make a new database.
    return AlertStore(existing(settings.store_location))


def _with_store(args: argparse.Namespace, work: Callable[[AlertStore], T]) -> T:
    store = _open(args)
    try:
        return work(store)
    finally:
        store.close()


def _who(args: argparse.Namespace) -> str:
    if args.by:
        return str(args.by)
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "cli"


def _say(msg_id: str, **params: Param) -> str:
    """An id made from data (a severity, a kind, a scope) in the reader's language; the
    tests render every one of them."""
    return fleet.say(msg_id, current_language(), **params)


def _tier(code: str) -> str:
    """A tier in the reader's words; one this release does not know, as typed."""
    return _say(fleet.TIER + code) if fleet.TIER + code in catalogue() else code


def _listing(
    args: argparse.Namespace,
    items: Sequence[T],
    as_json: Callable[[T], Any],
    empty: str,
    *,
    head: list[str],
    row: Callable[[T], list[str]],
    right: frozenset[int] = frozenset(),
) -> int:
    """JSON for a script, else a table in the reader's language, or `empty` when there is
    nothing."""
    if args.json:
        _json([as_json(item) for item in items])
    elif items:
        _out(fleet.table([head, *(row(item) for item in items)], right))
    else:
        _out(empty)
    return 0


def _incident_json(i: Incident) -> dict[str, Any]:
    return {
        **i.model_dump(mode="json"),
        "time_to_ack_s": i.time_to_ack_s,
        "time_to_repair_s": i.time_to_repair_s,
    }


# ---- alerts ------------------------------------------------------------------------------


def cmd_alerts_list(args: argparse.Namespace) -> int:
    lang = current_language()
    return _listing(
        args,
        _with_store(args, AlertStore.firing),
        lambda a: a.model_dump(mode="json"),
        t("incidents.cli.no_alerts"),
        head=[
            t("incidents.cli.col.key"),
            t("incidents.cli.col.severity"),
            t("incidents.cli.col.site"),
            t("incidents.cli.col.since"),
            t("incidents.cli.col.acked_by"),
            t("incidents.cli.col.reason"),
        ],
        row=lambda a: [
            a.key,
            _say(f"incidents.severity.{a.severity.value}"),
            a.site_id,
            _when(a.fired_at if a.fired_at is not None else a.since),
            a.acked_by or "-",
            render(a.reason, lang),
        ],
    )


def _ack(args: argparse.Namespace) -> int:
    def work(store: AlertStore) -> int:
        now = time.time()
        try:
            incident = store.ack(args.ref, _who(args), now)
        except ConfigError as exc:
            sys.stderr.write(error_text(exc) + "\n")
            return _BAD_INPUT
        if incident is None:
            return _refuse(
                message("incidents.cli.not_found", ref=repr(args.ref)),
                message("incidents.cli.not_found_hint"),
            )
        if args.json:
            _json(_incident_json(incident))
        elif incident.acked_at == now:
            _out(t("incidents.cli.acked", id=incident.id, key=incident.alert_key,
                   who=incident.acked_by or ""))  # fmt: skip
        elif incident.acked_at is not None:
            _out(t("incidents.cli.already_acked", id=incident.id, key=incident.alert_key,
                   who=incident.acked_by or "", when=_when(incident.acked_at)))  # fmt: skip
        else:
            _out(t("incidents.cli.closed_already", id=incident.id, key=incident.alert_key,
                   when=_when(incident.closed_at)))  # fmt: skip
        return 0

    return _with_store(args, work)


def _target(s: Silence) -> str:
    if s.scope is Scope.TIER:
        return t("incidents.scope.tier", value=_tier(s.value))
    return _say(f"incidents.scope.{s.scope.value}", value=s.value)


def cmd_silence(args: argparse.Namespace) -> int:
    now = time.time()
    start = args.start if args.start is not None else now
    if args.until is not None:
        end = args.until
    elif args.length is not None:
        end = start + args.length
    else:
        return _refuse(message("incidents.cli.no_window"), message("incidents.cli.no_window_hint"))
    if args.all:
        scope, value = Scope.ALL, ""
    elif args.site:
        scope, value = Scope.SITE, args.site
    elif args.district:
        scope, value = Scope.DISTRICT, args.district
    else:
        scope, value = Scope.TIER, args.tier

    def work(store: AlertStore) -> int:
        try:
            silence = store.add_silence(
                scope=scope,
                value=value,
                starts_at=start,
                ends_at=end,
                who=_who(args),
                why=args.reason,
                at=now,
            )
        except ConfigError as exc:
            sys.stderr.write(error_text(exc) + "\n")
            return _BAD_INPUT
        if args.json:
            _json(silence.to_json())
        else:
            _out(t("incidents.cli.silenced", id=silence.id, target=_target(silence),
                   start=_when(silence.starts_at), end=_when(silence.ends_at)))  # fmt: skip
        return 0

    return _with_store(args, work)


def cmd_silences(args: argparse.Namespace) -> int:
    return _listing(
        args,
        _with_store(args, lambda store: store.silences(time.time())),
        Silence.to_json,
        t("incidents.cli.no_silences"),
        head=[
            t("incidents.cli.col.id"),
            t("incidents.cli.col.covers"),
            t("incidents.cli.col.from"),
            t("incidents.cli.col.until"),
            t("incidents.cli.col.who"),
            t("incidents.cli.col.reason"),
        ],
        row=lambda s: [
            str(s.id),
            _target(s),
            _when(s.starts_at),
            _when(s.ends_at),
            s.created_by,
            s.reason,
        ],
        right=frozenset({0}),
    )


def cmd_unsilence(args: argparse.Namespace) -> int:
    def work(store: AlertStore) -> int:
        if not store.end_silence(args.id, time.time()):
            return _refuse(
                message("incidents.cli.no_silence", id=args.id),
                message("incidents.cli.no_silence_hint"),
            )
        _out(t("incidents.cli.unsilenced", id=args.id))
        return 0

    return _with_store(args, work)


# ---- incidents ---------------------------------------------------------------------------


def _state(i: Incident) -> str:
    if i.closed_at is not None:
        return _say("incidents.state.closed")
    return _say("incidents.state.acked" if i.acked_at is not None else "incidents.state.open")


def cmd_incidents(args: argparse.Namespace) -> int:
    incidents = _with_store(
        args,
        lambda store: store.incidents(
            since=time.time() - args.since,
            open_only=args.open,
            site=args.site,
            district=args.district,
            tier=args.tier,
        ),
    )
    lang = current_language()
    return _listing(
        args,
        incidents,
        _incident_json,
        t("incidents.cli.no_incidents"),
        head=[
            t("incidents.cli.col.id"),
            t("incidents.cli.col.state"),
            t("incidents.cli.col.severity"),
            t("incidents.cli.col.site"),
            t("incidents.cli.col.opened"),
            t("incidents.cli.col.acked_by"),
            t("incidents.cli.col.repair"),
            t("incidents.cli.col.reason"),
        ],
        row=lambda i: [
            str(i.id),
            _state(i),
            _say(f"incidents.severity.{i.severity.value}"),
            i.site_id,
            _when(i.opened_at),
            i.acked_by or "-",
            span(i.time_to_repair_s),
            render(i.reason, lang),
        ],
        right=frozenset({0, 6}),
    )


def _no_incident(ref: object) -> int:
    return _refuse(
        message("incidents.cli.not_found", ref=repr(str(ref))),
        message("incidents.cli.not_found_hint"),
    )


def cmd_show(args: argparse.Namespace) -> int:
    incident = _with_store(args, lambda store: store.incident(args.id))
    if incident is None:
        return _no_incident(args.id)
    if args.json:
        _json(_incident_json(incident))
        return 0
    i = incident
    acked = t("incidents.cli.field.not_yet")
    if i.acked_at is not None:
        acked = t("incidents.cli.field.acked_value", when=_when(i.acked_at), who=i.acked_by or "",
                  after=span(i.time_to_ack_s))  # fmt: skip
    closed = t("incidents.cli.field.not_yet")
    if i.closed_at is not None:
        closed = t("incidents.cli.field.closed_value", when=_when(i.closed_at),
                   after=span(i.time_to_repair_s))  # fmt: skip
    rows = [
        ("alert", i.alert_key),
        ("rule", i.rule),
        ("kind", _say(f"incidents.kind.{i.kind.value}")),
        ("severity", _say(f"incidents.severity.{i.severity.value}")),
        ("site", i.site_id),
        ("district", i.district or "-"),
        ("tier", _tier(i.tier)),
        ("opened", _when(i.opened_at)),
        ("acked", acked),
        ("closed", closed),
        ("reason", render(i.reason, current_language())),
    ]
    _out(t("incidents.cli.field.incident", id=i.id))
    _out(fleet.table([["", _say(f"incidents.cli.field.{name}"), value] for name, value in rows]))
    return 0


def cmd_incident_ack(args: argparse.Namespace) -> int:
    args.ref = str(args.id)
    return _ack(args)


def cmd_stats(args: argparse.Namespace) -> int:
    since = time.time() - args.since
    groups = _with_store(args, lambda store: store.stats(GroupBy(args.by), since))
    if args.json:
        _json({"since": since, "by": args.by, "groups": [g.to_json() for g in groups]})
        return 0
    if not groups:
        _out(t("incidents.cli.stats_empty", since=_when(since)))
        return 0
    _out(t("incidents.cli.stats_heading", since=_when(since)))
    head = [
        t("incidents.cli.col.group"),
        t("incidents.cli.col.count"),
        t("incidents.cli.col.open"),
        t("incidents.cli.col.ack_median"),
        t("incidents.cli.col.ack_p90"),
        t("incidents.cli.col.repair_median"),
        t("incidents.cli.col.repair_p90"),
    ]
    body = [
        [
            _tier(g.group) if args.by == GroupBy.TIER else g.group or "-",
            str(g.incidents),
            str(g.open),
            span(g.to_ack.median_s),
            span(g.to_ack.p90_s),
            span(g.to_repair.median_s),
            span(g.to_repair.p90_s),
        ]
        for g in groups
    ]
    _out(fleet.table([head, *body], right=frozenset(range(1, 7))))
    return 0


# ---- parsers -----------------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser, json_too: bool = True) -> argparse.ArgumentParser:
    parser.add_argument("--lang", choices=LANGUAGES, help=t("cli.lang_help"))
    if json_too:
        parser.add_argument("--json", action="store_true", help=t("cli.json_help"))
    return parser


def _by(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--by", metavar=t("incidents.cli.metavar.name"), help=t("incidents.cli.by_help")
    )


def _list_options(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("--open", action="store_true", help=t("incidents.cli.open_help"))
    parser.add_argument(
        "--since", type=duration, default=duration("7d"), metavar=t("incidents.cli.metavar.length"),
        help=t("incidents.cli.since_help"),
    )  # fmt: skip
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--site", metavar="ID", help=t("incidents.cli.site_help"))
    where.add_argument("--district", metavar="ID", help=t("incidents.cli.district_help"))
    where.add_argument("--tier", choices=tuple(fleet.TIER_ORDER), help=t("incidents.cli.tier_help"))
    parser.set_defaults(func=cmd_incidents)


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    metavar = t("cli.metavar.command")
    alerts = sub.add_parser("alerts", help=t("incidents.cli.alerts_help"))
    asub = alerts.add_subparsers(dest="alerts_action", required=True, metavar=metavar)
    _common(asub.add_parser("list", help=t("incidents.cli.list_alerts_help"))).set_defaults(
        func=cmd_alerts_list
    )
    ack = _common(asub.add_parser("ack", help=t("incidents.cli.ack_help")))
    ack.add_argument(
        "ref", metavar=t("incidents.cli.metavar.ref"), help=t("incidents.cli.ref_help")
    )
    _by(ack)
    ack.set_defaults(func=_ack)
    silence = _common(asub.add_parser("silence", help=t("incidents.cli.silence_help")))
    what = silence.add_mutually_exclusive_group(required=True)
    what.add_argument("--site", metavar="ID", help=t("incidents.cli.site_help"))
    what.add_argument("--district", metavar="ID", help=t("incidents.cli.district_help"))
    what.add_argument("--tier", choices=tuple(fleet.TIER_ORDER), help=t("incidents.cli.tier_help"))
    what.add_argument("--all", action="store_true", help=t("incidents.cli.all_help"))
    length = t("incidents.cli.metavar.length")
    silence.add_argument("--for", dest="length", type=duration, metavar=length,
                         help=t("incidents.cli.for_help"))  # fmt: skip
    when = t("incidents.cli.metavar.time")
    silence.add_argument("--from", dest="start", type=moment, metavar=when,
                         help=t("incidents.cli.from_help"))  # fmt: skip
    silence.add_argument("--until", type=moment, metavar=when, help=t("incidents.cli.until_help"))
    silence.add_argument("--reason", required=True, metavar=t("incidents.cli.metavar.text"),
                         help=t("incidents.cli.reason_help"))  # fmt: skip
    _by(silence)
    silence.set_defaults(func=cmd_silence)
    _common(asub.add_parser("silences", help=t("incidents.cli.silences_help"))).set_defaults(
        func=cmd_silences
    )
    unsilence = _common(
        asub.add_parser("unsilence", help=t("incidents.cli.unsilence_help")), json_too=False
    )
    unsilence.add_argument("id", type=int, metavar="ID", help=t("incidents.cli.silence_id_help"))
    unsilence.set_defaults(func=cmd_unsilence)
    add_test_parser(asub)

    incidents = sub.add_parser("incidents", help=t("incidents.cli.help"))
    _list_options(incidents)  # `centre incidents` alone lists
    # Only the leaves get --config by themselves (agent/cli/__init__.py); this one lists too.
    incidents.add_argument(
        "--config", metavar=t("cli.metavar.file"), default=argparse.SUPPRESS,
        help=t("cli.config_help"),
    )  # fmt: skip
    isub = incidents.add_subparsers(dest="incidents_action", required=False, metavar=metavar)
    _list_options(isub.add_parser("list", help=t("incidents.cli.list_help")))
    show = _common(isub.add_parser("show", help=t("incidents.cli.show_help")))
    show.add_argument("id", type=int, metavar="ID", help=t("incidents.cli.id_help"))
    show.set_defaults(func=cmd_show)
    iack = _common(isub.add_parser("ack", help=t("incidents.cli.ack_help")))
    iack.add_argument("id", type=int, metavar="ID", help=t("incidents.cli.id_help"))
    _by(iack)
    iack.set_defaults(func=cmd_incident_ack)
    stats = _common(isub.add_parser("stats", help=t("incidents.cli.stats_help")))
    stats.add_argument("--by", choices=[g.value for g in GroupBy], default=GroupBy.DISTRICT.value,
                       help=t("incidents.cli.group_help"))  # fmt: skip
    stats.add_argument("--since", type=duration, default=duration("30d"), metavar=length,
                       help=t("incidents.cli.stats_since_help"))  # fmt: skip
    stats.set_defaults(func=cmd_stats)
