"""The page's alerts, incidents and contacts: what /api/alerts, /api/incidents and
/api/contacts answer, read from the alert store, the contact directory and the notification
queue (agent/centre/alerts/), which the engine fills.

The stores' SQLite connections belong to the thread that opened them, so the desk keeps one
worker thread of its own and runs every read and write there: the event loop never waits on
the database, and the page's other routes never wait on the alerts.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agent.centre.alerts import routing
from agent.centre.alerts.contacts import (
    ContactError,
    ContactStore,
    channels_from,
    make_contact,
    parse_quiet,
    unknown,
)
from agent.centre.alerts.model import Alert, Contact, Incident, NotificationStatus
from agent.centre.alerts.queue import NotificationQueue
from agent.centre.alerts.store import AlertStore, GroupBy
from agent.centre.fleet import say
from agent.i18n import LANGUAGES
from agent.messages import Message, message, render

T = TypeVar("T")
DAY_S = 86400.0
MAX_DAYS = 400  # the longest a centre keeps its fleet's history
INCIDENTS_SHOWN = 200
FAILURES_SHOWN = 10
# The form's lists are split at commas or semicolons only: an address typed with a space in it
# stays whole, so the refusal names what was typed.
_SPLIT = re.compile(r"[,;\n]+")


def by_lang(msg: Message) -> dict[str, str]:
    return {lang: render(msg, lang) for lang in LANGUAGES}


def _said(prefix: str, value: str) -> dict[str, str]:
    """A word of the incidents' catalogue (a severity, a kind: an id made from data, as the
    CLI's) in every language."""
    return {lang: say(f"{prefix}.{value}", lang) for lang in LANGUAGES}


class Refused(Exception):
    """A request the desk turns down: the status and the reason, said in the reader's
    language by the app (`hint` too when there is one)."""

    def __init__(self, status: int, msg: Message, hint: Message | None = None) -> None:
        super().__init__(msg.text)
        self.status, self.msg, self.hint = status, msg, hint


# ---- what the page shows ------------------------------------------------------------------


def told(alert: Alert, contacts: Sequence[Contact]) -> list[Contact]:
    """Who is told of `alert`: its first level, and once escalated the levels above."""
    levels = (1, 2, 3) if alert.escalated else (1,)
    out: dict[str, Contact] = {}
    for level in levels:
        for c in routing.covering(alert, contacts, level):
            out.setdefault(c.id, c)
    return list(out.values())


def alert_json(
    alert: Alert, contacts: Sequence[Contact], names: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "key": alert.key,
        "rule": alert.rule,
        "kind": alert.kind.value,
        "kind_by_lang": _said("incidents.kind", alert.kind.value),
        "severity": alert.severity.value,
        "severity_by_lang": _said("incidents.severity", alert.severity.value),
        "site_id": alert.site_id,
        "site_name": alert.site_name or names.get(alert.site_id, ""),
        "district": alert.district,
        "district_name": names.get(alert.district, alert.district),
        "tier": alert.tier,
        "since": alert.since,
        "fired_at": alert.fired_at,
        "reason": alert.reason.text,
        "reason_by_lang": by_lang(alert.reason),
        "told": [{"id": c.id, "name": c.name} for c in told(alert, contacts)],
        "acked_by": alert.acked_by,
        "acked_at": alert.acked_at,
        "escalated": alert.escalated,
    }


def incident_json(inc: Incident, names: Mapping[str, str]) -> dict[str, Any]:
    return {
        "id": inc.id,
        "alert_key": inc.alert_key,
        "kind": inc.kind.value,
        "kind_by_lang": _said("incidents.kind", inc.kind.value),
        "severity": inc.severity.value,
        "severity_by_lang": _said("incidents.severity", inc.severity.value),
        "site_id": inc.site_id,
        "site_name": names.get(inc.site_id, ""),
        "district": inc.district,
        "district_name": names.get(inc.district, inc.district),
        "tier": inc.tier,
        "opened_at": inc.opened_at,
        "acked_at": inc.acked_at,
        "acked_by": inc.acked_by,
        "closed_at": inc.closed_at,
        "time_to_ack_s": inc.time_to_ack_s,
        "duration_s": inc.time_to_repair_s,
        "reason": inc.reason.text,
        "reason_by_lang": by_lang(inc.reason),
    }


def parse_days(raw: str | None, default: int = 30) -> int:
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_DAYS:
        raise Refused(400, message("page_alerts.error.days", max=MAX_DAYS))
    return int(raw)


def _texts(data: Mapping[str, Any], field: str) -> list[str]:
    """A list field of the contact form: a list of texts, or one text split at commas and
    semicolons."""
    value = data.get(field)
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in _SPLIT.split(value) if part.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise Refused(400, message("page_alerts.error.field", field=field))


def _text(data: Mapping[str, Any], field: str, default: str = "") -> str:
    value = data.get(field, default)
    if value is None:
        return default
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise Refused(400, message("page_alerts.error.field", field=field))
    return str(value).strip()


def contact_from_form(data: Mapping[str, Any]) -> Contact:
    """The contact the page's form describes, checked as the CLI's (make_contact); Refused
    with the directory's own reason and fix."""
    fields: dict[str, Any] = {
        "id": _text(data, "id"),
        "name": _text(data, "name"),
        "level": _text(data, "level", "1") or "1",
        "districts": _texts(data, "districts"),
        "tiers": _texts(data, "tiers"),
        "min_severity": _text(data, "min_severity", "warning") or "warning",
        "language": _text(data, "language", "vi") or "vi",
        "channels": channels_from(
            _texts(data, "email"), _texts(data, "webhook"), _texts(data, "telegram")
        ),
        "enabled": data.get("enabled", True) is not False,
    }
    try:
        quiet = _text(data, "quiet")
        if quiet:
            fields["quiet"] = parse_quiet(quiet)
        return make_contact(fields)
    except ContactError as exc:
        raise Refused(400, _msg(exc), exc.hint_msg) from None


def _msg(exc: ContactError) -> Message:
    assert exc.msg is not None  # the directory says every refusal as a message
    return exc.msg


# ---- the stores, on their own thread --------------------------------------------------------


@dataclass
class _Stores:
    alerts: AlertStore
    contacts: ContactStore
    queue: NotificationQueue

    def close(self) -> None:
        self.alerts.close()
        self.contacts.close()
        self.queue.close()


class Desk:
    """The alert store, the contact directory and the notification queue, opened on the
    desk's own thread at first use."""

    def __init__(self, db_path: Path | str, names: Callable[[], Mapping[str, str]]) -> None:
        self.db_path = db_path
        self.names = names  # site id -> its name (the fleet watch's last full read)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="dashboard-alerts")
        self._stores: _Stores | None = None

    def _open(self) -> _Stores:
        if self._stores is None:
            self._stores = _Stores(
                AlertStore(self.db_path), ContactStore(self.db_path),
                NotificationQueue(self.db_path),
            )  # fmt: skip
        return self._stores

    async def run(self, fn: Callable[[_Stores], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(self._open()))

    def close(self) -> None:
        def shut() -> None:
            if self._stores is not None:
                self._stores.close()
                self._stores = None

        self._pool.submit(shut).result()
        self._pool.shutdown()

    # ---- reads --------------------------------------------------------------------------

    def alerts(self, s: _Stores) -> dict[str, Any]:
        contacts, names = s.contacts.list(), self.names()
        firing = s.alerts.firing()
        return {"alerts": [alert_json(a, contacts, names) for a in firing], "count": len(firing)}

    def incidents(self, s: _Stores, days: int) -> dict[str, Any]:
        since, names = time.time() - days * DAY_S, self.names()
        found = s.alerts.incidents(since=since, limit=INCIDENTS_SHOWN)
        stats = {}
        for by in (GroupBy.DISTRICT, GroupBy.TIER):
            stats[by.value] = [
                {**g.to_json(), "name": names.get(g.group, g.group) if by is GroupBy.DISTRICT
                 else g.group}
                for g in s.alerts.stats(by, since)
            ]  # fmt: skip
        return {
            "days": days,
            "incidents": [incident_json(i, names) for i in found],
            "stats": stats,
        }

    def contacts(self, s: _Stores) -> dict[str, Any]:
        failed = [
            n for n in s.queue.recent(FAILURES_SHOWN * 5) if n.status is NotificationStatus.FAILED
        ][:FAILURES_SHOWN]
        return {
            "contacts": [c.model_dump(mode="json") for c in s.contacts.list()],
            "backlog": s.queue.backlog(),
            "failures": [
                {
                    "id": n.id,
                    "contact_id": n.contact_id,
                    "channel": n.channel.kind.value,
                    "address": n.channel.address,
                    "event": n.event.value,
                    "attempts": n.attempts,
                    "created_at": n.created_at,
                    "error": n.last_error,
                }
                for n in failed
            ],
        }

    # ---- writes -------------------------------------------------------------------------

    @staticmethod
    def ack(s: _Stores, key: str, who: str) -> dict[str, Any]:
        incident = s.alerts.ack(key, who, time.time())
        if incident is None:
            raise Refused(404, message("page_alerts.error.no_incident", key=key[:200]))
        return incident_json(incident, {})

    @staticmethod
    def put_contact(s: _Stores, contact: Contact, replace: bool) -> dict[str, Any]:
        if not replace and s.contacts.get(contact.id) is not None:
            raise Refused(409, message("page_alerts.error.exists", id=contact.id))
        s.contacts.put(contact)
        return contact.model_dump(mode="json")

    @staticmethod
    def set_enabled(s: _Stores, contact_id: str, enabled: bool) -> Contact:
        contact = s.contacts.get(contact_id)
        if contact is None:
            raise _unknown(contact_id)
        contact = contact.model_copy(update={"enabled": enabled})
        s.contacts.put(contact)
        return contact

    @staticmethod
    def remove_contact(s: _Stores, contact_id: str) -> dict[str, Any]:
        if not s.contacts.remove(contact_id):
            raise _unknown(contact_id)
        return {"ok": True}


def _unknown(contact_id: str) -> Refused:
    exc = unknown(contact_id[:200])
    return Refused(404, _msg(exc), exc.hint_msg)


__all__ = ["Desk", "Refused", "alert_json", "contact_from_form", "incident_json", "told"]
