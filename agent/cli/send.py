"""`edge-agent centre keygen` and `edge-agent centre send ACTION --site S | --tier T | --all`."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

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
from agent.config import BrokerSettings
from agent.errors import ConfigError


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


# ---- keygen ---------------------------------------------------------------------------------


def _keygen(args: argparse.Namespace) -> int:
    stem = Path(args.out)
    private_path, public_path = stem.with_suffix(".key"), stem.with_suffix(".pub")
    for path in (private_path, public_path):
        if path.exists() and not args.force:
            raise ConfigError(f"{path} exists", "choose another --out, or --force to replace it")
    public = write_key_pair(stem)
    key_id = args.key_id or stem.name
    _out(f"private key: {private_path} (keep it at the centre only; mode 600)")
    _out(f"public key:  {public_path}")
    _out("\nadd to each site's agent.toml:\n")
    _out(f'[[commands.keys]]\nkey_id = "{key_id}"\npublic_key = "{public}"')
    return 0


# ---- send -----------------------------------------------------------------------------------


def parse_arg(text: str) -> tuple[str, Any]:
    """`k=v`: v as JSON when it parses (30, true, ["camera"]), `@file` for a JSON file, else
    the plain string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"--arg {text!r}: expected KEY=VALUE", "e.g. --arg seconds=30")
    if value.startswith("@"):
        try:
            return key, json.loads(Path(value[1:]).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--arg {key}: cannot read {value[1:]}: {exc}", "") from None
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
            f"broker password file {path_text}: {exc.strerror or exc}",
            "give a readable file with the password on its first line",
        ) from exc
    return text.splitlines()[0] if text.strip() else None


def _stored_sites(settings: CentreSettings | None, site_id: str) -> tuple[set[str], Path | None]:
    """Whether the centre's fleet database knows `site_id`: ({site_id} or {}, its path).
    No database when there is no centre here (no centre settings) or it has stored nothing."""
    from agent.centre.store import Store  # noqa: PLC0415

    if settings is None or not settings.db_path.exists():
        return set(), None
    db_path = settings.db_path
    try:
        store = Store(db_path)
        try:
            return store.known({site_id}), db_path
        finally:
            store.close()
    except sqlite3.Error as exc:
        raise ConfigError(
            f"fleet database {db_path}: {exc}",
            "run as the centre's user (it must read the database), or add --force",
        ) from None


def _refuse_unknown(site_id: str, stored: set[str], db_path: Path | None,
                    announced: dict[str, str]) -> None:  # fmt: skip
    """A site id neither in the fleet database nor announced on the broker (retained meta) is
    most likely a typo: a command to it would go nowhere, or to whoever takes the id later."""
    if site_id in stored or site_id in announced:
        return
    database = f"not in the fleet database {db_path}" if db_path else "no fleet database here"
    raise ConfigError(
        f"site {site_id}: the centre has never heard of it ({database}, no retained meta "
        "on the broker)",
        "check the id (`edge-agent centre status` lists the fleet), or add --force to send "
        "it anyway",
    )


def _send(args: argparse.Namespace) -> int:
    from agent.centre.sender import Reply, Sender  # noqa: PLC0415
    from agent.commands.actions import ACTIONS  # noqa: PLC0415
    from agent.transport.mqtt import endpoint  # noqa: PLC0415

    if args.action not in ACTIONS:
        # The agents would refuse it too; saying so here saves a round trip.
        _out(f"warning: {args.action!r} is not an action this version knows")
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
    db_path: Path | None = None
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

    def show(reply: Reply) -> None:
        line = f"{reply.after_s:7.2f}s  {reply.site_id:<24} {reply.status:<10}"
        if reply.reason:
            line += f" {reply.reason}"
        if reply.status == "succeeded" and isinstance(reply.output, dict):
            verdict = reply.output.get("verdict")
            if verdict:
                line += f" verdict={verdict}"
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
        _out(f"sent {args.action} {command_id} to {_describe(target)} ({len(expected)} site(s))")
        outcome = sender.collect(command_id, expected, args.timeout, show)
    s = outcome.summary()
    _out(
        f"summary: answered {s['answered']}/{s['expected']}, succeeded {s['succeeded']}, "
        f"failed {s['failed']}, rejected {s['rejected']}, silent {len(s['silent'])}"
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
            "; ".join(e["msg"] for e in exc.errors()), "see `edge-agent centre send --help`"
        ) from None


def _describe(target: dict[str, Any]) -> str:
    if "site" in target:
        return f"site {target['site']}"
    if "tier" in target:
        return f"every {target['tier']} site"
    return "every site"


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keygen = sub.add_parser("keygen", help="make the centre's Ed25519 command key pair")
    keygen.add_argument("--out", default="centre-command", help="path stem: STEM.key, STEM.pub")
    keygen.add_argument("--key-id", help="name the sites know the key by (default: the stem)")
    keygen.add_argument("--force", action="store_true", help="replace existing files")
    keygen.set_defaults(func=_keygen)

    send = sub.add_parser("send", help="sign and send a command; print the replies")
    send.add_argument("action", help="run-checks, restart-codec, identify, rebirth, ...")
    where = send.add_mutually_exclusive_group(required=True)
    where.add_argument("--site", help="one site_id")
    where.add_argument("--tier", choices=["province", "district", "commune"])
    where.add_argument("--all", action="store_true", help="every site")
    send.add_argument(
        "--force",
        action="store_true",
        help="send to a --site the centre has never heard of (not in its fleet database, "
        "no retained meta on the broker)",
    )
    send.add_argument("--arg", action="append", default=[], metavar="K=V", help="an argument")
    send.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for replies")
    send.add_argument("--validity", type=float, default=300.0, help="seconds the command lives")
    send.add_argument(
        "--key", help=f"centre private key (PEM); or ${ENV_KEY}, or command_key in --config"
    )
    send.add_argument(
        "--key-id", help=f"key id the sites know; or ${ENV_KEY_ID}, or key_id in --config"
    )
    # Unset: the centre settings' [broker] (centre.example.toml), else 127.0.0.1:1883, vc, auto.
    send.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="centre settings: [broker], command_key, key_id (default: "
        "$EDGE_AGENT_CENTRE_CONFIG or /etc/edge-agent/centre.toml if it exists)",
    )
    send.add_argument("--host")
    send.add_argument("--port", type=int)
    send.add_argument("--prefix")
    send.add_argument("--protocol", choices=["auto", "5", "3.1.1"])
    send.add_argument("--username")
    # No --password: a command line is readable by every user of the machine (ps, /proc).
    send.add_argument(
        "--password-file",
        metavar="FILE",
        help=f"the broker password's file ('-': standard input); or ${ENV_PASSWORD}",
    )
    send.add_argument("--tls-ca", type=Path)
    send.add_argument("--tls-cert", type=Path)
    send.add_argument("--tls-key", type=Path)
    send.add_argument("-v", "--verbose", action="store_true", help="print each reply's output")
    send.set_defaults(func=_send)
