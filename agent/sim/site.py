"""A whole simulated site: what the demo runs and what end-to-end tests and benchmarks use.

Every device is a real endpoint the probes cannot tell from hardware except by the data:
an MJPEG camera stream read by OpenCV, a PulseAudio null sink that sounddevice records from
(a tone playing into it), a Cisco codec, a Sony VISCA camera and a Samsung display answering
on pseudo-terminals from recorded replies, a sysfs-shaped DRM/LED tree, and a TCP endpoint
standing in for the centre when no broker is given.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from agent.sim.audio import PulseServer, TonePlayer
from agent.sim.recording import load_recording
from agent.sim.serial_device import PtyDevice
from agent.sim.service import Service
from agent.sim.sysfs import Connector, add_connector, add_led
from agent.sim.toml_writer import dump_toml
from agent.sim.video import MjpegServer

log = logging.getLogger(__name__)

CODEC_RECORDING = "cisco-roomos_ce9.15"
PTZ_RECORDING = "sony-visca_evi-d70"
DISPLAY_RECORDING = "samsung-mdc_generic"


class _CentreStandIn:
    """Accepts and closes TCP connections: the network probe's target when no broker runs."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="sim-centre", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            conn.close()

    def stop(self) -> None:
        self._sock.close()


# The same for a `role = "mcu"` target that answers (bench/session.py, the page's live tests).
TcpStandIn = _CentreStandIn

SIM_KEY_ID = "sim-centre"


class SimulatedSite(Service):
    """Start with start() (or as a context manager); `config_path` is a settings file for
    the agent and `env` what an agent process needs in its environment (the audio server)."""

    def __init__(
        self,
        workdir: Path,
        *,
        site_id: str = "sim-commune-01",
        broker_port: int | None = None,
        camera_kind: str = "normal",
        audio_kind: str = "tone",
        width: int = 1280,
        height: int = 720,
        fps: float = 30.0,
    ) -> None:
        self.workdir = workdir
        self.site_id = site_id
        self.broker_port = broker_port
        self.camera_kind = camera_kind
        self.audio_kind = audio_kind
        self.width, self.height, self.fps = width, height, fps
        self.sysfs_root = workdir / "sys"
        self.state_dir = workdir / "state"
        self.config_path = workdir / "agent.toml"
        # The centre's command key pair: the site trusts the .pub, `centre send --key` signs
        # with the .key, so the simulated site accepts commands out of the box.
        self.command_key = workdir / f"{SIM_KEY_ID}.key"
        self.camera: MjpegServer | None = None
        self.pulse: PulseServer | None = None
        self.tone: TonePlayer | None = None
        self.codec: PtyDevice | None = None
        self.ptz: PtyDevice | None = None
        self.display_control: PtyDevice | None = None
        self._centre: _CentreStandIn | None = None

    @property
    def env(self) -> dict[str, str]:
        return dict(self.pulse.env) if self.pulse else {}

    def start(self) -> SimulatedSite:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(exist_ok=True)
        try:
            self._start_devices()
        except BaseException:
            self.stop()
            raise
        if not self.command_key.with_suffix(".pub").exists():
            from agent.centre.keys import write_key_pair  # noqa: PLC0415

            write_key_pair(self.command_key.with_suffix(""))
        self.config_path.write_text(dump_toml(self.settings_document()))
        log.info("simulated site %s up; settings in %s", self.site_id, self.config_path)
        return self

    def _start_devices(self) -> None:
        if not (self.sysfs_root / "class" / "drm").exists():
            add_connector(self.sysfs_root, Connector())
            add_connector(
                self.sysfs_root, Connector(name="DP-1", status="disconnected", modes=[], edid=b"")
            )
            add_led(self.sysfs_root, "status:red")
            add_led(self.sysfs_root, "status:green")
        self.camera = MjpegServer(
            self.camera_kind,  # type: ignore[arg-type]  # validated by MjpegServer
            fps=self.fps,
            width=self.width,
            height=self.height,
        ).start()
        self.pulse = PulseServer().start()
        self.tone = TonePlayer(self.pulse, self.audio_kind).start()
        self.codec = PtyDevice(load_recording(CODEC_RECORDING)).start()
        self.ptz = PtyDevice(load_recording(PTZ_RECORDING)).start()
        self.display_control = PtyDevice(load_recording(DISPLAY_RECORDING)).start()
        if self.broker_port is None:
            self._centre = _CentreStandIn()

    def settings_document(self) -> dict[str, Any]:
        assert self.camera and self.codec and self.ptz and self.display_control
        centre_port = self.broker_port or (self._centre.port if self._centre else 1883)
        return {
            "log_level": "info",
            "site": {
                "site_id": self.site_id,
                "name": "UBND xã Mô Phỏng (simulated)",
                "tier": "commune",
                "parent": "sim-district-01",
                "expected_attendance": 25,
            },
            "broker": {"host": "127.0.0.1", "port": centre_port, "keepalive_s": 10},
            # Often enough that a fault injected in a demo reaches the centre within seconds.
            "report": {"check_interval_s": 8.0, "state_heartbeat_s": 30.0},
            "paths": {"state_dir": str(self.state_dir), "sysfs_root": str(self.sysfs_root)},
            "camera": {
                "source": self.camera.url,
                "width": self.width,
                "height": self.height,
                "fps": self.fps,
                "open_timeout_s": 3.0,
                "timeout_s": 8.0,
            },
            "microphone": {"device": "pulse", "timeout_s": 8.0},
            "display": {
                "connector": "auto",
                "profile": "samsung-mdc",
                "port": self.display_control.port,
                "device_id": 1,
            },
            "codec": {
                "profile": "cisco-roomos",
                "port": self.codec.port,
                "username": "admin",
                "password": "secret",
            },
            "ptz": {"enabled": True, "profile": "sony-visca", "port": self.ptz.port},
            "network": {
                "samples": 5,
                "interval_s": 0.02,
                "targets": [{"name": "centre", "host": "127.0.0.1", "port": centre_port}],
            },
            "commands": {
                "keys": [{"key_id": SIM_KEY_ID, "path": str(self.command_key.with_suffix(".pub"))}]
            },
        }

    def apply_env(self) -> None:
        """Point this process's audio clients at the simulated audio server."""
        os.environ.update(self.env)

    def stop(self) -> None:
        for device in (self.display_control, self.ptz, self.codec):
            if device is not None:
                device.stop()
        if self.tone is not None:
            self.tone.stop()
        if self.pulse is not None:
            self.pulse.stop()
        if self.camera is not None:
            self.camera.stop()
        if self._centre is not None:
            self._centre.stop()
