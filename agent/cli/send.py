"""`edge-agent centre keygen` and `edge-agent centre send ACTION --site S | --tier T | --all`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent import messages
from agent.centre.keys import load_private_key, write_key_pair
from agent.centre.settings import (
    ENV_CENTRE_CONFIG,
    ENV_KEY,
    ENV_KEY_ID,
    ENV_PASSWORD,
    CentreSettings,
    centre_config_path,
    load_centre_settings,
)
from agent.centre.store.base import StoreError, driver_errors, made, shown
from agent.config import BrokerSettings
from agent.errors import ConfigError
from agent.i18n import current_language, t
from agent.messages import Message, message, render, render_or

# Codes a reply or a target carries, in the reader's words; the ids are literals here, where
# the catalogue test reads them.
_TIERS = {
    "province": "centre.tier.province",
    "district": "centre.tier.district",
    "commune": "centre.tier.commune",
}
_VERDICTS = {
    "ready": "centre.send.verdict.ready",
    "degraded": "centre.send.verdict.degraded",
    "fault": "centre.send.verdict.fault",
}


def _word(table: dict[str, str], code: str) -> Message:
    """`code` by its id; one this release does not know (a newer site's), as it is."""
    if code in table:
        return messages.message(table[code])
    return message("centre.code", code=code)


def verdict_msg(verdict: str) -> Message:
    return message("centre.send.verdict", verdict=_word(_VERDICTS, verdict))


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ---- keygen ---------------------------------------------------------------------------------


def _keygen(args: argparse.Namespace) -> int:
    stem = Path(args.out)
    private_path, public_path = stem.with_suffix(".key"), stem.with_suffix(".pub")
    for path in (private_path, public_path):
        if path.exists() and not args.force:
            raise ConfigError(
                message("centre.keygen.exists", path=str(path)),
                message("centre.keygen.exists_hint"),
            )
    public = write_key_pair(stem)
    key_id = args.key_id or stem.name
    _out(t("centre.keygen.private", path=str(private_path)))
    _out(t("centre.keygen.public", path=str(public_path)))
    _out("\n" + t("centre.keygen.add") + "\n")
    _out(f'[[commands.keys]]\nkey_id = "{key_id}"\npublic_key = "{public}"')
    return 0


# ---- send -----------------------------------------------------------------------------------


def parse_arg(text: str) -> tuple[str, Any]:
    """`k=v`: v as JSON when it parses (30, true, ["camera"]), `@file` for a JSON file, else
    the plain string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(
            message("centre.send.bad_arg", arg=repr(text)), message("centre.send.bad_arg_hint")
        )
    if value.startswith("@"):
        try:
            return key, json.loads(Path(value[1:]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                message("centre.send.arg_file", key=key, path=value[1:], error=str(exc))
            ) from None
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _password(path_text: str | None) -> str | None:
    if not path_text:
        return os.environ.get(ENV_PASSWORD)
    try:
        text = sys.stdin.read() if path_text == "-" else Path(path_text).read_text()
    except OSError as exc:
        raise ConfigError(
            message("centre.send.password_file", path=path_text, error=str(exc.strerror or exc)),
            message("centre.send.password_file_hint"),
        ) from exc
    return text.splitlines()[0] if text.strip() else None


def _stored_sites(settings: CentreSettings | None, site_id: str) -> tuple[set[str], str | None]:
    """Whether the centre's fleet database knows `site_id`: ({site_id} or {}, where it is).
    No database when there is no centre here (no centre settings) or it has stored nothing."""
    from agent.centre.store import Store  # noqa: PLC0415

    if settings is None:
        return set(), None
    where = shown(settings.store_location)
    failures: tuple[type[Exception], ...] = (*driver_errors(), StoreError)
    try:
        if not made(settings.store_location):
            return set(), None
        store = Store(settings.store_location)
        try:
            return store.known({site_id}), where
        finally:
            store.close()
    except failures as exc:
        raise ConfigError(
            message("centre.send.database", path=where, error=str(exc)),
            message("centre.send.database_hint"),
        ) from None


def _refuse_unknown(site_id: str, stored: set[str], db_path: str | None,
                    announced: dict[str, str]) -> None:  # fmt: skip
    """A site id neither in the fleet database nor announced on the broker (retained meta) is
    most likely a typo: a command to it would go nowhere, or to whoever takes the id later."""
    if site_id in stored or site_id in announced:
        return
    database = (
        message("centre.send.not_in_database", path=db_path)
        if db_path
        else message("centre.send.no_database")
    )
    raise ConfigError(
        message("centre.send.unknown_site", site=site_id, database=database),
        message("centre.send.unknown_site_hint"),
    )


def _send(args: argparse.Namespace) -> int:
    from agent.centre.sender import Reply, Sender  # noqa: PLC0415
    from agent.commands.actions import ACTIONS  # noqa: PLC0415
    from agent.commands.service import status_msg  # noqa: PLC0415
    from agent.transport.mqtt import endpoint  # noqa: PLC0415

    if args.action not in ACTIONS:
        # The agents would refuse it too; saying so here saves a round trip.
        _out(t("centre.send.unknown_action", action=repr(args.action)))
    settings = _centre_settings(args)
    file_key = str(settings.command_key) if settings and settings.command_key else None
    key_path = args.key or os.environ.get(ENV_KEY) or file_key
    private = load_private_key(key_path)
    key_id = (
        args.key_id
        or os.environ.get(ENV_KEY_ID)
        or (settings.key_id if settings else "")
        or Path(str(key_path)).stem
    )
    cmd_args = dict(parse_arg(a) for a in args.arg)
    target: dict[str, Any]
    stored: set[str] = set()
    db_path: str | None = None
    if args.site:
        target = {"site": args.site}
        if not args.force:
            stored, db_path = _stored_sites(settings, args.site)
    elif args.tier:
        target = {"tier": args.tier}
    else:
        target = {"all": True}
    broker = _broker(args, settings)
    where = endpoint(broker, f"edge-agent-centre-send-{os.getpid()}")

    lang = current_language()

    def show(reply: Reply) -> None:
        status = render(status_msg(reply.status), lang)
        line = f"{reply.after_s:7.2f}s  {reply.site_id:<24} {status:<10}"
        if reply.reason:
            line += f" {render_or(reply.reason_msg, reply.reason, lang)}"
        if reply.status == "succeeded" and isinstance(reply.output, dict):
            verdict = reply.output.get("verdict")
            if isinstance(verdict, str) and verdict:
                line += " " + render(verdict_msg(verdict), lang)
        _out(line)
        if args.verbose and reply.output is not None:
            _out(json.dumps(reply.output, indent=1, ensure_ascii=False))

    with Sender(where, broker.prefix, broker.protocol) as sender:
        if args.site and not args.force:
            _refuse_unknown(args.site, stored, db_path, sender.sites)
        expected = sender.expected_sites(target)
        command_id, _ = sender.send(
            private, key_id, args.action, cmd_args, target, validity_s=args.validity
        )
        _out(
            t(
                "centre.send.sent",
                action=args.action,
                command_id=command_id,
                target=_describe(target),
                count=len(expected),
            )
        )
        outcome = sender.collect(command_id, expected, args.timeout, show)
    s = outcome.summary()
    _out(
        t(
            "centre.send.summary",
            answered=s["answered"],
            expected=s["expected"],
            succeeded=s["succeeded"],
            failed=s["failed"],
            rejected=s["rejected"],
            silent=len(s["silent"]),
        )
        + (f" ({', '.join(s['silent'])})" if s["silent"] else "")
    )
    everyone_ok = s["expected"] > 0 and s["succeeded"] == s["expected"]
    return 0 if everyone_ok else 1


def _centre_settings(args: argparse.Namespace) -> CentreSettings | None:
    """The centre's settings file, as `centre serve` reads it: given (--config or
    $EDGE_AGENT_CENTRE_CONFIG) it must load; the default one only if it exists, so that
    options alone still work on a machine without it."""
    given = getattr(args, "config", None) or os.environ.get(ENV_CENTRE_CONFIG)
    path = centre_config_path(getattr(args, "config", None))
    return load_centre_settings(path) if given or path.exists() else None


def _broker(args: argparse.Namespace, settings: CentreSettings | None) -> BrokerSettings:
    """The file's [broker] (or the defaults), with each option given on the line on top."""
    options = {
        "host": args.host,
        "port": args.port,
        "prefix": args.prefix,
        "protocol": args.protocol,
        "username": args.username,
        "password": _password(args.password_file),
        "tls_ca": args.tls_ca,
        "tls_cert": args.tls_cert,
        "tls_key": args.tls_key,
    }
    base = settings.broker if settings is not None else BrokerSettings()
    given = {k: v for k, v in options.items() if v is not None}
    try:
        return BrokerSettings.model_validate({**base.model_dump(), **given})
    except ValidationError as exc:
        raise ConfigError(
            "; ".join(e["msg"] for e in exc.errors()), message("centre.send.see_help")
        ) from None


def _describe(target: dict[str, Any]) -> Message:
    if "site" in target:
        return message("centre.send.to_site", site=str(target["site"]))
    if "tier" in target:
        tier = str(target["tier"])
        return message("centre.send.to_tier", tier=_word(_TIERS, tier))
    return message("centre.send.to_all")


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keygen = sub.add_parser("keygen", help=t("centre.keygen.help"))
    keygen.add_argument(
        "--out", default="centre-command", metavar=t("centre.metavar.stem"),
        help=t("centre.keygen.out_help"),
    )  # fmt: skip
    keygen.add_argument(
        "--key-id", metavar=t("centre.metavar.key_id"), help=t("centre.keygen.key_id_help")
    )
    keygen.add_argument("--force", action="store_true", help=t("centre.keygen.force_help"))
    keygen.set_defaults(func=_keygen)

    file = t("cli.metavar.file")
    send = sub.add_parser("send", help=t("centre.send.help"))
    send.add_argument("action", metavar=t("cli.metavar.action"), help=t("centre.send.action_help"))
    where = send.add_mutually_exclusive_group(required=True)
    where.add_argument("--site", metavar=t("centre.metavar.site"), help=t("centre.send.site_help"))
    where.add_argument(
        "--tier", choices=list(_TIERS), metavar=t("centre.metavar.tier"),
        help=t("centre.send.tier_help"),
    )  # fmt: skip
    where.add_argument("--all", action="store_true", help=t("centre.send.all_help"))
    send.add_argument("--force", action="store_true", help=t("centre.send.force_help"))
    send.add_argument(
        "--arg", action="append", default=[], metavar=t("centre.metavar.key_value"),
        help=t("centre.send.arg_help"),
    )  # fmt: skip
    seconds = t("cli.metavar.seconds")
    send.add_argument(
        "--timeout", type=float, default=30.0, metavar=seconds,
        help=t("centre.send.timeout_help"),
    )  # fmt: skip
    send.add_argument(
        "--validity", type=float, default=300.0, metavar=seconds,
        help=t("centre.send.validity_help"),
    )  # fmt: skip
    send.add_argument("--key", metavar=file, help=t("centre.send.key_help", variable=ENV_KEY))
    send.add_argument(
        "--key-id", metavar=t("centre.metavar.key_id"),
        help=t("centre.send.key_id_help", variable=ENV_KEY_ID),
    )  # fmt: skip
    # Unset: the centre settings' [broker] (centre.example.toml), else 127.0.0.1:1883, vc, auto.
    send.add_argument(
        "--config", metavar=file, default=argparse.SUPPRESS, help=t("centre.send.config_help")
    )
    send.add_argument("--host", metavar=t("centre.metavar.host"), help=t("centre.send.host_help"))
    send.add_argument(
        "--port", type=int, metavar=t("cli.metavar.port"), help=t("centre.send.port_help")
    )
    send.add_argument(
        "--prefix", metavar=t("centre.metavar.prefix"), help=t("centre.send.prefix_help")
    )
    send.add_argument(
        "--protocol", choices=["auto", "5", "3.1.1"], metavar=t("centre.metavar.protocol"),
        help=t("centre.send.protocol_help"),
    )  # fmt: skip
    send.add_argument(
        "--username", metavar=t("cli.metavar.user"), help=t("centre.send.username_help")
    )
    # No --password: a command line is readable by every user of the machine (ps, /proc).
    send.add_argument(
        "--password-file", metavar=file,
        help=t("centre.send.password_file_help", variable=ENV_PASSWORD),
    )  # fmt: skip
    send.add_argument("--tls-ca", type=Path, metavar=file, help=t("centre.send.tls_ca_help"))
    send.add_argument("--tls-cert", type=Path, metavar=file, help=t("centre.send.tls_cert_help"))
    send.add_argument("--tls-key", type=Path, metavar=file, help=t("centre.send.tls_key_help"))
    send.add_argument("-v", "--verbose", action="store_true", help=t("centre.send.verbose_help"))
    send.set_defaults(func=_send)
