"""Samsung MDC frames (Samsung "MDC Protocol" guide; frame layout as in python-samsung-mdc).

Request `AA cmd id len data... cs`, reply `AA FF id len A|N rcmd data... cs`; the checksum
is the sum of every byte after AA, mod 256. Worked example (display 1, power query):
`AA 11 01 00 12` -> on `AA FF 01 03 41 11 01 56`, NAK `AA FF 01 03 4E 11 01 63`.

Why our own codec and not python-samsung-mdc: the library is well kept (BSD-3) but is
asyncio-only, pulls pyserial-asyncio for serial, and models each command as a class; a
health check needs three frames and one checksum, which is 40 lines here, runs on the same
blocking pyserial session as every other family and keeps the model in the profile file.
"""

from __future__ import annotations

from agent.errors import BadReply
from agent.messages import message
from agent.profiles.families import DeviceErrorReply, hex_preview
from agent.profiles.model import Query

HEADER = 0xAA
REPLY = 0xFF
ACK = 0x41  # 'A'
NAK = 0x4E  # 'N'
BROADCAST_ID = 0xFE
TLS_GREETING = b"MDCSTART"


def checksum(body: bytes) -> int:
    """Sum of the bytes after the AA header, mod 256."""
    return sum(body) % 256


def encode(query: Query, device_id: int) -> bytes:
    payload = query.payload()
    cmd, data = payload[0], payload[1:]
    body = bytes([cmd, device_id, len(data)]) + data
    return bytes([HEADER]) + body + bytes([checksum(body)])


def decode(buf: bytes, command: int, device_id: int) -> bytes | None:
    """The data bytes after rcmd in an ACK reply, or None when the frame is not complete."""
    if not buf:
        return None
    if buf.startswith(TLS_GREETING[: len(buf)]):
        if len(buf) >= len(TLS_GREETING):
            raise BadReply(message("profile.reply.mdc_tls"))
        return None
    if buf[0] != HEADER:
        raise BadReply(message("profile.reply.mdc_not_frame", frame=hex_preview(buf)))
    if len(buf) < 4:
        return None
    length = buf[3]
    total = 4 + length + 1
    if len(buf) < total:
        return None
    frame = buf[:total]
    if frame[1] != REPLY:
        raise BadReply(
            message("profile.reply.mdc_not_reply", byte=f"{frame[1]:02X}", frame=hex_preview(frame))
        )
    want = checksum(frame[1:-1])
    if frame[-1] != want:
        raise BadReply(
            message(
                "profile.reply.mdc_checksum",
                got=f"{frame[-1]:02X}",
                want=f"{want:02X}",
                frame=hex_preview(frame),
            )
        )
    if device_id != BROADCAST_ID and frame[2] != device_id:
        raise BadReply(message("profile.reply.mdc_other_display", got=frame[2], asked=device_id))
    if length < 2:
        raise BadReply(message("profile.reply.mdc_short", frame=hex_preview(frame)))
    status, rcmd, data = frame[4], frame[5], frame[6:-1]
    if rcmd != command:
        raise BadReply(
            message("profile.reply.mdc_other_command", got=f"{rcmd:02X}", asked=f"{command:02X}")
        )
    if status == NAK:
        code = f"{data[0]:02X}" if data else "none"
        raise DeviceErrorReply(
            message("profile.reply.mdc_nak", command=f"{command:02X}", code=code)
        )
    if status != ACK:
        raise BadReply(message("profile.reply.mdc_not_ack", frame=hex_preview(frame)))
    return data
