"""Camera check: grab about a second of frames (up to three when they come slowly) from the
configured source (agent.probes.frames) and judge the picture (agent.checks.camera_metrics).

This module is imported only when the camera is checked, so importing OpenCV is fine.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from agent.checks.camera_metrics import SLOW_SAMPLE_FACTOR, FrameAccumulator, judge_camera
from agent.checks.model import MetricValue, Outcome
from agent.config import Settings
from agent.errors import BadReply
from agent.messages import message
from agent.probes.frames import grab_frames, resolve_source


def check_camera(settings: Settings) -> Outcome:
    cfg = settings.camera
    source = resolve_source(cfg.source)
    acc = FrameAccumulator()

    def take(frame: Any, stamp: float) -> bool:
        try:
            acc.add(frame, stamp)
        except ValueError as exc:
            raise BadReply(
                message("camera.not_an_image", source=source.label, error=str(exc)),
                message("camera.hint.output_format"),
            ) from None
        return acc.enough(cfg)

    started = time.monotonic()
    feed_s = cfg.sample_s * SLOW_SAMPLE_FACTOR  # a slow feed is read on (see the factor)
    grabbed = grab_frames(source, cfg, take, feed_s, "camera-grab")
    if grabbed.error is not None:
        raise grabbed.error
    outcome = judge_camera(
        acc.result(cfg.sample_s, grabbed.stopped, grabbed.stopped_msg), cfg, source.label
    )
    extra: dict[str, MetricValue] = {
        "source": source.kind,
        "backend": grabbed.backend,
        "open_ms": round(grabbed.open_s * 1000, 1),
        "check_ms": round((time.monotonic() - started) * 1000, 1),
    }
    return replace(outcome, metrics={**outcome.metrics, **extra})
