"""One attendance burst in a child process, for the daemon.

Why a child: OpenCV's DNN and the model take ~200 MB while counting; in a child they are
returned to the system after each burst, so the idle daemon stays small, and a camera stuck
in a driver call is killed with its process. Settings go in on stdin (no secrets on a
command line); the burst's statistics come back as JSON on stdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass

from agent.attendance.burst import BurstStats
from agent.config import Settings
from agent.messages import Message, message
from agent.selftest.worker import plain_settings
from agent.system.workers import die_with_parent, run_worker

_ALLOWANCE_S = 30.0  # interpreter, OpenCV and model loading on top of the burst itself


@dataclass(frozen=True)
class Burst:
    stats: BurstStats
    detector: str
    tiled: bool


def _blind(reason: Message, settings: Settings) -> Burst:
    return Burst(BurstStats.blind(0, 0, (), reason), settings.attendance.detector, False)


def deadline_s(settings: Settings) -> float:
    """How long a counting child may run before it is killed."""
    cfg = settings.attendance
    burst = cfg.burst_frames * cfg.burst_spacing_s + settings.camera.open_timeout_s
    return burst + _ALLOWANCE_S


def count_burst_isolated(settings: Settings) -> Burst:
    """A burst counted by a child process; any failure is an unknown count with its reason."""
    deadline = deadline_s(settings)
    request = json.dumps({"settings": plain_settings(settings.model_dump(mode="python"))})
    try:
        returncode, stdout = run_worker(
            "agent.attendance.worker", request.encode(), deadline, settings.paths.state_dir
        )
    except subprocess.TimeoutExpired:
        return _blind(message("attendance.unknown.hung", seconds=deadline), settings)
    except OSError as exc:
        return _blind(message("attendance.unknown.no_start", error=str(exc)), settings)
    if returncode != 0:
        return _blind(message("attendance.unknown.exit_code", code=returncode), settings)
    try:
        raw = json.loads(stdout)
        why = raw["stats"].get("unknown_msg")
        stats = BurstStats(
            **{
                **raw["stats"],
                "counts": tuple(raw["stats"]["counts"]),
                "unknown_msg": None if why is None else Message.model_validate(why),
            }
        )
        return Burst(stats, str(raw["detector"]), bool(raw["tiled"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return _blind(message("attendance.unknown.garbage", error=str(exc)), settings)


def main() -> int:
    die_with_parent()  # before OpenCV's import, which alone can take seconds
    from agent.attendance.counter import Counter  # noqa: PLC0415 - OpenCV: only in the child
    from agent.system.logs import setup_logging  # noqa: PLC0415

    settings = Settings.model_validate(json.load(sys.stdin)["settings"])
    setup_logging("warning")
    result = Counter(settings.attendance, settings.camera).count_camera()
    stats = asdict(result.stats)
    why = result.stats.unknown_msg
    stats["unknown_msg"] = None if why is None else why.model_dump(mode="json")
    out = {"stats": stats, "detector": result.detector, "tiled": result.tiled}
    try:
        sys.stdout.write(json.dumps(out))
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    os._exit(0)  # a grabber thread stuck in the driver must not keep the child alive


if __name__ == "__main__":
    raise SystemExit(main())
