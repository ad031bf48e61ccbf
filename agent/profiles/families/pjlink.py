"""PJLink (JBMIA PJLink specification, class 1; TCP 4352).

On connect the projector greets `PJLINK 0` (no authentication) or `PJLINK 1 <random>`; then
the first command is prefixed with md5(random + password) in lower-case hex. Commands are
`%1CMND param\\r`, replies `%1CMND=value\\r`; `ERR1`..`ERR4` are errors and `PJLINK ERRA`
means the password was refused.
"""

from __future__ import annotations

import hashlib
import re

from agent.errors import BadReply
from agent.messages import message
from agent.profiles.families import DeviceErrorReply, LoginRefused, extract_text, preview
from agent.profiles.model import Query

ENDING = "\r"
# What the projector's error answers mean, said in the reader's language.
ERRORS = {
    "ERR1": message("profile.pjlink_error.err1"),
    "ERR2": message("profile.pjlink_error.err2"),
    "ERR3": message("profile.pjlink_error.err3"),
    "ERR4": message("profile.pjlink_error.err4"),
}


_GREETING = re.compile(r"^PJLINK (?:(0)|1 ([0-9A-Za-z]+))$")


def parse_greeting(line: str) -> str | None:
    """The random token of an authenticating projector, None when it needs none."""
    text = line.strip()
    if text == "PJLINK ERRA":
        raise LoginRefused(
            message("profile.reply.pjlink_password_refused"),
            message("profile.hint.check_pjlink_password"),
        )
    match = _GREETING.match(text)
    if match is None:
        raise BadReply(message("profile.reply.not_pjlink_greeting", preview=preview(line)))
    return None if match.group(1) == "0" else match.group(2)


def auth_prefix(random: str, password: str) -> str:
    # PJLink's own scheme (spec section 5.1); MD5 is what the projector checks.
    return hashlib.md5((random + password).encode("utf-8"), usedforsecurity=False).hexdigest()


def command_name(query: Query) -> str:
    assert query.send is not None
    return query.send.split(" ", 1)[0]


def encode(query: Query, prefix: str = "") -> bytes:
    assert query.send is not None
    return (prefix + query.send + ENDING).encode("latin-1")


def decode(buf: bytes, query: Query) -> dict[str, str] | None:
    text = buf.decode("latin-1")
    if ENDING not in text:
        return None
    line = text.split(ENDING, 1)[0].strip("\n\x00")
    if line.strip() == "PJLINK ERRA":
        raise LoginRefused(
            message("profile.reply.pjlink_password_refused"),
            message("profile.hint.pjlink_password"),
        )
    name = command_name(query)
    if not line.startswith(name + "="):
        raise BadReply(message("profile.reply.pjlink_wrong", name=name, preview=preview(line)))
    value = line[len(name) + 1 :]
    if value in ERRORS:
        raise DeviceErrorReply(
            message("profile.reply.pjlink_error", value=value, meaning=ERRORS[value], name=name)
        )
    if query.pattern is None:
        return dict(query.defaults)
    match = re.search(query.pattern, value)
    if match is None:
        raise BadReply(message("profile.reply.pjlink_value", name=name, preview=preview(value)))
    return extract_text(match, query)
