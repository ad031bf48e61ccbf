"""Counting people from the site camera: grab a burst of frames, find the faces in each,
reduce the burst to one count (agent.attendance.burst).

The camera is opened for each burst and closed after it: between bursts it stays free for
the self-test (a V4L2 camera has one reader at a time), and no stale frames pile up in an
IP camera's stream. Frames live in memory only for the burst; nothing is written to disk.
Frames come through agent.probes.frames, as for the camera check: in their own thread, with
deadlines, since a driver can block where Python cannot interrupt it.
"""

from __future__ import annotations

import contextlib
import ctypes
import time
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from agent.attendance.burst import BurstStats, FrameLook, frame_problem, summarise_burst
from agent.attendance.detector import Backend, FaceFinder, FrameFaces, load_backend
from agent.attendance.settings import AttendanceSettings
from agent.config import CameraSettings
from agent.errors import AgentError, ProbeError
from agent.messages import Message, message
from agent.probes.frames import grab_frames, resolve_source

Frame = npt.NDArray[np.uint8]
_THUMB_WIDTH = 160  # a thumbnail is enough for brightness and contrast


def look(frame: npt.NDArray[np.generic]) -> FrameLook:
    """Brightness and contrast of a BGR (or grey) frame, from a strided thumbnail."""
    arr = np.asarray(frame)
    if arr.ndim not in (2, 3) or arr.shape[0] < 2 or arr.shape[1] < 2:
        raise ValueError(f"not an image: shape {arr.shape}")
    step = max(1, arr.shape[1] // _THUMB_WIDTH)
    small = arr[::step, ::step].astype(np.float32)
    if small.ndim == 3 and small.shape[2] >= 3:
        luma = 0.114 * small[:, :, 0] + 0.587 * small[:, :, 1] + 0.299 * small[:, :, 2]
    else:
        luma = small if small.ndim == 2 else small[:, :, 0]
    return FrameLook(float(luma.mean()), float(luma.std()))


def as_bgr(frame: npt.NDArray[Any]) -> Frame:
    """8-bit, 3-channel BGR from what decoders hand out (grey, BGRA, 16-bit)."""
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        arr = (
            (arr >> 8).astype(np.uint8)
            if arr.dtype == np.uint16
            else arr.clip(0, 255).astype(np.uint8)
        )
    if arr.ndim == 2:
        return np.ascontiguousarray(cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR), dtype=np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return np.ascontiguousarray(cv2.cvtColor(arr, cv2.COLOR_BGRA2BGR), dtype=np.uint8)
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(arr, dtype=np.uint8)
    raise ValueError(f"not an image: shape {arr.shape}")


def trim_heap() -> None:
    """Return freed heap to the system (glibc): a burst's buffers are large, bursts are a
    minute apart, and glibc otherwise keeps them, so the agent's memory would creep up."""
    with contextlib.suppress(OSError, AttributeError):  # another C library: its own heap
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass
class Grabbed:
    frames: list[Frame] = field(default_factory=list)
    label: str = ""
    error: AgentError | None = None  # the camera could not be opened or read
    stopped: str | Message = ""  # why fewer frames than asked ("" if all came)
    seconds: float = 0.0


def shrink(frame: Frame, max_width: int | None) -> Frame:
    """The frame scaled down to at most max_width pixels wide (never enlarged)."""
    h, w = frame.shape[:2]
    if max_width is None or w <= max_width:
        return frame
    size = (max_width, max(1, round(h * max_width / w)))
    return np.asarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def grab_burst(
    cfg: CameraSettings, count: int, spacing_s: float, max_width: int | None = None
) -> Grabbed:
    """Up to `count` frames from the configured camera, `spacing_s` apart (a file: that far
    apart in its own time), each shrunk on arrival to at most max_width wide; never raises
    for camera trouble (that is in Grabbed.error), never blocks past its deadline."""
    started = time.monotonic()
    try:
        source = resolve_source(cfg.source)
    except AgentError as exc:
        return Grabbed(label=cfg.source, error=exc)
    frames: list[Frame] = []
    last: float | None = None

    def take(frame: Any, stamp: float) -> bool:
        nonlocal last
        if last is not None and stamp - last < spacing_s:
            return False
        last = stamp
        frames.append(shrink(as_bgr(frame), max_width))
        return len(frames) >= count

    got = grab_frames(source, cfg, take, count * spacing_s, "attendance-grab")
    error: AgentError | None = None
    if isinstance(got.error, AgentError):
        error = got.error
    elif isinstance(got.error, Exception):
        error = ProbeError(
            message("attendance.camera_failed", camera=source.label, error=str(got.error)),
            message("attendance.camera_failed_hint"),
        )
    elif got.error is not None:
        raise got.error
    stopped: str | Message = ""
    if len(frames) < count:
        if got.stopped:
            stopped = got.stopped
        elif got.ended:
            stopped = message("attendance.unknown.file_ended")
        elif got.late:
            stopped = message("attendance.unknown.late", frames=len(frames), wanted=count)
    return Grabbed(frames, source.label, error, stopped, time.monotonic() - started)


@dataclass(frozen=True)
class BurstResult:
    stats: BurstStats
    detector: str
    tiled: bool
    seconds: float  # spent finding faces
    faces: tuple[FrameFaces, ...]  # per counted frame
    camera: str = ""
    camera_error: str | None = None
    # The frame whose count is the burst's, with its faces: only with keep_frame=True
    # (snapshots). Otherwise no frame outlives the burst.
    frame: Frame | None = None
    frame_faces: FrameFaces | None = None


class Counter:
    """Finds faces in frames and reduces bursts to counts. Raises ModelError at once if the
    detector's model is not installed."""

    def __init__(
        self,
        settings: AttendanceSettings,
        camera: CameraSettings | None = None,
        backend: Backend | None = None,
    ) -> None:
        self.settings = settings
        self.camera = camera or CameraSettings()
        self.backend = backend if backend is not None else load_backend(settings)
        self.finder = FaceFinder(self.backend, settings)

    @property
    def detector(self) -> str:
        return self.backend.name

    @property
    def analysis_width(self) -> int:
        """No pass looks at a frame wider than this: camera frames are shrunk to it as
        they arrive (a 1080p burst then holds 14 MB instead of 31)."""
        s = self.settings
        return max(s.input_width, s.tile_width if s.tiling != "off" else 0)

    def count_frames(
        self,
        frames: list[Frame],
        *,
        expected_frames: int | None = None,
        keep_frame: bool = False,
    ) -> BurstResult:
        """One count from frames already in memory (a burst, or one image)."""
        s = self.settings
        started = time.perf_counter()
        counts: list[int | None] = []
        problems: list[str | None] = []
        faces: list[FrameFaces] = []
        kept: list[tuple[Frame, FrameFaces]] = []
        use_tiles: bool | None = {"off": False, "always": True}.get(s.tiling)
        for frame in frames:
            problem = frame_problem(look(frame), s.dark_luma, s.min_contrast)
            problems.append(problem)
            if problem is not None:
                counts.append(None)
                continue
            if use_tiles is None:  # "auto": the burst's first usable frame decides
                found, use_tiles = self.finder.probe_tiling(frame)
            else:
                found = self.finder.find(frame, tiled=use_tiles)
            counts.append(found.count)
            faces.append(found)
            if keep_frame:
                kept.append((frame, found))
        stats = summarise_burst(
            counts, problems, min_usable=s.min_usable, expected_frames=expected_frames
        )
        best: tuple[Frame, FrameFaces] | None = None
        if kept:
            target = stats.count if stats.count is not None else kept[0][1].count
            best = min(kept, key=lambda fk: abs(fk[1].count - target))
        return BurstResult(
            stats=stats,
            detector=self.detector,
            tiled=any(f.tiled for f in faces),
            seconds=time.perf_counter() - started,
            faces=tuple(faces),
            frame=best[0] if best else None,
            frame_faces=best[1] if best else None,
        )

    def count_camera(self, *, frames: int | None = None, keep_frame: bool = False) -> BurstResult:
        """Grab a burst from the camera and count it; camera trouble gives an unknown count
        with the reason, never an exception."""
        wanted = frames or self.settings.burst_frames
        grabbed = grab_burst(
            self.camera, wanted, self.settings.burst_spacing_s, self.analysis_width
        )
        trim_heap()  # the decoder's buffers, freed in the grab thread's own malloc arena
        try:
            result = self.count_frames(
                grabbed.frames, expected_frames=wanted, keep_frame=keep_frame
            )
        finally:
            # Bursts are a minute apart: hand the detector's memory back in between.
            self.backend.release()
            trim_heap()
        error = grabbed.error
        stats = result.stats
        if stats.count is None and (error is not None or grabbed.stopped):
            if error is not None:  # the camera's own words (a message where it has one)
                stats = BurstStats(stats.frames, stats.usable, stats.counts, None, None,
                                   error.message, error.msg)  # fmt: skip
            else:
                why = message("attendance.unknown.stopped", camera=grabbed.label,
                              why=grabbed.stopped)  # fmt: skip
                stats = BurstStats.blind(stats.frames, stats.usable, stats.counts, why)
        return BurstResult(
            stats=stats,
            detector=result.detector,
            tiled=result.tiled,
            seconds=result.seconds,
            faces=result.faces,
            camera=grabbed.label,
            camera_error=str(grabbed.error) if grabbed.error is not None else None,
            frame=result.frame,
            frame_faces=result.frame_faces,
        )
