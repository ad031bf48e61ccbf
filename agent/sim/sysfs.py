"""sysfs-shaped trees for a simulated site: DRM connectors (with EDID) and LED class devices.

Shaped like the kernel's: /sys/class/drm/card0-HDMI-A-1 is a symlink into
/sys/devices/.../drm/card0/, attribute files end with a newline, `edid` is raw binary
(empty when the sink gave none), and an LED's `trigger` lists every trigger with the active
one in brackets. Sources: drivers/gpu/drm/drm_sysfs.c, Documentation/leds/leds-class.rst.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_PCI_GPU = "devices/pci0000:00/0000:00:02.0"
_LED_PARENT = "devices/platform/leds"
LED_TRIGGERS = ("none", "timer", "heartbeat", "default-on", "mmc0")


def build_edid(
    *,
    manufacturer: str = "SAM",
    product_code: int = 0x0F99,
    serial_number: int = 0x01000E00,
    name: str = "SAMSUNG",
    serial_text: str | None = "H4ZN700123",
    week: int = 12,
    year: int = 2021,
    corrupt_checksum: bool = False,
) -> bytes:
    """A 128-byte EDID 1.3 block 0, written from the VESA layout (not from our decoder)."""
    block = bytearray(128)
    block[0:8] = b"\x00\xff\xff\xff\xff\xff\xff\x00"
    a, b, c = (ord(ch) - ord("A") + 1 for ch in manufacturer)
    block[8:10] = ((a << 10) | (b << 5) | c).to_bytes(2, "big")
    block[10:12] = product_code.to_bytes(2, "little")
    block[12:16] = serial_number.to_bytes(4, "little")
    block[16] = week
    block[17] = year - 1990
    block[18:20] = b"\x01\x03"
    # Detailed timing descriptor 1: 1920x1080@60 (148.5 MHz), as most TVs advertise.
    block[54:72] = bytes.fromhex("023a801871382d40582c4500c48e2100001e")
    descriptors = [(0xFC, name)]
    if serial_text is not None:
        descriptors.append((0xFF, serial_text))
    for offset, (tag, text) in zip((72, 90, 108), descriptors, strict=False):
        payload = text.encode("ascii")[:13]
        if len(payload) < 13:
            payload += b"\x0a" + b"\x20" * (12 - len(payload))
        block[offset : offset + 18] = b"\x00\x00\x00" + bytes([tag, 0]) + payload
    for offset in (72, 90, 108)[len(descriptors) :]:
        block[offset : offset + 18] = b"\x00\x00\x00\x10" + b"\x00" * 14  # dummy descriptor
    block[126] = 0
    block[127] = (-sum(block[:127])) % 256
    if corrupt_checksum:
        block[127] ^= 0x5A
    return bytes(block)


@dataclass
class Connector:
    name: str = "HDMI-A-1"
    card: int = 0
    status: str = "connected"
    enabled: str = "enabled"
    modes: list[str] = field(default_factory=lambda: ["1920x1080", "1280x720", "720x576"])
    edid: bytes = field(default_factory=build_edid)
    dpms: str = "On"


def _write(path: Path, text: str) -> None:
    path.write_text(text + "\n")


def add_connector(root: Path, conn: Connector) -> Path:
    """Create card<N>-<name> under <root>/devices and its /class/drm symlink."""
    card = f"card{conn.card}"
    dev_dir = root / _PCI_GPU / "drm" / card / f"{card}-{conn.name}"
    dev_dir.mkdir(parents=True, exist_ok=True)
    set_connector(dev_dir, conn)
    class_dir = root / "class" / "drm"
    class_dir.mkdir(parents=True, exist_ok=True)
    for link_name, target in ((card, dev_dir.parent), (f"{card}-{conn.name}", dev_dir)):
        link = class_dir / link_name
        if not link.is_symlink():
            link.symlink_to(os.path.relpath(target, class_dir))
    return class_dir / f"{card}-{conn.name}"


def set_connector(path: Path, conn: Connector) -> None:
    """Rewrite a connector's attributes (plug, unplug, new EDID)."""
    _write(path / "status", conn.status)
    _write(path / "enabled", conn.enabled)
    (path / "modes").write_text("".join(m + "\n" for m in conn.modes))
    (path / "edid").write_bytes(conn.edid)
    _write(path / "dpms", conn.dpms)


def add_led(root: Path, name: str, max_brightness: int = 255) -> Path:
    dev_dir = root / _LED_PARENT / "leds" / name
    dev_dir.mkdir(parents=True, exist_ok=True)
    _write(dev_dir / "brightness", "0")
    _write(dev_dir / "max_brightness", str(max_brightness))
    _write(dev_dir / "trigger", " ".join(f"[{t}]" if t == "none" else t for t in LED_TRIGGERS))
    # The kernel creates delay_on/delay_off only while the timer trigger is active; a
    # driver writing them must tolerate their absence, so they are not made here.
    class_dir = root / "class" / "leds"
    class_dir.mkdir(parents=True, exist_ok=True)
    link = class_dir / name
    if not link.is_symlink():
        link.symlink_to(os.path.relpath(dev_dir, class_dir))
    return link
