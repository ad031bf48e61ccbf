"""HDMI-CEC through libCEC's cec-client (Debian cec-utils, libcec 6.0.2).

`echo 'pow 0' | cec-client -s -d 1 [PORT]` prints `power status: on|standby|in transition
from on to standby|in transition from standby to on|unknown`. Without an adapter it prints
`autodetect FAILED` and exits 1 (checked on this machine, ~0.5 s); with a port that does not
exist it retries for ~10 s and prints `unable to open the device on port PORT`.
"""

from __future__ import annotations

import re

from agent.errors import BadReply, DeviceNotFound
from agent.messages import message
from agent.profiles.families import extract_text, preview
from agent.profiles.model import ProcessTransport, Query


def argv(transport: ProcessTransport, port: str | None) -> list[str]:
    args = list(transport.command)
    if port and port != "auto":
        args.append(port)
    return args


def stdin_text(query: Query, device_id: int) -> str:
    assert query.send is not None
    return query.send.format(id=device_id) + "\n"


def parse(stdout: str, returncode: int, query: Query) -> dict[str, str]:
    if "autodetect FAILED" in stdout:
        raise DeviceNotFound(
            message("profile.reply.cec_no_adapter"), message("profile.hint.cec_adapter")
        )
    unable = re.search(r"unable to open the device on port (\S+)", stdout)
    if unable:
        raise DeviceNotFound(
            message("profile.reply.cec_cannot_open", port=unable.group(1)),
            message("profile.hint.cec_adapter"),
        )
    match = re.search(query.pattern, stdout, re.MULTILINE) if query.pattern else None
    if match is None:
        tail = stdout.strip().splitlines()[-1:] or ["nothing"]
        raise BadReply(
            message("profile.reply.cec_unexpected", code=returncode, preview=preview(tail[0]))
        )
    return extract_text(match, query)
