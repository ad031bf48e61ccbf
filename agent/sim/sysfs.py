"""sysfs-shaped trees for a simulated site: DRM connectors (with EDID) and LED class devices.

Shaped like the kernel's: /sys/class/drm/card0-HDMI-A-1 is a symlink into
/sys/devices/.../drm/card0/, attribute files end with a newline, `edid` is raw binary
(empty when the sink gave none), and an LED's `trigger` lists every trigger with the active
one in brackets. Sources: drivers/gpu/drm/drm_sysfs.c, Documentation/leds/leds-class.rst.
"""

from __future__ import annotations

import errno
import os
import time
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


# --- LED class behaviour ---------------------------------------------------------------
# Plain files cannot react to writes, so a driver under test writes through `led_write`,
# which does what the kernel's LED core and timer trigger do on the same write
# (drivers/leds/led-class.c, led-triggers.c, trigger/ledtrig-timer.c, led-core.c).

_TIMER_DEFAULT_MS = 500


def _led_dir(path: Path) -> Path:
    return path.parent


def _active(listing: str) -> str:
    for word in listing.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return "none"


def _triggers(listing: str) -> list[str]:
    return [word.strip("[]") for word in listing.split()]


def _set_trigger(led: Path, name: str) -> None:
    listing = (led / "trigger").read_text()
    old = _active(listing)
    _write(led / "trigger", " ".join(f"[{t}]" if t == name else t for t in _triggers(listing)))
    if name == old:
        return
    if old == "timer":
        for attr in ("delay_on", "delay_off"):
            (led / attr).unlink(missing_ok=True)
    if name == "timer":
        # Activation blinks at the stored delays, 500/500 when none were ever set.
        for attr in ("delay_on", "delay_off"):
            _write(led / attr, str(_TIMER_DEFAULT_MS))
    elif name == "none":
        _write(led / "brightness", "0")


def led_write(path: Path, value: str) -> None:
    """Write one LED attribute with the kernel's side effects; errors as the kernel's.

    - trigger: must be one the file lists (else EINVAL); `timer` creates delay_on/delay_off,
      leaving timer removes them, `none` turns the LED off;
    - brightness: clamped to max_brightness; 0 removes the trigger (stops the timer);
    - delay_on/delay_off: exist only under the timer trigger (else ENOENT, as the driver
      never creates files); both 0 fall back to 500/500.
    """
    led = _led_dir(path)
    text = value.strip()
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(path))
    if path.name == "trigger":
        if text not in _triggers(path.read_text()):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), str(path))
        _set_trigger(led, text)
        return
    try:
        number = int(text)
    except ValueError:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), str(path)) from None
    if number < 0:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL), str(path))
    if path.name == "brightness":
        if number == 0:
            _set_trigger(led, "none")
        maximum = int((led / "max_brightness").read_text())
        _write(path, str(min(number, maximum)))
    elif path.name in ("delay_on", "delay_off"):
        other = led / ("delay_off" if path.name == "delay_on" else "delay_on")
        if number == 0 and int(other.read_text()) == 0:
            _write(other, str(_TIMER_DEFAULT_MS))
            number = _TIMER_DEFAULT_MS
        _write(path, str(number))
    else:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))


@dataclass(frozen=True)
class LedView:
    """What someone looking at the LED would see."""

    lit: bool
    on_ms: int = 0  # 0 with lit: steady
    off_ms: int = 0

    @property
    def blinking(self) -> bool:
        return self.lit and self.off_ms > 0


def _number(path: Path) -> int:
    """An attribute's number. The kernel swaps an attribute's value at once; in this plain
    file tree the driver's write truncates first, so a look in between reads "": look again
    (CI saw it once: ValueError on '')."""
    for _ in range(100):
        if text := path.read_text().strip():
            return int(text)
        time.sleep(0.001)
    return int(path.read_text())


def led_view(led: Path) -> LedView:
    trigger = _active((led / "trigger").read_text())
    brightness = _number(led / "brightness")
    if trigger == "timer":
        on = _number(led / "delay_on")
        off = _number(led / "delay_off")
        if on == 0:
            return LedView(False)
        if off == 0:
            return LedView(True)
        return LedView(True, on, off)
    return LedView(brightness > 0)
