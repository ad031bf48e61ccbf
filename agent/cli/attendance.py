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
from agent.messages import Message, message, render_or
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

    if not path.is_file():  # said here: OpenCV would also print its own English warning
        raise AgentError(
            message("attendance.image_missing", path=str(path)),
            message("attendance.image_missing_hint"),
        )
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise AgentError(
            message("attendance.image_unreadable", path=str(path)),
            message("attendance.image_unreadable_hint"),
        )
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
        stats = result.stats
        reason: str | Message = stats.unknown_msg or message("attendance.snapshot.no_frame")
        if result.camera_error and stats.unknown_msg is None:  # an untranslated camera error
            reason = result.camera_error
        raise AgentError(
            message("attendance.snapshot.nothing", reason=reason),
            message("attendance.snapshot.nothing_hint"),
        )
    write_snapshot(args.out, annotate(result.frame, result.frame_faces, counter.settings))
    faces = result.frame_faces
    outside = (
        message("attendance.snapshot.outside", count=len(faces.excluded))
        if len(faces.excluded)
        else ""
    )
    sys.stdout.write(
        t("attendance.snapshot.wrote", path=str(args.out), count=faces.count, outside=outside)
        + "\n"
    )
    return int(ExitCode.OK)


def _frames(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(t("attendance.frames_range"))
    return value


def _common(parser: argparse.ArgumentParser) -> None:
    file = t("cli.metavar.file")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--image", type=Path, metavar=file, help=t("attendance.image_help"))
    source.add_argument("--camera", action="store_true", help=t("attendance.camera_help"))
    parser.add_argument(
        "--frames",
        type=_frames,
        metavar=t("cli.metavar.number"),
        help=t("attendance.frames_help"),
    )
    parser.add_argument(
        "--models-dir",
        type=Path,
        metavar=t("cli.metavar.dir"),
        help=t("attendance.models_dir_help"),
    )
    parser.add_argument("-v", "--verbose", action="store_true", help=t("attendance.verbose_help"))


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    att = sub.add_parser("attendance", help=t("attendance.help"))
    att_sub = att.add_subparsers(
        dest="attendance_command", required=True, metavar=t("cli.metavar.action")
    )

    count = att_sub.add_parser(
        "count", help=t("attendance.count_help"), description=t("attendance.count_description")
    )
    _common(count)
    count.add_argument("--json", action="store_true", help=t("cli.json_help"))
    count.set_defaults(func=_count)

    snap = att_sub.add_parser(
        "snapshot",
        help=t("attendance.snapshot_help"),
        description=t("attendance.snapshot_description"),
    )
    _common(snap)
    snap.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar=t("cli.metavar.file"),
        help=t("attendance.out_help"),
    )
    snap.set_defaults(func=_snapshot)
