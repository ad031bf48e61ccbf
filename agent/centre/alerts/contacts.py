"""The contact directory: who is told, where, in which language, and when not to wake them.

One table in the centre's database, each contact stored as the JSON of its model (the shape
is fixed in model.py; a column per field would need a migration at each optional field
added). Everything that enters is checked first: the model's own rules, then each channel's
address (an e-mail address, an http(s) URL, a Telegram chat id or @name), with the fix in
the error. A CSV file is read whole before anything is stored: one bad line and nothing is
imported.
"""

from __future__ import annotations

import builtins
import contextlib
import csv
import io
import logging
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from agent.centre.alerts.model import Channel, ChannelKind, Contact, QuietHours
from agent.centre.fleet import TIER_ORDER
from agent.centre.store.base import open_part
from agent.errors import AgentError
from agent.messages import Message, message
from agent.validation import pydantic_problem

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id TEXT PRIMARY KEY, data TEXT NOT NULL, updated_at REAL NOT NULL
);
"""
# local@domain, no spaces or brackets: what an SMTP server takes in RCPT TO without quoting.
_EMAIL = re.compile(r"[^@\s<>(),;:\"\[\]\\]+@[^\W_](?:[\w-]*[^\W_])?(?:\.[^\W_](?:[\w-]*[^\W_])?)*")
# A chat's number (groups are negative) or a public @name.
_TELEGRAM = re.compile(r"-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{2,31}")
_QUIET = re.compile(r"\s*(\d{1,2})\s*-\s*(\d{1,2})\s*")
# The columns of `centre contacts import`: id and name, then any of the others, any order.
COLUMNS = (
    "id", "name", "level", "districts", "tiers", "min_severity", "email", "webhook", "telegram",
    "lang", "quiet", "enabled",
)  # fmt: skip
REQUIRED = ("id", "name")
_LIST_SPLIT = re.compile(r"[;\s]+")
_TRUE = {"", "1", "true", "yes", "y"}
_FALSE = {"0", "false", "no", "n"}


class ContactError(AgentError):
    """A contact (from the CLI, a CSV file or the page) that cannot be stored as it is."""


# ---- checking ---------------------------------------------------------------------------


def check_channel(channel: Channel) -> None:
    """The channel's address is one its kind can send to, or ContactError with the fix."""
    address = channel.address
    if channel.kind == ChannelKind.EMAIL:
        if not _EMAIL.fullmatch(address):
            raise ContactError(
                message("contacts.error.email", value=address), message("contacts.hint.email")
            )
    elif channel.kind == ChannelKind.WEBHOOK:
        parts = urlsplit(address)
        if parts.scheme not in ("http", "https") or not parts.hostname or " " in address:
            raise ContactError(
                message("contacts.error.webhook", value=address), message("contacts.hint.webhook")
            )
    elif not _TELEGRAM.fullmatch(address):
        raise ContactError(
            message("contacts.error.telegram", value=address), message("contacts.hint.telegram")
        )


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "-"


def _field_hint(field: str) -> Message:
    """The fix for the first bad field (the fields a person types; the rest are ours)."""
    if field == "id":
        return message("contacts.hint.id")
    if field == "name":
        return message("contacts.hint.name")
    if field == "level":
        return message("contacts.hint.level")
    if field == "language":
        return message("contacts.hint.language")
    return message("contacts.hint.fields")


def make_contact(data: Mapping[str, Any]) -> Contact:
    """A Contact from plain values (the CLI's options, a CSV row, the page's form), checked
    by the model and each channel's address; ContactError naming every bad field."""
    if not data.get("channels"):
        raise ContactError(
            message("contacts.error.no_channel", id=str(data.get("id", ""))),
            message("contacts.hint.no_channel"),
        )
    bad_tiers = [t for t in data.get("tiers", ()) if t not in TIER_ORDER]
    if bad_tiers:
        raise ContactError(
            message("contacts.error.tier", value=", ".join(bad_tiers)),
            message("contacts.hint.tier", tiers=", ".join(TIER_ORDER)),
        )
    try:
        contact = Contact.model_validate(dict(data))
    except ValidationError as exc:
        problems = [
            message("contacts.error.field", field=_where(e["loc"]), problem=pydantic_problem(e))
            for e in exc.errors()
        ]
        raise ContactError(
            message("contacts.error.invalid", id=str(data.get("id", "")), problems=problems),
            _field_hint(str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else ""),
        ) from None
    for channel in contact.channels:
        check_channel(channel)
    return contact


def parse_quiet(text: str) -> QuietHours:
    """`22-6` → quiet from 22:00 to 06:00 (local time), or ContactError with the form."""
    match = _QUIET.fullmatch(text)
    if match is not None:
        start, end = int(match[1]), int(match[2])
        if start <= 23 and end <= 23 and start != end:
            return QuietHours(start=start, end=end)
    raise ContactError(message("contacts.error.quiet", value=text), message("contacts.hint.quiet"))


def channels_from(
    email: Iterable[str] = (), webhook: Iterable[str] = (), telegram: Iterable[str] = ()
) -> list[dict[str, str]]:
    return [
        {"kind": kind, "address": address.strip()}
        for kind, addresses in (
            (ChannelKind.EMAIL, email),
            (ChannelKind.WEBHOOK, webhook),
            (ChannelKind.TELEGRAM, telegram),
        )
        for address in addresses
        if address.strip()
    ]


# ---- the CSV file -----------------------------------------------------------------------


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ContactError(
        message("contacts.error.enabled", value=text), message("contacts.hint.enabled")
    )


def _items(text: str) -> list[str]:
    return [part for part in _LIST_SPLIT.split(text.strip()) if part]


def _row(cell: dict[str, str]) -> Contact:
    data: dict[str, Any] = {"id": cell["id"], "name": cell["name"]}
    if cell.get("level"):
        data["level"] = cell["level"]
    for field in ("districts", "tiers"):
        data[field] = _items(cell.get(field, ""))
    if cell.get("min_severity"):
        data["min_severity"] = cell["min_severity"].lower()
    if cell.get("lang"):
        data["language"] = cell["lang"].lower()
    data["channels"] = channels_from(
        _items(cell.get("email", "")), _items(cell.get("webhook", "")),
        _items(cell.get("telegram", "")),
    )  # fmt: skip
    if cell.get("quiet"):
        data["quiet"] = parse_quiet(cell["quiet"])
    return make_contact(data)


def parse_contacts(data: bytes) -> list[Contact]:
    """Every contact of a CSV file (header: COLUMNS, id and name required), or ContactError
    naming the first bad line. Nothing is stored here: the caller stores all or none."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ContactError(
            message("contacts.error.not_utf8", line=line), message("contacts.hint.utf8")
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header_hint = message("contacts.hint.header", columns=",".join(COLUMNS))
    contacts: list[Contact] = []
    first: dict[str, int] = {}
    try:
        header = [h.strip().lower() for h in next(reader, [])]
        missing = [c for c in REQUIRED if c not in header]
        unknown = [h for h in header if h and h not in COLUMNS]
        if missing or unknown or len(set(header)) != len(header):
            raise ContactError(
                message("contacts.error.header", missing=", ".join(missing) or "-",
                        unknown=", ".join(unknown) or "-"),
                header_hint,
            )  # fmt: skip
        for row in reader:
            line = reader.line_num
            if not any(c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise ContactError(
                    message("contacts.error.width", line=line, count=len(row), want=len(header)),
                    header_hint,
                )
            cell = {h: v.strip() for h, v in zip(header, row, strict=True)}
            try:
                contact = _row(cell)
                if not _bool(cell.get("enabled", "")):
                    contact = contact.model_copy(update={"enabled": False})
            except ContactError as exc:
                problem = exc.msg or exc.message
                raise ContactError(
                    message("contacts.error.at_line", line=line, problem=problem),
                    exc.hint_msg or exc.hint,
                ) from None
            if contact.id in first:
                raise ContactError(
                    message("contacts.error.at_line", line=line, problem=message(
                        "contacts.error.twice", id=contact.id, first=first[contact.id])),
                    message("contacts.hint.twice"),
                )  # fmt: skip
            first[contact.id] = line
            contacts.append(contact)
    except csv.Error:
        raise ContactError(
            message("contacts.error.csv", line=reader.line_num), header_hint
        ) from None
    if not contacts:
        raise ContactError(message("contacts.error.no_rows"), header_hint)
    return contacts


# ---- the table --------------------------------------------------------------------------


def _load(contact_id: str, data: str) -> Contact | None:
    try:
        return Contact.model_validate_json(data)
    except ValidationError as exc:
        # A row written by a newer release or damaged by hand: the rest of the directory
        # still routes; the log says which one to fix.
        log.warning("contact %s unreadable, left out: %s", contact_id, exc.errors()[:1])
        return None


class ContactStore:
    """The `contacts` table of the centre's database: one connection, one thread."""

    def __init__(self, db_path: Path | str) -> None:
        """`db_path`: the SQLite file or a PostgreSQL URL (settings.store_location)."""
        self.db = open_part(db_path, "contacts", _SCHEMA)

    def close(self) -> None:
        self.db.close()

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        return self.db.transaction()

    def put(self, contact: Contact) -> None:
        """Insert, or replace the contact of the same id."""
        self.put_many([contact])

    def put_many(self, contacts: Iterable[Contact]) -> tuple[int, int]:
        """Store them all in one transaction (all or none); (added, replaced)."""
        items = list(contacts)
        for contact in items:
            for channel in contact.channels:
                check_channel(channel)
        added = replaced = 0
        now = time.time()
        with self._transaction():
            for contact in items:
                had = self.db.execute("SELECT 1 FROM contacts WHERE id = ?", (contact.id,))
                if had.fetchone() is None:
                    added += 1
                else:
                    replaced += 1
                self.db.execute(
                    "INSERT INTO contacts (id, data, updated_at) VALUES (?, ?, ?) ON CONFLICT"
                    " (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
                    (contact.id, contact.model_dump_json(), now),
                )
        return added, replaced

    def get(self, contact_id: str) -> Contact | None:
        row = self.db.execute("SELECT data FROM contacts WHERE id = ?", (contact_id,)).fetchone()
        return None if row is None else _load(contact_id, row[0])

    def list(self) -> builtins.list[Contact]:
        rows = self.db.execute("SELECT id, data FROM contacts ORDER BY id").fetchall()
        return [c for c in (_load(cid, data) for cid, data in rows) if c is not None]

    def remove(self, contact_id: str) -> bool:
        with self._transaction():
            cur = self.db.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
        return cur.rowcount > 0


def unknown(contact_id: str) -> ContactError:
    return ContactError(
        message("contacts.error.unknown", id=contact_id), message("contacts.hint.unknown")
    )


def dump(contact: Contact) -> dict[str, Any]:
    """The contact as JSON-ready values (`centre contacts list --json`)."""
    return contact.model_dump(mode="json")


__all__ = [
    "COLUMNS",
    "ContactError",
    "ContactStore",
    "channels_from",
    "check_channel",
    "dump",
    "make_contact",
    "parse_contacts",
    "parse_quiet",
    "unknown",
]
