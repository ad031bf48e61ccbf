"""The device emulator: plays a recorded device over a real pseudo-terminal or TCP.

    with PtyDevice(load_recording("cisco-roomos_ce9.15")) as dev:
        settings.codec.port = dev.port          # e.g. /dev/pts/7, opened with pyserial

    with TcpDevice(load_recording("pjlink_class1")) as dev:
        settings.display.port = dev.url         # socket://127.0.0.1:PORT

The agent's side is the real one: pyserial opens the pty's slave (or the TCP socket) exactly
as it opens /dev/ttyUSB0. Replies come from the recording (transcribed from the vendor's
guide), never from the profile under test. A fault mode makes the device misbehave; see
agent.sim.recording.Fault.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import socket
import threading
import tty
from collections.abc import Callable
from typing import Self

from agent.sim.recording import (
    Action,
    Fault,
    Recording,
    Responder,
    list_recordings,
    load_recording,
)
from agent.sim.service import Service

__all__ = ["Fault", "PtyDevice", "Recording", "TcpDevice", "list_recordings", "load_recording"]

log = logging.getLogger(__name__)
_TICK_S = 0.05


class _Device(Service):
    def __init__(
        self,
        recording: Recording,
        fault: Fault | str | None,
        slow_s: float,
        scenario: str | None = None,
    ) -> None:
        self.recording = recording
        self.fault = Fault(fault) if fault else None
        self.slow_s = slow_s
        self.scenario = scenario
        # Built now so a fault (or scenario) the recording cannot play is an error at once.
        self._responder = Responder(recording, self.fault, slow_s=slow_s, scenario=scenario)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.requests: list[bytes] = []

    def _play(self, actions: list[Action], write: Callable[[bytes], None]) -> bool:
        """Perform actions; False when the line must be dropped (or we are stopping)."""
        for action in actions:
            if action.delay_s and self._stop.wait(action.delay_s):
                return False
            if action.data:
                write(action.data)
            if action.close:
                return False
        return True

    def _start_thread(self, target: Callable[[], None], name: str) -> None:
        self._thread = threading.Thread(target=target, name=name, daemon=True)
        self._thread.start()

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
            self._thread = None


class PtyDevice(_Device):
    """A recorded device on a real pseudo-terminal.

    Args:
        recording: what the device says, e.g. ``load_recording("cisco-roomos_ce9.15")``.
        fault: None, or a Fault (or its name): silent, slow, garbage, partial,
            bad_checksum (checksummed framings only), error_reply, disconnect.
        slow_s: how late the ``slow`` fault answers (default 1 s).
        scenario: a call scenario of the recording (its ``[[scenarios.<name>]]`` steps,
            e.g. "loss_ramp"): the replies change as the agent polls, or on a ``Dial``.

    ``port`` (also ``url``) is the slave's path for the agent to open; the device answers
    once started (start() or entering the context) until stop(); ``requests`` lists every
    request it received. The
    emulator keeps its own slave fd open, so the agent may open and close the port
    repeatedly, like a real serial line (a login survives, as on a real codec).
    """

    def __init__(
        self,
        recording: Recording,
        fault: Fault | str | None = None,
        *,
        slow_s: float = 1.0,
        scenario: str | None = None,
    ) -> None:
        super().__init__(recording, fault, slow_s, scenario)
        # The pty exists from construction, so `port` can go into settings before start();
        # what the agent sends meanwhile waits in the pty until the device starts reading.
        self._master, self._slave = os.openpty()
        self._write_lock = threading.Lock()
        tty.setraw(self._slave)
        self.port = os.ttyname(self._slave)

    @property
    def url(self) -> str:
        return self.port

    def jump(self, step: str) -> None:
        """Move the call scenario to its step `step` now (e.g. "dropped"): the line keeps
        one device state for its life, as a codec does (TCP devices start afresh per
        connection, so they have no jump). When the line has registered for feedback, the
        step's `push` lines go out at once, unasked, as the codec's would."""
        pushed = self._responder.jump(step)
        if pushed:
            self._write(pushed)

    def start(self) -> Self:
        if self._thread is None:
            self._start_thread(self._serve, f"pty-{self.recording.name}")
        return self

    def _write(self, data: bytes) -> None:
        # A push (the test's thread) must not land inside a reply (the device's thread).
        with self._write_lock, contextlib.suppress(OSError):
            os.write(self._master, data)

    def _serve(self) -> None:
        responder = self._responder
        alive = self._play(responder.on_connect(), self._write)
        while alive and not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], _TICK_S)
            if not ready:
                continue
            try:
                data = os.read(self._master, 4096)
            except OSError:
                continue
            actions = responder.feed(data)
            self.requests = list(responder.requests)
            alive = self._play(actions, self._write)
        if not alive and not self._stop.is_set():
            # "disconnect": the device side goes away mid-reply, as when a cable is pulled.
            self._close_master()

    def _close_master(self) -> None:
        if self._master >= 0:
            with contextlib.suppress(OSError):
                os.close(self._master)
            self._master = -1

    def stop(self) -> None:
        super().stop()
        self._close_master()
        if self._slave >= 0:
            with contextlib.suppress(OSError):
                os.close(self._slave)
            self._slave = -1


class TcpDevice(_Device):
    """A recorded device behind a TCP port on 127.0.0.1 (PJLink, MDC over TCP).

    Args: as PtyDevice, plus ``host`` and ``port`` (0: any free port).

    After start(), ``port`` is the bound TCP port and ``url`` is ``socket://127.0.0.1:PORT``
    (what pyserial's serial_for_url opens). Each connection gets a fresh device state
    (greeting, authentication), as a projector gives each TCP session.
    """

    def __init__(
        self,
        recording: Recording,
        fault: Fault | str | None = None,
        *,
        slow_s: float = 1.0,
        scenario: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(recording, fault, slow_s, scenario)
        self.host = host
        self.port = port
        self._sock: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"socket://{self.host}:{self.port}"

    def start(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(4)
        sock.settimeout(_TICK_S)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._start_thread(self._serve, f"tcp-{self.recording.name}")
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        responder = Responder(
            self.recording, self.fault, slow_s=self.slow_s, scenario=self.scenario
        )
        conn.settimeout(_TICK_S)

        def write(data: bytes) -> None:
            with contextlib.suppress(OSError):
                conn.sendall(data)

        alive = self._play(responder.on_connect(), write)
        while alive and not self._stop.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            seen = len(responder.requests)
            actions = responder.feed(data)
            self.requests += responder.requests[seen:]
            alive = self._play(actions, write)

    def stop(self) -> None:
        super().stop()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
