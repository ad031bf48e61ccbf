"""Status LED driver: shows agent.led patterns through the Linux LED class.

It speaks the Linux LED class (/sys/class/leds/<name>/): `trigger`, `delay_on`,
`delay_off`, `brightness`, `max_brightness` (Documentation/leds/leds-class.rst).

Why the timer trigger is selected once and then left alone: the kernel creates delay_on and
delay_off when `timer` is written to `trigger`, and removes them when the trigger changes or
0 is written to `brightness`. Files it recreates belong to root, mode 0644, so the agent's
unprivileged user could no longer write them. So every pattern is expressed through the
delays alone: delay_on=0 is dark, delay_off=0 is steady, both set is blinking; `brightness`
is only ever written with the on-level (which sets the blink brightness and keeps the
timer). `prepare_leds()` (run as root before the service starts: `edge-agent led --prepare`)
selects the timer trigger and hands the files to the agent's group.

Order of writes, as the kernel needs it: trigger (only when timer is not already active),
then the delays (the non-zero one first: both at 0 at once would make the kernel fall back
to 500/500 ms), then brightness.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from agent.errors import DeviceNotFound, ProbeError
from agent.led.patterns import PATTERNS, Colour, LedSettings, Light, Pattern, kernel_delays
from agent.messages import message

Writer = Callable[[Path, str], None]


def write_attribute(path: Path, value: str) -> None:
    """Write a sysfs attribute: no O_CREAT (sysfs files cannot be created; a missing one is
    an error, exactly as on the kernel), O_TRUNC like the shell's `echo x > file`."""
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def active_trigger(text: str) -> str | None:
    """The [bracketed] trigger of a `trigger` listing."""
    for word in text.split():
        if word.startswith("[") and word.endswith("]"):
            return word[1:-1]
    return None


def leds_dir(sysfs_root: Path) -> Path:
    return sysfs_root / "class" / "leds"


def available_leds(sysfs_root: Path) -> list[str]:
    base = leds_dir(sysfs_root)
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def find_led(sysfs_root: Path, name: str) -> Path:
    """The LED's class directory, or DeviceNotFound naming it and listing what exists."""
    path = leds_dir(sysfs_root) / name
    if (path / "brightness").exists():
        return path
    present = available_leds(sysfs_root)
    where = leds_dir(sysfs_root)
    if not present:
        raise DeviceNotFound(
            message("led.none_here", name=name, folder=str(where)),
            message("led.none_here_hint"),
        )
    raise DeviceNotFound(
        message("led.not_found", name=name, folder=str(where), present=", ".join(present)),
        message("led.not_found_hint"),
    )


class LedDriver:
    """Shows patterns on the configured LED(s); writes only when the pattern changes."""

    def __init__(
        self, sysfs_root: Path, settings: LedSettings, write: Writer = write_attribute
    ) -> None:
        self._write = write
        self._leds = {colour: find_led(sysfs_root, n) for colour, n in settings.names().items()}
        self._levels = {colour: _max_brightness(path) for colour, path in self._leds.items()}
        self.current: Pattern | None = None

    @property
    def leds(self) -> Mapping[Colour, Path]:
        return self._leds

    def show(self, pattern: Pattern, *, force: bool = False) -> bool:
        """Put `pattern` on the LED(s); False when it was already showing."""
        if pattern is self.current and not force:
            return False
        spec = PATTERNS[pattern]
        # Forget what is showing first: a write that fails half-way must be redone in full.
        self.current = None
        for colour, path in self._leds.items():
            self._apply(path, spec.light(colour), self._levels[colour])
        self.current = pattern
        return True

    def _apply(self, path: Path, light: Light, level: int) -> None:
        trigger = _read(path / "trigger")
        if active_trigger(trigger) != "timer":
            self._attr(path, "trigger", "timer")
        delay_on, delay_off = kernel_delays(light)
        first, second = ("delay_on", delay_on), ("delay_off", delay_off)
        if delay_on == 0:
            first, second = second, first
        for attr, value in (first, second):
            self._attr(path, attr, str(value))
        self._attr(path, "brightness", str(level))

    def _attr(self, path: Path, attr: str, value: str) -> None:
        try:
            self._write(path / attr, value)
        except FileNotFoundError:
            raise ProbeError(
                message("led.no_timer_attr", name=path.name, attr=attr),
                message("led.no_timer_attr_hint"),
            ) from None
        except PermissionError:
            raise ProbeError(
                message("led.denied", name=path.name, attr=attr), message("led.denied_hint")
            ) from None
        except OSError as exc:
            if exc.errno == errno.EROFS:
                raise ProbeError(
                    message("led.read_only", name=path.name, attr=attr),
                    message("led.read_only_hint"),
                ) from None
            if exc.errno == errno.EINVAL and attr == "trigger":
                raise ProbeError(
                    message("led.timer_refused", name=path.name), message("led.timer_hint")
                ) from None
            raise ProbeError(
                message("led.cannot_write", name=path.name, attr=attr, error=_why(exc)),
                message("led.check_hint"),
            ) from None


def _why(exc: OSError) -> str:
    """The system's own words for an OS error (they stay as the system says them)."""
    return str(exc.strerror or exc)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise ProbeError(
            message("led.cannot_read", name=path.parent.name, attr=path.name, error=_why(exc)),
            message("led.check_hint"),
        ) from None


def _max_brightness(path: Path) -> int:
    text = _read(path / "max_brightness").strip()
    try:
        level = int(text)
    except ValueError:
        level = 0
    if level <= 0:
        raise ProbeError(
            message("led.bad_brightness", name=path.name, value=text),
            message("led.bad_brightness_hint"),
        )
    return level


def prepare_leds(
    sysfs_root: Path, names: Iterable[str], gid: int, write: Writer = write_attribute
) -> list[Path]:
    """As root: select the timer trigger and let group `gid` write the LED's attributes.

    Run before the unprivileged service starts (ExecStartPre=+). Returns the files changed.
    """
    changed: list[Path] = []
    for name in names:
        path = find_led(sysfs_root, name)
        if active_trigger(_read(path / "trigger")) != "timer":
            try:
                write(path / "trigger", "timer")
            except OSError as exc:
                raise ProbeError(
                    message("led.no_timer", name=name, error=_why(exc)), message("led.timer_hint")
                ) from None
        for attr in ("trigger", "brightness", "delay_on", "delay_off"):
            target = path / attr
            os.chown(target, -1, gid)
            os.chmod(target, 0o664)
            changed.append(target)
    return changed
