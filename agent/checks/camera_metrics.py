"""Picture quality from camera frames, and the camera verdict. Pure: frames in, outcome out.

Each frame is reduced as it arrives (`FrameAccumulator.add`) to a few numbers and one small
luma image, so a 1080p stream is analysed in a few milliseconds per frame and a second of
it never sits in memory.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from agent.checks.model import MetricValue, Outcome, Status, said, worst_status
from agent.config import CameraSettings
from agent.messages import Message, Param, message

Image = npt.NDArray[np.generic]
_Luma = npt.NDArray[np.float32]

ANALYSIS_WIDTH = 480  # frames are block-averaged down to 480..959 px wide before analysis
SATURATED = 250  # luma at or above: a blown-out pixel
FROZEN_PERCENTILE = 90  # up to a tenth of frame pairs may differ in a frozen picture
# A sample short of the configured rate is read on, up to this many sample lengths, and the
# rate taken over its last sample_s: a second-long pause in the reading process itself (a
# busy mini-PC at boot; CI saw 0.9 of 30 fps from one 1.1 s pause) must not read as a slow
# camera, while a camera that is slow stays slow over every window.
SLOW_SAMPLE_FACTOR = 3.0


@dataclass(frozen=True)
class FrameStats:
    width: int
    height: int
    mean_luma: float
    sharpness: float  # variance of the 3x3 Laplacian on the analysis-size luma
    saturated_ratio: float


@dataclass(frozen=True)
class CameraMetrics:
    frames: int
    width: int | None
    height: int | None
    fps: float | None
    mean_luma: float | None
    sharpness: float | None  # median over frames: one motion-blurred frame does not count
    saturated_ratio: float | None
    # Mean absolute luma difference of consecutive frames: a high percentile over the pairs
    # (FROZEN_PERCENTILE) and the maximum. None with fewer than two frames.
    frame_diff: float | None
    max_frame_diff: float | None
    sample_s: float = 0.0  # how long frames were awaited (for the reason line)
    stopped: str = ""  # why delivery ended early on a live source ("" if it did not)
    stopped_msg: Message | None = None  # the same as a message, when the grabber gave one

    @property
    def frozen_known(self) -> bool:
        return self.frame_diff is not None

    def as_metrics(self) -> dict[str, MetricValue]:
        def rnd(value: float | None, digits: int) -> float | None:
            return None if value is None else round(value, digits)

        return {
            "frames": self.frames,
            "width": self.width,
            "height": self.height,
            "fps": rnd(self.fps, 2),
            "mean_luma": rnd(self.mean_luma, 1),
            "sharpness": rnd(self.sharpness, 1),
            "saturated_pct": rnd(
                None if self.saturated_ratio is None else self.saturated_ratio * 100, 2
            ),
            "frame_diff": rnd(self.frame_diff, 3),
            "max_frame_diff": rnd(self.max_frame_diff, 3),
        }


def _as_bgr(frame: Image) -> npt.NDArray[np.uint8]:
    """Accept what decoders hand out: BGR, BGRA or grey, 8 or 16 bit."""
    arr: npt.NDArray[Any] = np.asarray(frame)
    if arr.ndim not in (2, 3) or arr.shape[0] < 3 or arr.shape[1] < 3:
        raise ValueError(f"not an image: shape {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype == np.uint16:
            arr = (arr >> 8).astype(np.uint8)
        elif np.issubdtype(arr.dtype, np.floating):
            arr = (np.nan_to_num(arr).clip(0.0, 1.0) * 255).astype(np.uint8)
        else:
            arr = arr.clip(0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None].repeat(3, axis=2)
    elif arr.shape[2] >= 3:
        arr = arr[:, :, :3]
    else:
        arr = arr[:, :, :1].repeat(3, axis=2)
    return arr.astype(np.uint8, copy=False)


def scale_factor(width: int) -> int:
    return max(1, width // ANALYSIS_WIDTH)


def _block_sum(bgr: npt.NDArray[np.uint8], k: int) -> npt.NDArray[np.uint32]:
    """Sum of each k x k block, per channel. Rows then columns, as strided adds: about 4x
    faster in numpy than one reshape-and-sum over two axes."""
    h, w = (bgr.shape[0] // k) * k, (bgr.shape[1] // k) * k
    acc_type = np.uint16 if 255 * k * k <= 0xFFFF else np.uint32
    rows = bgr[:h, :w].reshape(h // k, k, w, 3)
    acc: npt.NDArray[Any] = rows[:, 0].astype(acc_type)
    for i in range(1, k):
        acc += rows[:, i]
    cols = acc.reshape(h // k, w // k, k, 3)
    out: npt.NDArray[np.uint32] = cols[:, :, 0].astype(np.uint32)
    for j in range(1, k):
        out += cols[:, :, j]
    return out


def _luma(bgr: npt.NDArray[np.generic], scale: float = 1.0) -> _Luma:
    """BT.601 luma, as cv2.COLOR_BGR2GRAY computes it."""
    b, g, r = (bgr[:, :, c].astype(np.float32) for c in range(3))
    y: _Luma = (0.114 * b + 0.587 * g + 0.299 * r) * np.float32(scale)
    return y


def laplacian_variance(y: _Luma) -> float:
    """Variance of the 3x3 Laplacian (cv2.Laplacian ksize=1), over the valid interior."""
    if y.shape[0] < 3 or y.shape[1] < 3:
        return 0.0
    lap = y[:-2, 1:-1] + y[2:, 1:-1] + y[1:-1, :-2] + y[1:-1, 2:] - 4.0 * y[1:-1, 1:-1]
    return float(lap.var())


def reduce_frame(frame: Image) -> tuple[FrameStats, _Luma]:
    """One frame to its statistics, plus a strided luma sample for frame differences.

    The difference sample is strided, not averaged: averaging k x k pixels divides sensor
    noise by k, and a live camera filming a still room would then look frozen.
    """
    bgr = _as_bgr(frame)
    height, width = bgr.shape[:2]
    k = scale_factor(width)
    small = _luma(_block_sum(bgr, k), 1.0 / (k * k)) if k > 1 else _luma(bgr)
    sample = _luma(bgr[::k, ::k])
    stats = FrameStats(
        width=width,
        height=height,
        mean_luma=float(small.mean()),
        sharpness=laplacian_variance(small),
        saturated_ratio=float(np.count_nonzero(sample >= SATURATED)) / sample.size,
    )
    return stats, sample


class FrameAccumulator:
    """Running metrics over a stream: keeps per-frame numbers and only the previous sample."""

    def __init__(self) -> None:
        self._stats: list[FrameStats] = []
        self._stamps: list[float] = []
        self._prev: _Luma | None = None
        self._diffs: list[float] = []

    def __len__(self) -> int:
        return len(self._stats)

    def enough(self, cfg: CameraSettings) -> bool:
        """Whether the sample can end: sample_s of frames at a good enough rate, or
        SLOW_SAMPLE_FACTOR times that however the rate came out."""
        return sample_complete(self._stamps, cfg)

    def add(self, frame: Image, timestamp: float) -> None:
        stats, sample = reduce_frame(frame)
        if self._prev is not None:
            # A resolution change mid-stream is a change of picture, not a frozen one.
            diff = (
                float(np.abs(sample - self._prev).mean())
                if sample.shape == self._prev.shape
                else float("inf")
            )
            self._diffs.append(diff)
        self._prev = sample
        self._stats.append(stats)
        self._stamps.append(timestamp)

    def result(
        self, sample_s: float = 0.0, stopped: str = "", stopped_msg: Message | None = None
    ) -> CameraMetrics:
        if not self._stats:
            return CameraMetrics(
                0, None, None, None, None, None, None, None, None, sample_s, stopped, stopped_msg
            )
        last = self._stats[-1]
        return CameraMetrics(
            frames=len(self._stats),
            width=last.width,
            height=last.height,
            fps=achieved_fps(self._stamps, sample_s),
            mean_luma=statistics.fmean(s.mean_luma for s in self._stats),
            sharpness=statistics.median(s.sharpness for s in self._stats),
            saturated_ratio=statistics.fmean(s.saturated_ratio for s in self._stats),
            frame_diff=frozen_statistic(self._diffs),
            max_frame_diff=max(self._diffs) if self._diffs else None,
            sample_s=sample_s,
            stopped=stopped,
            stopped_msg=stopped_msg,
        )


def frozen_statistic(diffs: Sequence[float]) -> float | None:
    """The FROZEN_PERCENTILE-th percentile of consecutive-frame differences.

    Not the maximum: an encoder's rate control makes the first frame (or a periodic key
    frame) of a frozen picture differ a little (FFMPEG's MJPEG: 1.8 luma levels on a frozen
    clip), and one such pair must not hide a frozen camera. Not the median either: a stream
    that repeats each frame two or three times (low real frame rate) is slow, not frozen.
    """
    if not diffs:
        return None
    ordered = sorted(diffs)
    return ordered[min(len(ordered) - 1, int(len(ordered) * FROZEN_PERCENTILE / 100))]


def achieved_fps(timestamps: Sequence[float], window_s: float = 0.0) -> float | None:
    """Frames per second over the shortest tail of `timestamps` spanning `window_s` (all of
    them when none does, or when `window_s` is 0)."""
    if len(timestamps) < 2:
        return None
    start = 0
    if window_s > 0:
        last = timestamps[-1]
        start = len(timestamps) - 2
        while start > 0 and last - timestamps[start] < window_s:
            start -= 1
    span = timestamps[-1] - timestamps[start]
    return (len(timestamps) - 1 - start) / span if span > 0 else None


def sample_complete(timestamps: Sequence[float], cfg: CameraSettings) -> bool:
    if len(timestamps) < 2:
        return False
    span = timestamps[-1] - timestamps[0]
    if span >= cfg.sample_s * SLOW_SAMPLE_FACTOR:
        return True
    fps = achieved_fps(timestamps, cfg.sample_s)
    return span >= cfg.sample_s and fps is not None and fps >= cfg.min_fps_ratio * cfg.fps


def analyse_frames(
    frames: Sequence[Image], timestamps: Sequence[float], sample_s: float = 0.0
) -> CameraMetrics:
    """Metrics of a list of BGR frames with their capture times (seconds)."""
    if len(frames) != len(timestamps):
        raise ValueError(f"{len(frames)} frames but {len(timestamps)} timestamps")
    acc = FrameAccumulator()
    for frame, stamp in zip(frames, timestamps, strict=True):
        acc.add(frame, stamp)
    return acc.result(sample_s)


def judge_camera(metrics: CameraMetrics, cfg: CameraSettings, label: str = "") -> Outcome:
    """fail: no frames, covered lens, frozen picture, feed that stopped.
    warn: overexposed, out of focus, resolution or frame rate below what was configured.
    `label` names the source in the reason (e.g. /dev/video0)."""
    name = message("camera.name", source=label) if label else message("camera.name_unknown")
    data = metrics.as_metrics()
    # Why the feed stopped, in the reader's language when the grabber said it as a message.
    why: Param = metrics.stopped_msg or metrics.stopped
    if metrics.frames == 0 or metrics.mean_luma is None:
        reason = (
            message("camera.no_frame_why", camera=name, why=why)
            if metrics.stopped
            else message("camera.no_frame", camera=name)
        )
        return said(Status.FAIL, reason, message("camera.hint.none"), data)

    findings: list[tuple[Status, Message, Message]] = []
    luma = metrics.mean_luma
    if luma < cfg.dark_luma:
        findings.append(
            (Status.FAIL, message("camera.black", luma=luma), message("camera.hint.dark"))
        )
    elif metrics.frozen_known and (metrics.frame_diff or 0.0) < cfg.frozen_diff:
        frozen = message(
            "camera.frozen", frames=metrics.frames, difference=metrics.frame_diff or 0.0
        )
        findings.append((Status.FAIL, frozen, message("camera.hint.frozen")))
    if metrics.stopped:
        stopped = message("camera.feed_stopped", frames=metrics.frames, why=why)
        findings.append((Status.FAIL, stopped, message("camera.hint.stopped")))
    if luma > cfg.bright_luma:
        findings.append(
            (Status.WARN, message("camera.overexposed", luma=luma), message("camera.hint.bright"))
        )
    # A black picture has no detail either; saying "out of focus" too would mislead.
    if luma >= cfg.dark_luma and (metrics.sharpness or 0.0) < cfg.min_sharpness:
        blurred = message("camera.blurred", sharpness=metrics.sharpness or 0.0)
        findings.append((Status.WARN, blurred, message("camera.hint.blur")))
    if (
        metrics.width is not None
        and metrics.height is not None
        and (metrics.width < cfg.width or metrics.height < cfg.height)
    ):
        low = message(
            "camera.low_resolution",
            width=metrics.width,
            height=metrics.height,
            want_width=cfg.width,
            want_height=cfg.height,
        )
        findings.append((Status.WARN, low, message("camera.hint.resolution")))
    if metrics.fps is not None and metrics.fps < cfg.min_fps_ratio * cfg.fps:
        slow = message("camera.low_fps", fps=metrics.fps, want_fps=cfg.fps)
        findings.append((Status.WARN, slow, message("camera.hint.fps")))

    # Set whenever a frame came (frames > 0 above).
    width, height = metrics.width or 0, metrics.height or 0
    size = (
        message("camera.size_fps", width=width, height=height, fps=metrics.fps)
        if metrics.fps is not None
        else message("camera.size", width=width, height=height)
    )
    if not findings:
        sharp = metrics.sharpness or 0.0
        reason = message("camera.ok", camera=name, size=size, luma=luma, sharpness=sharp)
        return said(Status.OK, reason, None, data)
    status = worst_status(f[0] for f in findings)
    # Worst problems first, so a one-line display shows what matters most.
    findings.sort(key=lambda f: f[0] != Status.FAIL)
    reason = message("camera.faults", camera=name, findings=[f[1] for f in findings], size=size)
    hints = list({f[2].id: f[2] for f in findings}.values())
    return said(status, reason, message("camera.hints", hints=hints), data)
