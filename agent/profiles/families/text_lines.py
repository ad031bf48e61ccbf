"""Text lines: a command line out, reply lines back.

Covers the Cisco xAPI terminal mode (`*s` status lines, `** end`, then `OK` or `ERROR`), the
Poly Group / HDX API (one CRLF line per answer; the HDX first echoes the command ending LF CR),
and LG RS-232 (a single reply ending in a literal `x`, no CR).

A reply is complete when a line matches the family's `done` regex (or the query's `until`);
families without such a line (Poly, LG) complete when the query's pattern matches a complete
line. Only complete lines are ever matched, so a line cut in the middle never passes.
"""

from __future__ import annotations

import re

from agent.errors import BadReply
from agent.messages import message
from agent.profiles.families import DeviceErrorReply, extract_text, preview
from agent.profiles.model import Query, TextLinesFamily


def command_text(query: Query, device_id: int) -> str:
    assert query.send is not None
    return query.send.format(id=device_id)


def encode(family: TextLinesFamily, query: Query, device_id: int) -> bytes:
    return (command_text(query, device_id) + family.send_ending).encode("latin-1")


def complete_lines(text: str, family: TextLinesFamily, sent: str = "") -> list[str]:
    """The complete reply lines in `text`, cleaned: echo quirks removed, CRs and blank lines
    dropped. Text after the last line ending is an unfinished line and is not returned."""
    pieces = text.split(family.reply_ending)[:-1]
    lines = []
    for piece in pieces:
        text_part = piece
        if family.echo == "lf_cr" and "\n\r" in piece:
            # HDX: "<command>\n\r" echo, then the real answer up to CRLF.
            text_part = piece.rsplit("\n\r", 1)[1]
        line = text_part.strip("\r\n\x00")
        if family.reply_ending != "\r\n":
            line = line.strip()
        if not line:
            continue
        if family.echo in ("command", "lf_cr") and sent and line.strip() == sent.strip():
            continue
        lines.append(line)
    return lines


def without_echo(text: str, family: TextLinesFamily, sent: str) -> str:
    """`text` with the device's echo of `sent` removed (to tell an echo from an answer)."""
    if family.echo == "lf_cr":
        return text.replace(sent + "\n\r", "")
    if family.echo == "command":
        return "".join(
            piece for piece in text.split(family.reply_ending) if piece.strip() != sent.strip()
        )
    return text


def decode(family: TextLinesFamily, query: Query, buf: bytes, sent: str) -> dict[str, str] | None:
    """Fields when the reply in `buf` is complete, None when more is needed.

    Raises DeviceErrorReply for an error line, BadReply for a complete reply that does not
    say what the query expects.
    """
    lines = complete_lines(buf.decode("latin-1"), family, sent)
    if not lines:
        return None
    errors = [re.compile(e) for e in family.errors]
    done_pattern = query.until or family.done
    pattern = re.compile(query.pattern, re.MULTILINE) if query.pattern else None
    if done_pattern is not None:
        done = re.compile(done_pattern)
        end = next((i for i, line in enumerate(lines) if done.search(line)), None)
        if end is None:
            return None
        block = lines[: end + 1]
        if any(e.search(line) for e in errors for line in block):
            raise DeviceErrorReply(
                message("profile.reply.device_error", text=" | ".join(block)[:160])
            )
        return _fields(pattern, block, query)
    for line in lines:
        if any(e.search(line) for e in errors):
            raise DeviceErrorReply(message("profile.reply.device_error", text=line[:160]))
    if pattern is None:
        return {}
    match = pattern.search("\n".join(lines))
    return extract_text(match, query) if match else None


def _fields(pattern: re.Pattern[str] | None, block: list[str], query: Query) -> dict[str, str]:
    if pattern is None:
        return dict(query.defaults)
    match = pattern.search("\n".join(block))
    if match is None and not query.defaults:
        raise BadReply(message("profile.reply.off_topic", preview=preview(" | ".join(block), 120)))
    return extract_text(match, query)
