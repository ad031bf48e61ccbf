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
            raise BadReply(
                "display wants MDC over TLS (it sent MDCSTART<<TLS>>), which the agent "
                "does not speak; turn off 'Secured protocol' in the display's menu or use RS-232"
            )
        return None
    if buf[0] != HEADER:
        raise BadReply(f"not an MDC frame (expected AA first): {hex_preview(buf)}")
    if len(buf) < 4:
        return None
    length = buf[3]
    total = 4 + length + 1
    if len(buf) < total:
        return None
    frame = buf[:total]
    if frame[1] != REPLY:
        raise BadReply(f"MDC frame is not a reply (byte 2 is {frame[1]:02X}): {hex_preview(frame)}")
    want = checksum(frame[1:-1])
    if frame[-1] != want:
        raise BadReply(
            f"MDC checksum wrong: got {frame[-1]:02X}, expected {want:02X} "
            f"(line noise? check the cable): {hex_preview(frame)}"
        )
    if device_id != BROADCAST_ID and frame[2] != device_id:
        raise BadReply(f"MDC reply from display {frame[2]}, asked display {device_id}")
    if length < 2:
        raise BadReply(f"MDC reply too short: {hex_preview(frame)}")
    status, rcmd, data = frame[4], frame[5], frame[6:-1]
    if rcmd != command:
        raise BadReply(f"MDC reply to command {rcmd:02X}, asked {command:02X}")
    if status == NAK:
        code = f"{data[0]:02X}" if data else "none"
        raise DeviceErrorReply(
            message("profile.reply.mdc_nak", command=f"{command:02X}", code=code)
        )
    if status != ACK:
        raise BadReply(f"MDC reply is neither ACK nor NAK: {hex_preview(frame)}")
    return data
