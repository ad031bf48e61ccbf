"""Protocol families: one small module each, pure functions that frame a request and parse a
reply. No I/O here: agent/profiles/session.py moves the bytes.

Shared here: the error types a family raises beyond agent.errors, and field extraction (the
profile says which named group or which data bytes hold a field, and how to map raw values).
"""

from __future__ import annotations

import re

from agent.errors import BadReply, ProbeError
from agent.messages import message
from agent.profiles.model import FieldSpec, Query


class DeviceErrorReply(BadReply):
    """The device understood the framing and answered with its own error (ERROR, NAK,
    ERR3, a VISCA error packet)."""


class LoginRefused(ProbeError):
    """The device refused our user name / password."""


def preview(data: bytes | str, limit: int = 60) -> str:
    """A short, printable rendering of what the device sent, for reasons and logs."""
    text = data if isinstance(data, str) else data.decode("latin-1")
    shown = repr(text[:limit])
    return shown + ("..." if len(text) > limit else "")


def hex_preview(data: bytes, limit: int = 24) -> str:
    shown = data[:limit].hex(" ").upper()
    return shown + (" ..." if len(data) > limit else "")


def _mapped(value: str, spec: FieldSpec | None) -> str:
    if spec is None or not spec.map:
        return value
    lowered = {k.lower(): v for k, v in spec.map.items()}
    return lowered.get(value.lower(), value)


def extract_text(match: re.Match[str] | None, query: Query) -> dict[str, str]:
    """Fields from a pattern match (named groups that matched), filled from defaults."""
    found = {k: v for k, v in (match.groupdict() if match else {}).items() if v is not None}
    out = dict(query.defaults)
    out.update(found)
    return {k: _mapped(v.strip(), query.fields.get(k)) for k, v in out.items()}


def extract_binary(payload: bytes, query: Query) -> dict[str, str]:
    """Fields from a reply's data bytes, as the profile's offsets and decodings say."""
    out = dict(query.defaults)
    for name, spec in query.fields.items():
        start = spec.offset or 0
        end = len(payload) if spec.length is None else start + spec.length
        if end > len(payload) or start > len(payload):
            raise BadReply(
                message(
                    "profile.reply.too_short_field",
                    field=name,
                    start=start,
                    end=end - 1,
                    size=len(payload),
                    data=hex_preview(payload),
                )
            )
        chunk = payload[start:end]
        if spec.decode == "hex":
            raw = chunk.hex().upper()
        elif spec.decode == "int":
            raw = str(int.from_bytes(chunk, "big"))
        else:
            raw = chunk.decode("ascii", errors="replace").strip("\x00 ")
        out[name] = _mapped(raw, spec)
    return out
