"""The byte pipe under a profile session: open a port with pyserial's serial_for_url (a
serial path, a pty from the emulator, or socket://host:port), read without ever blocking past
a timeout, close; plus the session's time budget and the hints shared by its errors."""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import socket
import termios
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import serial

from agent.errors import DeviceNotFound, DeviceTimeout, ProbeError
from agent.messages import Message, message
from agent.profiles.model import Profile, SerialTransport, TcpTransport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    """Where and as whom: the port (path or URL; None/'auto' for cec), device id, login."""

    port: str | None
    device_id: int = 1
    username: str | None = None
    password: str | None = None


_POLL_S = 0.02  # a read returns this soon when nothing comes: reads never block longer
MIN_WAIT_S = 0.01  # less time than this left: the query is not asked at all


def port_hint() -> Message:
    return message("profile.hint.port")


def hint_bad() -> Message:
    return message("profile.hint.bad")


def hint_refused() -> Message:
    return message("profile.hint.refused")


def hint_slow() -> Message:
    return message("profile.hint.slow")


@dataclass
class Clock:
    """The session's time budget: a deadline, and an optional cap on each wait."""

    deadline: float
    cap: float | None
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def timeout_for(self, wanted: float) -> float:
        limit = wanted if self.cap is None else min(wanted, self.cap)
        return max(0.0, min(limit, self.remaining()))


def silent_error(label: Message, clock: Clock, hint: Message) -> DeviceTimeout:
    return DeviceTimeout(message("profile.silent", target=label, seconds=clock.elapsed()), hint)


def hint_silent(profile: Profile, port: str) -> Message:
    if isinstance(profile.transport, SerialTransport) and not port.startswith("socket://"):
        t = profile.transport  # its describe() says "serial": a word the reader may not read
        line = f"{t.baud} {t.bytesize}{t.parity}{t.stopbits:g}"
        return message("profile.hint.silent_serial", port=port, line=line)
    return message("profile.hint.silent_network")


def port_url(port: str, profile: Profile) -> str:
    """A path or URL pyserial opens; 'host' or 'host:port' for TCP profiles gets socket://."""
    if "://" in port or port.startswith("/"):
        return port
    if isinstance(profile.transport, TcpTransport):
        return f"socket://{port}" if ":" in port else f"socket://{port}:{profile.transport.port}"
    return port


class Link:
    """A pyserial port with reads that never block past their timeout."""

    def __init__(self, ser: Any, label: Message) -> None:
        self.ser = ser
        self.label = label
        self.heard = False  # the device has sent at least one byte
        self.answered = False  # a query got more than an echo back

    def write(self, data: bytes, what: Message) -> None:
        try:
            # No flush(): tcdrain() can block on flow control, and fails with EIO when the
            # device answers and hangs up before it returns.
            self.ser.write(data)
        except (serial.SerialException, OSError, termios.error) as exc:
            raise ProbeError(
                message("profile.cannot_send", target=self.label, what=what, error=str(exc)),
                message("profile.hint.line_dropped"),
            ) from None

    def poll(self, timeout: float, what: Message) -> bytes:
        """Some bytes, or b"" when none came within timeout."""
        end = time.monotonic() + timeout
        while True:
            try:
                waiting = self.ser.in_waiting
                chunk = bytes(self.ser.read(waiting or 1))
            except (serial.SerialException, OSError, termios.error) as exc:
                raise ProbeError(
                    message(
                        "profile.connection_lost", target=self.label, what=what, error=str(exc)
                    ),
                    message("profile.hint.mid_reply"),
                ) from None
            if chunk:
                self.heard = True
                return chunk
            if time.monotonic() >= end:
                return b""

    def wait_for(self, patterns: Sequence[re.Pattern[str]], timeout: float, what: Message) -> str:
        """Read until one pattern matches the text so far, or timeout; return the text."""
        return self.wait_until(lambda t: any(p.search(t) for p in patterns), timeout, what)

    def wait_until(self, done: Callable[[str], bool], timeout: float, what: Message) -> str:
        """Read until done(text so far), or timeout; return the text."""
        text = ""
        end = time.monotonic() + timeout
        while True:
            if done(text):
                return text
            remaining = end - time.monotonic()
            if remaining <= 0:
                return text
            text += self.poll(remaining, what).decode("latin-1")

    def drain(self) -> bytes:
        try:
            waiting = self.ser.in_waiting
            return bytes(self.ser.read(waiting)) if waiting else b""
        except (serial.SerialException, OSError, termios.error):
            return b""


def open_port(profile: Profile, url: str, label: Message) -> Any:
    try:
        ser = serial.serial_for_url(url, do_not_open=True)
    except (ValueError, serial.SerialException) as exc:
        raise DeviceNotFound(
            message("profile.not_a_port", target=label, error=str(exc)), port_hint()
        ) from None
    transport = profile.transport
    if isinstance(transport, SerialTransport):
        ser.baudrate = transport.baud
        ser.bytesize = transport.bytesize
        ser.parity = transport.parity
        ser.stopbits = transport.stopbits
        ser.rtscts = transport.flow_control == "rtscts"
        ser.xonxoff = transport.flow_control == "xonxoff"
    ser.timeout = _POLL_S
    ser.write_timeout = 2.0
    if url.startswith("socket://"):
        # pyserial's socket open() ends with reset_input_buffer(), which throws away what the
        # device sends on connect: the PJLink greeting, an MDC display's MDCSTART<<TLS>>.
        ser.reset_input_buffer = lambda: None
    try:
        ser.open()
    except (serial.SerialException, OSError) as exc:
        raise open_error_for(exc, label, url) from None
    finally:
        if url.startswith("socket://"):
            del ser.reset_input_buffer
    if isinstance(transport, SerialTransport) and transport.dtr is not None:
        try:
            ser.dtr = transport.dtr
        except OSError as exc:
            # A pty (the emulator, some USB adapters) has no modem lines: ENOTTY/EINVAL.
            if exc.errno not in (errno.ENOTTY, errno.EINVAL):
                raise ProbeError(
                    message("profile.no_dtr", target=label, error=str(exc)), port_hint()
                ) from None
            log.debug("%s: no modem lines (%s); DTR left as is", label.text, exc)
    return ser


def open_error_for(exc: Exception, label: Message, url: str) -> ProbeError:
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOENT or "No such file" in text:
        return DeviceNotFound(message("profile.port_missing", target=label, url=url), port_hint())
    if code == errno.EACCES or "Permission denied" in text:
        return DeviceNotFound(
            message("profile.permission", target=label, url=url), message("profile.hint.dialout")
        )
    if url.startswith("socket://"):
        address = url.removeprefix("socket://")
        return DeviceNotFound(
            message("profile.cannot_connect", target=label, address=address, error=_why(exc)),
            message("profile.hint.silent_network"),
        )
    return DeviceNotFound(
        message("profile.cannot_open", target=label, url=url, error=text), port_hint()
    )


def _why(exc: Exception) -> str | Message:
    """A refused or timed-out connect in the reader's words; anything else as pyserial says."""
    text = str(exc)
    if "refused" in text.lower():
        return message("network.error.refused")
    if "timed out" in text.lower():
        return message("network.error.timeout")
    return text


def close_port(ser: Any, label: Message) -> None:
    sock = getattr(ser, "_socket", None)
    if sock is not None:
        # pyserial's socket:// close() sleeps 0.3 s "for quick reconnects"; we do not
        # reconnect at once, and a check should not pay for it.
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        ser._socket = None
        ser.is_open = False
        return
    try:
        ser.close()
    except (serial.SerialException, OSError):
        log.debug("%s: close failed", label.text, exc_info=True)
