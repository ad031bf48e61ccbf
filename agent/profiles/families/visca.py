"""Sony VISCA packets (EVI-D70, SRG-300H, BRC-300 technical manuals; FCB VISCA command list).

Request: `8x <payload> FF`, x = camera address 1..7. Replies start `(x+8)<<4` (0x90 for
camera 1) and end 0xFF, 3..16 bytes: ACK `y0 4z FF`, completion `y0 5z FF`, inquiry answer
`y0 50 <data> FF`, error `y0 6z EE FF`.
"""

from __future__ import annotations

from agent.errors import BadReply
from agent.messages import message
from agent.profiles.families import DeviceErrorReply, hex_preview
from agent.profiles.model import Query

TERMINATOR = 0xFF
MAX_PACKET = 16
# What the camera's error codes mean, said in the reader's language.
ERRORS = {
    0x01: message("profile.visca_error.length"),
    0x02: message("profile.visca_error.syntax"),
    0x03: message("profile.visca_error.buffer_full"),
    0x04: message("profile.visca_error.cancelled"),
    0x05: message("profile.visca_error.no_socket"),
    0x41: message("profile.visca_error.not_executable"),
}
_UNKNOWN_ERROR = message("profile.visca_error.unknown")


def encode(query: Query, device_id: int) -> bytes:
    if not 1 <= device_id <= 7:
        raise ValueError(f"VISCA camera address must be 1..7, got {device_id}")
    return bytes([0x80 | device_id]) + query.payload() + bytes([TERMINATOR])


def decode(buf: bytes, device_id: int) -> bytes | None:
    """The data bytes of the completion / inquiry answer in `buf`, or None when more is
    needed. ACK packets are skipped (a command is ACKed before it completes)."""
    header = (device_id + 8) << 4
    pos = 0
    while True:
        end = buf.find(TERMINATOR, pos)
        if end < 0:
            if len(buf) - pos > MAX_PACKET:
                raise BadReply(message("profile.reply.visca_no_end", data=hex_preview(buf[pos:])))
            return None
        packet = buf[pos : end + 1]
        pos = end + 1
        if len(packet) < 3 or len(packet) > MAX_PACKET:
            raise BadReply(
                message(
                    "profile.reply.visca_not_packet", size=len(packet), packet=hex_preview(packet)
                )
            )
        if packet[0] != header:
            raise BadReply(
                message(
                    "profile.reply.visca_wrong_address",
                    packet=hex_preview(packet),
                    header=f"{header:02X}",
                )
            )
        kind = packet[1] & 0xF0
        if kind == 0x40:
            continue
        if kind == 0x50:
            return packet[2:-1]
        if kind == 0x60:
            code = packet[2] if len(packet) > 3 else -1
            meaning = ERRORS.get(code, _UNKNOWN_ERROR)
            raise DeviceErrorReply(
                message(
                    "profile.reply.visca_error",
                    code=f"{code:02X}",
                    meaning=meaning,
                    packet=hex_preview(packet),
                )
            )
        raise BadReply(message("profile.reply.visca_unexpected", packet=hex_preview(packet)))
