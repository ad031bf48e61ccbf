"""Devices that can be unplugged, misbehave and come back while an agent keeps running.

The soak bench (bench/soak.py) injects faults into a running site, but the agent process
reads its device paths and audio server once, at start. So each device is reached through a
stable name that stays in the agent's settings while what it points to changes:

- `SwitchableSerial`: a symlink (as udev makes `/dev/serial/by-id/...`) to the pseudo-
  terminal of a recorded device. `set_fault()` swaps in a device with another fault mode;
  `unplug()` removes the link (the agent sees the port vanish, as with a pulled USB cable)
  and `replug()` brings a fresh device back under the same name.
- `RestartableAudio`: a directory holding links to the PulseAudio socket and cookie, which
  the agent's environment names. `restart()` kills the server, leaves the links dangling for
  a moment (the agent's microphone check fails), then starts a new server and repoints them.

Every swap is an atomic rename of a new link over the old one, so a reader never sees a
half-made name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path

from agent.sim.audio import PulseServer, TonePlayer
from agent.sim.serial_device import Fault, PtyDevice, Recording

log = logging.getLogger(__name__)


def _link(target: Path | str, name: Path) -> None:
    """Point `name` at `target` in one rename."""
    tmp = name.with_name(f".{name.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(target)
    tmp.replace(name)


class SwitchableSerial:
    """A recorded device on a pty behind the stable path `port`.

    Adopts an already running PtyDevice (e.g. a SimulatedSite's) or starts its own.
    """

    def __init__(self, recording: Recording, port: Path, device: PtyDevice | None = None):
        self.recording = recording
        self.port = port
        self.device = device or PtyDevice(recording).start()
        self.fault: Fault | None = self.device.fault
        self.plugged = True
        _link(self.device.port, port)

    def set_fault(self, fault: Fault | str | None) -> None:
        """Replace the device with one answering in `fault` mode (None: healthy)."""
        new = PtyDevice(self.recording, fault).start()
        _link(new.port, self.port)
        old, self.device = self.device, new
        self.fault, self.plugged = new.fault, True
        old.stop()

    def unplug(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.port.unlink()
        self.plugged = False
        self.device.stop()

    def replug(self) -> None:
        self.set_fault(None)

    def stop(self) -> None:
        self.device.stop()
        with contextlib.suppress(FileNotFoundError):
            self.port.unlink()


class RestartableAudio:
    """A PulseAudio server (with a tone playing into it) reachable at stable paths.

    `env` is what the agent's process needs; it stays valid across `restart()`.
    """

    def __init__(
        self, kind: str = "tone", server: PulseServer | None = None, tone: TonePlayer | None = None
    ) -> None:
        self.kind = kind
        # mkdtemp: 0700, as PulseAudio wants of a runtime directory.
        self.stable_dir = Path(tempfile.mkdtemp(prefix="edge-agent-audio-"))
        self.server = server or PulseServer().start()
        self.tone = tone or TonePlayer(self.server, kind).start()
        self.restarts = 0
        self._point()

    @property
    def env(self) -> dict[str, str]:
        return {
            "PULSE_SERVER": f"unix:{self.stable_dir / 'native'}",
            "XDG_RUNTIME_DIR": str(self.stable_dir),
            "PULSE_COOKIE": str(self.stable_dir / "cookie"),
        }

    def _point(self) -> None:
        runtime = self.server.runtime_dir
        if runtime is None:
            raise RuntimeError("the audio server is not running")
        _link(self.server.socket_path, self.stable_dir / "native")
        _link(runtime / "cookie", self.stable_dir / "cookie")

    def restart(self, down_s: float = 0.0) -> None:
        """Kill the server (and the tone), wait `down_s`, start a new one at the same paths."""
        self.tone.stop()
        self.server.stop()
        time.sleep(down_s)
        self.server = PulseServer().start()
        self.tone = TonePlayer(self.server, self.kind).start()
        self._point()
        self.restarts += 1
        log.info("audio server restarted (%d)", self.restarts)

    def stop(self) -> None:
        self.tone.stop()
        self.server.stop()
        for name in ("native", "cookie"):
            with contextlib.suppress(FileNotFoundError):
                (self.stable_dir / name).unlink()
        with contextlib.suppress(OSError):
            os.rmdir(self.stable_dir)
