"""The roster file, pure: the province's list of expected sites as CSV (`centre sites import`).

Columns id,name,tier,parent,summoned, named on the first line (any order, any case; other
columns are left alone: a spreadsheet often carries notes), and optionally `region`: the
regional broker the site connects to, where brokers are bridged (docs/brokers.md). UTF-8,
with or without the BOM spreadsheets write. Every row is checked before anything is
stored: one bad row and the whole file is refused with its line and column, so a
half-imported roster never exists.
"""

from __future__ import annotations

import csv
import io
import re

from agent.centre.brokers import REGION
from agent.centre.fleet import TIER_ORDER
from agent.centre.store import RosterEntry
from agent.errors import RosterError
from agent.messages import Message, message

COLUMNS = ("id", "name", "tier", "parent", "summoned")
OPTIONAL = ("region",)
# The agent's own rule for a site id (agent/config.py SiteSettings.site_id).
_SITE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
_MAX_NAME = 200
_MAX_SUMMONED = 1_000_000
_HINT = "roster.hint.fix_row"


def _bad(line: int, column: str, problem: Message) -> RosterError:
    return RosterError(
        message("roster.error.at", line=line, column=column, problem=problem), message(_HINT)
    )


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RosterError(
            message("roster.error.not_utf8", line=line, byte=f"0x{data[exc.start]:02x}"),
            message("roster.hint.utf8"),
        ) from None


def _header(fields: list[str]) -> dict[str, int]:
    names = [f.strip().lower() for f in fields]
    where: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in COLUMNS + OPTIONAL and name in where:
            raise _bad(1, name, message("roster.error.column_twice"))
        where.setdefault(name, i)
    missing = [c for c in COLUMNS if c not in where]
    if missing:
        raise RosterError(
            message("roster.error.missing_columns", missing=", ".join(missing)),
            message("roster.hint.header", columns=",".join(COLUMNS)),
        )
    return where


def _summoned(text: str, line: int) -> int | None:
    if not text:
        return None
    try:
        value = int(text)
    except ValueError:
        raise _bad(line, "summoned", message("roster.error.not_number", value=text)) from None
    if value < 0 or value > _MAX_SUMMONED:
        problem = message("roster.error.summoned_range", value=value, max=_MAX_SUMMONED)
        raise _bad(line, "summoned", problem)
    return value


def _entry(row: list[str], where: dict[str, int], width: int, line: int) -> RosterEntry:
    # More fields than the header names is a comma left unquoted in a name: every field
    # after it would land in the wrong column.
    if len(row) != width:
        raise RosterError(
            message("roster.error.short_row", line=line, count=len(row), want=width),
            message(_HINT),
        )
    cell = {c: row[where[c]].strip() for c in COLUMNS}
    site_id, parent = cell["id"], cell["parent"] or None
    if not _SITE_ID.fullmatch(site_id):
        raise _bad(line, "id", message("roster.error.bad_id", value=site_id))
    if not cell["name"]:
        raise _bad(line, "name", message("roster.error.no_name"))
    if len(cell["name"]) > _MAX_NAME:
        raise _bad(line, "name", message("roster.error.long_name", max=_MAX_NAME))
    if cell["tier"].lower() not in TIER_ORDER:
        tiers = ", ".join(TIER_ORDER)
        raise _bad(line, "tier", message("roster.error.bad_tier", value=cell["tier"], tiers=tiers))
    if parent is not None and (not _SITE_ID.fullmatch(parent) or parent == site_id):
        raise _bad(line, "parent", message("roster.error.bad_parent", value=parent))
    summoned = _summoned(cell["summoned"], line)
    region = row[where["region"]].strip() or None if "region" in where else None
    if region is not None and not REGION.fullmatch(region):
        raise _bad(line, "region", message("roster.error.bad_region", value=region))
    return RosterEntry(site_id, cell["name"], cell["tier"].lower(), parent, summoned, region)


def parse_roster(data: bytes) -> list[RosterEntry]:
    """Every row of the file, or RosterError naming the first bad one."""
    reader = csv.reader(io.StringIO(_text(data), newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise RosterError(
                message("roster.error.empty"),
                message("roster.hint.header", columns=",".join(COLUMNS)),
            )
        where = _header(header)
        entries: list[RosterEntry] = []
        first_line: dict[str, int] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line, as spreadsheets leave at the end
            entry = _entry(row, where, len(header), line)
            if entry.site_id in first_line:
                first = first_line[entry.site_id]
                problem = message("roster.error.duplicate", value=entry.site_id, first=first)
                raise _bad(line, "id", problem)
            first_line[entry.site_id] = line
            entries.append(entry)
    except csv.Error:
        raise RosterError(
            message("roster.error.csv", line=reader.line_num), message(_HINT)
        ) from None
    if not entries:
        raise RosterError(message("roster.error.no_rows"), message("roster.hint.no_rows"))
    return entries
