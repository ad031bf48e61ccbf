"""Frames from the site camera, for the camera check and for attendance counting alike.

Sources: a V4L2 device (/dev/videoN, a /dev/v4l/by-id/ path or its bare name), an IP camera
URL (rtsp://, http://: read through FFMPEG) or a video file (for the simulated site).

`grab_frames` opens the source, skips a device's warm-up frames and hands each frame to the
caller until it has enough, then releases the camera (a V4L2 camera has one reader at a
time). The capture runs in its own thread and the caller waits for it with two deadlines,
one to open and one to read: a driver can block inside a read where Python cannot interrupt
it, and a camera that opens but sends nothing must give a quick answer, never a hang. This
module is imported only when the camera is used, so importing OpenCV at the top is fine.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

# OpenCV's V4L2 backend waits 10 s per frame of a silent camera by default, and reads this
# once per process, before its first capture: it must be set before any camera is opened.
os.environ.setdefault("OPENCV_VIDEOIO_V4L_SELECT_TIMEOUT", "2")

import cv2

from agent.config import CameraSettings
from agent.errors import (
    AgentError,
    BadReply,
    ConfigError,
    DeviceNotFound,
    DeviceTimeout,
    ProbeError,
)
from agent.messages import Message, message

log = logging.getLogger(__name__)

BY_ID_DIR = Path("/dev/v4l/by-id")
URL_SCHEMES = ("rtsp", "rtsps", "http", "https")
# A UVC camera's first frames come before its auto-exposure settles (often nearly black).
DEVICE_WARMUP_FRAMES = 5


@dataclass(frozen=True)
class Source:
    kind: Literal["device", "url", "file"]
    target: str  # what OpenCV opens
    label: str  # what the technician configured, safe to report (no URL password)


def _hint_missing() -> Message:
    return message("camera.hint.missing")


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
        raise ConfigError(message("camera.source_empty"), message("camera.hint.set_source"))
    if "://" in source:
        scheme = source.split("://", 1)[0].lower()
        label = redact_url(source)
        if scheme not in URL_SCHEMES:
            raise ConfigError(
                message("camera.bad_scheme", source=label, scheme=scheme),
                message("camera.hint.schemes", schemes=", ".join(s + "://" for s in URL_SCHEMES)),
            )
        return Source("url", source, label)
    if source.isdigit():
        source = f"/dev/video{source}"
    if source.startswith("/dev/"):
        # A by-id link whose camera is unplugged dangles: exists() is False for it too.
        if not os.path.exists(source):
            raise DeviceNotFound(message("camera.not_found", source=source), _hint_missing())
        real = os.path.realpath(source)
        label = source if real == source else f"{source} ({real})"
        return Source("device", real, label)
    if "/" not in source:
        link = by_id_dir / source
        if os.path.lexists(link):
            if not link.exists():
                raise DeviceNotFound(
                    message("camera.unplugged", source=source, link=str(link)), _hint_missing()
                )
            real = os.path.realpath(link)
            return Source("device", real, f"{source} ({real})")
    # Not only regular files: a named pipe fed by another program is a camera too.
    if os.path.exists(source) and not os.path.isdir(source):
        return Source("file", source, source)
    if "/" not in source:
        raise DeviceNotFound(
            message("camera.not_found_by_id", source=source, folder=str(by_id_dir)),
            _hint_missing(),
        )
    raise DeviceNotFound(
        message("camera.no_such_file", source=source), message("camera.hint.check_source")
    )


def read_timeout_s(cfg: CameraSettings) -> float:
    """How long one frame may take before the feed counts as stalled: a few frame times,
    never under a second (IP cameras jitter)."""
    return max(1.0, 3.0 / cfg.fps)


def open_capture(source: Source, cfg: CameraSettings) -> Any:
    """A VideoCapture for the source, with the open/read deadlines; ProbeError when the
    device exists but is not ours to open."""
    if source.kind == "device":
        if not os.access(source.target, os.R_OK | os.W_OK):
            raise ProbeError(
                message("camera.permission", source=source.label),
                message("camera.hint.video_group"),
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
                message("camera.no_stream", source=source.label, seconds=cfg.open_timeout_s),
                message("camera.hint.ip_power"),
            )
        return ProbeError(
            message("camera.stream_refused", source=source.label), message("camera.hint.url")
        )
    if source.kind == "file":
        return BadReply(
            message("camera.bad_file", source=source.label), message("camera.hint.bad_file")
        )
    return ProbeError(message("camera.busy", source=source.label), message("camera.hint.busy"))


# Called in the grab thread with each frame after the warm-up and its time in seconds (a
# file's own timestamps, else arrival); returns True when it has enough.
TakeFrame = Callable[[Any, float], bool]


@dataclass
class GrabOutcome:
    """How a grab went; whatever `take` collected is the caller's."""

    source: Source
    error: BaseException | None = None  # could not open, or `take` raised
    stopped: str = ""  # why a live feed stopped early ("" if it did not)
    stopped_msg: Message | None = None  # the same as a message, for the reader's language
    ended: bool = False  # a file came to its end first
    late: bool = False  # the read deadline passed first
    open_s: float = 0.0
    backend: str = ""


class _Reader:
    """The grab thread's side. After `close()` it never calls `take` again."""

    def __init__(self, source: Source, cfg: CameraSettings, take: TakeFrame) -> None:
        self.source, self.cfg, self.take = source, cfg, take
        self.got = GrabOutcome(source)
        self.lock = threading.Lock()  # held around `take`, so close() waits for one to end
        self.opened = threading.Event()
        self.finished = threading.Event()
        self.closed = False
        self.last_frame_at = 0.0  # monotonic arrival time of the newest frame

    def close(self) -> None:
        with self.lock:
            self.closed = True

    def run(self) -> None:
        started = time.monotonic()
        cap: Any = None
        try:
            cap = open_capture(self.source, self.cfg)
            self.got.open_s = time.monotonic() - started
            if not cap.isOpened():
                self.got.error = _open_failed(self.source, self.cfg, self.got.open_s)
                return
            self.got.backend = str(cap.getBackendName())
            self.opened.set()
            self._read(cap)
        except BaseException as exc:  # handed to the caller's thread
            self.got.error = exc
        finally:
            if cap is not None:
                cap.release()
            self.opened.set()
            self.finished.set()

    def _read(self, cap: Any) -> None:
        is_file = self.source.kind == "file"
        skip = DEVICE_WARMUP_FRAMES if self.source.kind == "device" else 0
        while not self.closed:
            ok, frame = cap.read()
            now = time.monotonic()
            self.last_frame_at = now if ok else self.last_frame_at
            if not ok or frame is None:
                if is_file:  # a file simply ends; a live feed must not
                    self.got.ended = True
                else:
                    why = message("camera.no_frame_for", seconds=read_timeout_s(self.cfg))
                    self.got.stopped, self.got.stopped_msg = why.text, why
                return
            if skip:
                skip -= 1
                continue
            # A file is read as fast as it decodes: its own timestamps give its frame rate.
            stamp = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if is_file else now
            with self.lock:
                if self.closed or self.take(frame, stamp):
                    return


def grab_frames(
    source: Source, cfg: CameraSettings, take: TakeFrame, feed_s: float, name: str
) -> GrabOutcome:
    """Frames from `source` into `take` until it has enough, the feed stops, or the deadline:
    open_timeout_s (+1 s) to open, then `feed_s` of feed plus warm-up and one read timeout.
    Never raises for camera trouble (that is GrabOutcome.error); `take` is not called after the
    return, so what it collected is safe to read."""
    reader = _Reader(source, cfg, take)
    started = time.monotonic()
    threading.Thread(target=reader.run, name=name, daemon=True).start()
    # FFMPEG honours its open timeout; V4L2 has none, hence our own deadline on top.
    if not reader.opened.wait(cfg.open_timeout_s + 1.0):
        reader.close()
        return replace(
            reader.got,
            error=DeviceTimeout(
                message("camera.open_timeout", source=source.label, seconds=cfg.open_timeout_s),
                message("camera.hint.replug_or_ip"),
            ),
        )
    warmup = DEVICE_WARMUP_FRAMES / cfg.fps if source.kind == "device" else 0.0
    if reader.finished.wait(feed_s + warmup + read_timeout_s(cfg) + 0.5):
        return replace(reader.got)
    reader.close()
    # A copy: the thread, still stuck in a read, may write to its own later.
    late = replace(reader.got, late=True)
    # Still reading at the deadline: a stuck driver, or merely a slow first frame.
    silent_for = time.monotonic() - (reader.last_frame_at or started)
    if silent_for > read_timeout_s(cfg):
        log.warning("camera %s: capture blocked for %.1f s", source.label, silent_for)
        if not late.stopped:
            why = message("camera.stalled", seconds=silent_for)
            late.stopped, late.stopped_msg = why.text, why
    return late
