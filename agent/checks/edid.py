"""EDID block 0 decoding (VESA E-EDID 1.3/1.4). Pure: bytes in, fields out.

Byte layout facts (see shared PROTOCOLS.md, Linux drm_edid.c): the manufacturer id is
big-endian (three 5-bit letters, A=1) while product code and serial are little-endian;
several popular decoders get that backwards.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.errors import BadReply
from agent.messages import message

HEADER = bytes.fromhex("00ffffffffffff00")
BLOCK = 128
_DESCRIPTOR_OFFSETS = (54, 72, 90, 108)
_TAG_NAME = 0xFC
_TAG_SERIAL = 0xFF


@dataclass(frozen=True)
class Edid:
    manufacturer: str
    product_code: int
    serial_number: int
    week: int
    year: int
    version: str
    monitor_name: str | None
    serial_text: str | None
    extensions: int
    checksum_valid: bool


def _descriptor_text(block: bytes, tag: int) -> str | None:
    for offset in _DESCRIPTOR_OFFSETS:
        desc = block[offset : offset + 18]
        if desc[0:3] == b"\x00\x00\x00" and desc[3] == tag:
            raw = desc[5:18].split(b"\x0a", 1)[0]
            return raw.decode("ascii", errors="replace").strip()
    return None


def decode_edid(data: bytes) -> Edid:
    """Decode block 0. Raises BadReply for data that is not an EDID at all; a wrong
    checksum is reported in the result (the monitor still works, the data is suspect)."""
    if len(data) < BLOCK:
        raise BadReply(
            message("display.edid_short", size=len(data), minimum=BLOCK),
            message("display.hint.edid_corrupt"),
        )
    block = data[:BLOCK]
    if block[:8] != HEADER:
        raise BadReply(message("display.edid_header"), message("display.hint.edid_unreadable"))
    mfg = int.from_bytes(block[8:10], "big")
    letters = [(mfg >> shift) & 0x1F for shift in (10, 5, 0)]
    manufacturer = "".join(chr(ord("A") - 1 + v) if 1 <= v <= 26 else "?" for v in letters)
    return Edid(
        manufacturer=manufacturer,
        product_code=int.from_bytes(block[10:12], "little"),
        serial_number=int.from_bytes(block[12:16], "little"),
        week=block[16],
        year=1990 + block[17],
        version=f"{block[18]}.{block[19]}",
        monitor_name=_descriptor_text(block, _TAG_NAME),
        serial_text=_descriptor_text(block, _TAG_SERIAL),
        extensions=block[126],
        checksum_valid=sum(block) % 256 == 0,
    )
