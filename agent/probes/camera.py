"""Camera check: open the configured source with OpenCV, grab about a second of frames, and
judge the picture (agent.checks.camera_metrics).

Sources: a V4L2 device (/dev/videoN, a /dev/v4l/by-id/ path or its bare name), an IP camera
URL (rtsp://, http://: read through FFMPEG) or a video file (for the simulated site).

The capture runs in its own thread and the probe waits for it with a deadline: a driver can
block inside a read where Python cannot interrupt it, and a camera that opens but sends
nothing must give a quick FAIL, never a hang. This module is imported only when the camera
is checked, so importing OpenCV at the top is fine.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

# OpenCV's V4L2 backend waits 10 s per frame of a silent camera by default, and reads this
# once per process, before its first capture: it must be set before any camera is opened.
os.environ.setdefault("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", "2")

import cv2

from agent.checks.camera_metrics import FrameAccumulator, judge_camera
from agent.checks.model import MetricValue, Outcome
from agent.config import CameraSettings, Settings
from agent.errors import (
    AgentError,
    BadReply,
    ConfigError,
    DeviceNotFound,
    DeviceTimeout,
    ProbeError,
)

log = logging.getLogger(__name__)

BY_ID_DIR = Path("/dev/v4l/by-id")
URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
# A UVC camera's first frames come before its auto-exposure settles (often nearly black).
DEVICE_WARMUP_FRAMES = 5
_HINT_MISSING = "is it plugged in? `edge-agent devices` lists cameras"


@dataclass(frozen=True)
class Source:
    kind: Literal["device", "url", "file"]
    target: str  # what OpenCV opens
    label: str  # what the technician configured, safe to report (no URL password)


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def resolve_source(source: str, by_id_dir: Path = BY_ID_DIR) -> Source:
    """Decide what the configured camera source is; raise if it plainly does not exist."""
    source = source.strip()
    if not source:
        raise ConfigError("camera.source is empty", "set camera.source to /dev/video0 or a URL")
    if "://" in source:
        scheme = source.split("://", 1)[0].lower()
        label = redact_url(source)
        if scheme not in URL_SCHEMES:
            raise ConfigError(
                f"camera {label}: unsupported URL scheme '{scheme}'",
                f"use one of {', '.join(s + '://' for s in URL_SCHEMES)} or a /dev/video path",
            )
        return Source("url", source, label)
    if source.isdigit():
        source = f"/dev/video{source}"
    if source.startswith("/dev/"):
        # A by-id link whose camera is unplugged dangles: exists() is False for it too.
        if not os.path.exists(source):
            raise DeviceNotFound(f"camera {source}: not found", _HINT_MISSING)
        real = os.path.realpath(source)
        label = source if real == source else f"{source} ({real})"
        return Source("device", real, label)
    if "/" not in source:
        link = by_id_dir / source
        if os.path.lexists(link):
            if not link.exists():
                raise DeviceNotFound(f"camera {source}: unplugged ({link} dangles)", _HINT_MISSING)
            real = os.path.realpath(link)
            return Source("device", real, f"{source} ({real})")
    # Not only regular files: a named pipe fed by another program is a camera too.
    if os.path.exists(source) and not os.path.isdir(source):
        return Source("file", source, source)
    if "/" not in source:
        raise DeviceNotFound(f"camera {source}: not found under {by_id_dir}", _HINT_MISSING)
    raise DeviceNotFound(f"camera {source}: no such file", "check camera.source in the settings")


def read_timeout_s(cfg: CameraSettings) -> float:
    """How long one frame may take before the feed counts as stalled: a few frame times,
    never under a second (IP cameras jitter)."""
    return max(1.0, 3.0 / cfg.fps)


def open_capture(source: Source, cfg: CameraSettings) -> Any:
    """A VideoCapture for the source, with the open/read deadlines (also used to count
    attendance); ProbeError when the device exists but is not ours to open."""
    if source.kind == "device":
        if not os.access(source.target, os.R_OK | os.W_OK):
            raise ProbeError(
                f"camera {source.label}: permission denied",
                "add the edge-agent user to the 'video' group (usermod -aG video edge-agent) "
                "and restart the agent",
            )
        cap = cv2.VideoCapture(source.target, cv2.CAP_V4L2)
        if cap.isOpened():
            # MJPG first: most USB cameras give full resolution at 30 fps only compressed.
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, cfg.width)
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, cfg.height)
            cap.set(cv2.CAP_PROP_FPS, cfg.fps)
        return cap
    params = [
        cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
        int(cfg.open_timeout_s * 1000),
        cv2.CAP_PROP_READ_TIMEOUT_MSEC,
        int(read_timeout_s(cfg) * 1000),
    ]
    return cv2.VideoCapture(source.target, cv2.CAP_FFMPEG, params)


def _open_failed(source: Source, cfg: CameraSettings, elapsed: float) -> AgentError:
    if source.kind == "url":
        if elapsed >= cfg.open_timeout_s * 0.9:
            return DeviceTimeout(
                f"camera {source.label}: no stream within {cfg.open_timeout_s:g} s",
                "check the IP camera's power and network cable; open the URL in a browser",
            )
        return ProbeError(
            f"camera {source.label}: stream refused or unreadable",
            "check the camera's power, network and the URL (path, user, password)",
        )
    if source.kind == "file":
        return BadReply(
            f"camera {source.label}: not a readable video",
            "check camera.source: the file is damaged or in an unknown format",
        )
    return ProbeError(
        f"camera {source.label}: cannot be opened (busy, or not a camera)",
        "close any other program using the camera, then unplug and replug it",
    )


class _Grab:
    """Opens the source and collects frames into an accumulator, in its own thread."""

    def __init__(self, source: Source, cfg: CameraSettings) -> None:
        self.source, self.cfg = source, cfg
        self.acc = FrameAccumulator()
        self.lock = threading.Lock()
        self.opened = threading.Event()
        self.finished = threading.Event()
        self.cancel = threading.Event()
        self.error: BaseException | None = None
        self.stopped = ""
        self.open_s = 0.0
        self.backend = ""
        self.last_frame_at = 0.0  # monotonic arrival time of the newest frame

    def run(self) -> None:
        started = time.monotonic()
        cap: Any = None
        try:
            cap = open_capture(self.source, self.cfg)
            self.open_s = time.monotonic() - started
            if not cap.isOpened():
                self.error = _open_failed(self.source, self.cfg, self.open_s)
                return
            self.backend = str(cap.getBackendName())
            self.opened.set()
            self._collect(cap)
        except BaseException as exc:  # handed to the probe's thread, which raises it
            self.error = exc
        finally:
            if cap is not None:
                cap.release()
            self.opened.set()
            self.finished.set()

    def _collect(self, cap: Any) -> None:
        is_file = self.source.kind == "file"
        skip = DEVICE_WARMUP_FRAMES if self.source.kind == "device" else 0
        first: float | None = None
        while not self.cancel.is_set():
            ok, frame = cap.read()
            now = time.monotonic()
            self.last_frame_at = now if ok else self.last_frame_at
            if not ok or frame is None:
                if not is_file:  # a file simply ends; a live feed must not
                    self.stopped = f"no frame for {read_timeout_s(self.cfg):g} s"
                return
            if skip:
                skip -= 1
                continue
            # A file is read as fast as it decodes: its own timestamps give its frame rate.
            stamp = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if is_file else now
            try:
                with self.lock:
                    self.acc.add(frame, stamp)
            except ValueError as exc:
                raise BadReply(
                    f"camera {self.source.label}: delivered a frame that is not an image ({exc})",
                    "set the camera to MJPG or YUYV output; unplug and replug it",
                ) from None
            first = stamp if first is None else first
            if stamp - first >= self.cfg.sample_s:
                return


def check_camera(settings: Settings) -> Outcome:
    cfg = settings.camera
    source = resolve_source(cfg.source)
    grab = _Grab(source, cfg)
    started = time.monotonic()
    threading.Thread(target=grab.run, name="camera-grab", daemon=True).start()
    # FFMPEG honours its open timeout; V4L2 has none, hence our own deadline on top.
    if not grab.opened.wait(cfg.open_timeout_s + 1.0):
        grab.cancel.set()
        raise DeviceTimeout(
            f"camera {source.label}: did not open within {cfg.open_timeout_s:g} s",
            "unplug and replug the camera; for an IP camera check its power and network",
        )
    if grab.error is not None:
        raise grab.error
    warmup = DEVICE_WARMUP_FRAMES / cfg.fps if source.kind == "device" else 0.0
    deadline = cfg.sample_s + warmup + read_timeout_s(cfg) + 0.5
    if not grab.finished.wait(deadline):
        grab.cancel.set()
        # Still reading at the deadline: a stuck driver, or merely a slow first frame.
        silent_for = time.monotonic() - (grab.last_frame_at or started)
        if silent_for > read_timeout_s(cfg):
            log.warning("camera %s: capture blocked for %.1f s", source.label, silent_for)
            grab.stopped = grab.stopped or f"stalled: no frame for {silent_for:.1f} s"
    if grab.error is not None:
        raise grab.error
    with grab.lock:
        metrics = grab.acc.result(cfg.sample_s, grab.stopped)
    outcome = judge_camera(metrics, cfg, source.label)
    extra: dict[str, MetricValue] = {
        "source": source.kind,
        "backend": grab.backend,
        "open_ms": round(grab.open_s * 1000, 1),
        "check_ms": round((time.monotonic() - started) * 1000, 1),
    }
    return Outcome(outcome.status, outcome.reason, outcome.hint, {**outcome.metrics, **extra})
