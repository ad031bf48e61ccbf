"""`edge-agent centre notify test|queue`: send a test message now, look at the queue.

Thin: parse, load the centre's settings, call agent/centre/alerts/*.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
import time
from typing import Any, cast

from agent.centre.alerts.channels import DeliveryError, RetryLater
from agent.centre.alerts.delivery import Channels
from agent.centre.alerts.model import (
    Channel,
    ChannelKind,
    Contact,
    Notification,
    NotificationEvent,
)
from agent.centre.alerts.queue import NotificationQueue
from agent.centre.alerts.render import event_label, local_time
from agent.centre.settings import CentreSettings, load_centre_settings
from agent.errors import ConfigError
from agent.i18n import current_language, error_text, t
from agent.messages import message


def _settings(args: argparse.Namespace) -> CentreSettings:
    return load_centre_settings(getattr(args, "config", None))


def _to(value: str) -> Channel:
    kind, _, address = value.partition(":")
    try:
        return Channel(kind=ChannelKind(kind), address=address)
    except ValueError:
        raise argparse.ArgumentTypeError(t("notify.cli.bad_to", value=repr(value))) from None


def _contact(settings: CentreSettings, contact_id: str) -> Contact:
    # The directory's module, through its agreed interface (ContactStore).
    contacts = importlib.import_module("agent.centre.alerts.contacts")
    store = contacts.ContactStore(settings.store_location)
    try:
        found = cast("Contact | None", store.get(contact_id))
    finally:
        store.close()
    if found is None:
        raise ConfigError(
            message("notify.cli.no_contact", contact=contact_id),
            message("notify.cli.no_contact_hint"),
        )
    return found


def cmd_test(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.to is not None:
        contact = Contact(id="cli", name=args.to.address, channels=(args.to,), language=args.lang)
    elif args.contact:
        contact = _contact(settings, args.contact)
    else:
        raise ConfigError(message("notify.cli.no_target"), message("notify.cli.no_target_hint"))
    channels = Channels(settings.alerts)
    now = time.time()
    failures = 0
    for channel in contact.channels:
        key = hashlib.sha256(f"test|{contact.id}|{channel.kind}|{now}".encode()).hexdigest()[:32]
        n = Notification(
            key=key, contact_id=contact.id, channel=channel, language=contact.language,
            event=NotificationEvent.TEST, alerts=(), created_at=now,
        )  # fmt: skip
        where = {"contact": contact.name, "channel": channel.kind.value, "address": channel.address}
        try:
            channels.send(n, contact.name)
        except DeliveryError as exc:
            failures += 1
            if isinstance(exc, RetryLater):
                # A test is sent once, now: the queue's "it will be tried again" is untrue here.
                what = exc.msg if exc.msg is not None else exc.message
                exc = RetryLater(what, message("notify.error.unreachable_hint_now"))
            print(t("notify.cli.not_sent", error=error_text(exc), **where), file=sys.stderr)  # noqa: T201
            continue
        print(t("notify.cli.sent", **where))  # noqa: T201 - CLI output
    return 1 if failures else 0


def _row(n: Notification) -> dict[str, Any]:
    return {
        "key": n.key, "status": n.status.value, "event": n.event.value,
        "contact_id": n.contact_id, "channel": n.channel.kind.value,
        "attempts": n.attempts, "sent_at": n.sent_at, "last_error": n.last_error,
    }  # fmt: skip


def cmd_queue(args: argparse.Namespace) -> int:
    queue = NotificationQueue(_settings(args).store_location)
    try:
        backlog, recent = queue.backlog(), queue.recent(args.last)
    finally:
        queue.close()
    if args.json:
        print(json.dumps({"backlog": backlog, "recent": [_row(n) for n in recent]}, indent=2))  # noqa: T201
        return 0
    lines = [t("notify.cli.backlog", count=backlog)]
    status = {
        "sent": t("notify.cli.status.sent"),
        "failed": t("notify.cli.status.failed"),
        "pending": t("notify.cli.status.pending"),
    }
    for n in recent:
        lines.append(
            t(
                "notify.cli.recent",
                at=local_time(n.sent_at or n.created_at),
                status=status[n.status.value],
                event=event_label(n.event, current_language()),
                contact=n.contact_id,
                channel=n.channel.kind.value,
                attempts=n.attempts,
                error=f": {n.last_error}" if n.last_error else "",
            )
        )
    print("\n".join(lines))  # noqa: T201 - CLI output
    return 0


def _config_option(v: argparse.ArgumentParser) -> None:
    v.add_argument(
        "--config", metavar=t("cli.metavar.file"), default=argparse.SUPPRESS,
        help=t("centre.config_help"),
    )  # fmt: skip


def add_test_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`test CONTACT`: under `centre notify` and `centre alerts` alike (the issue's name)."""
    v = verbs.add_parser("test", help=t("notify.cli.test_help"))
    _config_option(v)
    v.add_argument(
        "contact", nargs="?", metavar=t("cli.metavar.name"), help=t("notify.cli.contact_help")
    )
    v.add_argument(
        "--to", type=_to, metavar=t("notify.cli.metavar_to"), help=t("notify.cli.to_help")
    )
    v.add_argument("--lang", choices=["en", "vi"], default="vi", help=t("notify.cli.lang_help"))
    v.set_defaults(func=cmd_test)


def add_centre_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("notify", help=t("notify.cli.help"))
    verbs = p.add_subparsers(dest="notify_command", required=True, metavar=t("cli.metavar.action"))
    add_test_parser(verbs)
    v = verbs.add_parser("queue", help=t("notify.cli.queue_help"))
    _config_option(v)
    v.add_argument(
        "--last",
        type=int,
        default=10,
        metavar=t("cli.metavar.number"),
        help=t("notify.cli.last_help"),
    )
    v.add_argument("--json", action="store_true", help=t("cli.json_help"))
    v.set_defaults(func=cmd_queue)
