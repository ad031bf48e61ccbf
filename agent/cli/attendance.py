"""`edge-agent attendance count|snapshot`: check the camera's framing for counting.

`count` prints how many people the counter sees in one image or one live burst; `snapshot`
writes the picture with the faces boxed, for the technician only (never sent anywhere).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.attendance.settings import AttendanceSettings
from agent.checks.model import ExitCode
from agent.config import Settings, load_settings
from agent.errors import AgentError
from agent.i18n import current_language, t
from agent.messages import message, render_or
from agent.system.logs import setup_logging

if TYPE_CHECKING:
    from agent.attendance.counter import BurstResult, Counter


def _attendance_settings(settings: Settings, args: argparse.Namespace) -> AttendanceSettings:
    # Settings gains its `attendance` section when the daemon wiring lands; defaults until then.
    section = getattr(settings, "attendance", None)
    base = section if isinstance(section, AttendanceSettings) else AttendanceSettings()
    if args.models_dir is not None:
        base = base.model_copy(update={"models_dir": args.models_dir})
    return base


def _counter(args: argparse.Namespace) -> tuple[Counter, Settings]:
    settings = load_settings(args.config)
    setup_logging("debug" if args.verbose else "warning")
    # cv2 and the model load only for these commands, never for the rest of the CLI.
    from agent.attendance.counter import Counter  # noqa: PLC0415

    return Counter(_attendance_settings(settings, args), settings.camera), settings


def _read_image(path: Path) -> Any:
    import cv2  # noqa: PLC0415

    from agent.attendance.counter import as_bgr  # noqa: PLC0415

    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise AgentError(f"image {path}: cannot be read", "give a JPEG or PNG file")
    return as_bgr(image)


def _burst(counter: Counter, args: argparse.Namespace, *, keep_frame: bool) -> BurstResult:
    if args.image is not None:
        return counter.count_frames([_read_image(args.image)], keep_frame=keep_frame)
    return counter.count_camera(frames=args.frames, keep_frame=keep_frame)


def _summary(result: BurstResult, source: str) -> dict[str, Any]:
    stats = result.stats
    excluded = len(result.frame_faces.excluded) if result.frame_faces is not None else None
    return {
        "source": source,
        "count": stats.count,
        "spread": stats.spread,
        "detector": result.detector,
        "tiled": result.tiled,
        "frames": stats.frames,
        "frames_used": stats.usable,
        "counts": list(stats.counts),
        "excluded": excluded,
        "unknown_reason": stats.unknown_reason,
        "seconds": round(result.seconds, 3),
    }


def _count(args: argparse.Namespace) -> int:
    counter, _ = _counter(args)
    result = _burst(counter, args, keep_frame=True)
    shown = str(args.image) if args.image is not None else t("attendance.count.camera",
                                                              camera=result.camera)  # fmt: skip
    source = str(args.image) if args.image is not None else f"camera {result.camera}"
    summary = _summary(result, source)
    stats = result.stats
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    elif summary["count"] is None:
        reason = render_or(stats.unknown_msg, stats.unknown_reason or "", current_language())
        sys.stdout.write(t("attendance.count.unknown", source=shown, reason=reason) + "\n")
        if result.camera_error and stats.unknown_msg is None:  # an untranslated camera error
            sys.stdout.write(f"  {result.camera_error}\n")
    else:
        spread = (
            message("attendance.count.spread", spread=summary["spread"])
            if summary["frames_used"] > 1
            else ""
        )
        frames = (
            message("attendance.count.median", frames=summary["frames_used"])
            if summary["frames"] > 1
            else message("attendance.count.one_frame")
        )
        excluded = (
            message("attendance.count.excluded", excluded=summary["excluded"])
            if summary["excluded"]
            else ""
        )
        line = t(
            "attendance.count.result",
            source=shown,
            count=summary["count"],
            frames=frames,
            spread=spread,
            detector=result.detector,
            tiled=message("attendance.count.tiled") if result.tiled else "",
            seconds=result.seconds,
            excluded=excluded,
        )
        sys.stdout.write(line + "\n")
    return int(ExitCode.OK if summary["count"] is not None else ExitCode.UNKNOWN)


def _snapshot(args: argparse.Namespace) -> int:
    from agent.attendance.draw import annotate, write_snapshot  # noqa: PLC0415

    counter, _ = _counter(args)
    result = _burst(counter, args, keep_frame=True)
    if result.frame is None or result.frame_faces is None:
        reason = result.camera_error or result.stats.unknown_reason or "no usable frame"
        raise AgentError(f"snapshot: nothing to draw ({reason})", "check the camera first")
    write_snapshot(args.out, annotate(result.frame, result.frame_faces, counter.settings))
    faces = result.frame_faces
    sys.stdout.write(
        f"wrote {args.out}: {faces.count} counted"
        + (f", {len(faces.excluded)} outside the region of interest" if len(faces.excluded) else "")
        + " (keep it on this machine: it shows people's faces)\n"
    )
    return int(ExitCode.OK)


def _frames(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("between 1 and 100")
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", type=Path, metavar="FILE", help="count this picture")
    source.add_argument(
        "--camera", action="store_true", help="count a live burst from camera.source (default)"
    )
    parser.add_argument(
        "--frames", type=_frames, metavar="N", help="frames in the burst (default: the settings')"
    )
    parser.add_argument(
        "--models-dir", type=Path, metavar="DIR", help="override attendance.models_dir"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    att = sub.add_parser("attendance", help="count the people the camera sees")
    att_sub = att.add_subparsers(dest="attendance_command", required=True, metavar="ACTION")

    count = att_sub.add_parser(
        "count",
        help="print how many people are seen (an image, or a live burst)",
        description="Exit 0 when counted, 3 when the count is unknown (camera cannot see).",
    )
    _common(count)
    count.add_argument("--json", action="store_true", help="machine-readable output")
    count.set_defaults(func=_count)

    snap = att_sub.add_parser(
        "snapshot",
        help="write the picture with the faces boxed (stays on this machine)",
        description="The only way the counter ever writes a picture: green boxes count, red "
        "ones are outside the region of interest (e.g. the TV), red shade is excluded.",
    )
    _common(snap)
    snap.add_argument("--out", type=Path, required=True, metavar="FILE", help=".jpg or .png")
    snap.set_defaults(func=_snapshot)
