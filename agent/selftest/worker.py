"""Run the self-test in a child process.

Why a child: the probes load OpenCV, numpy and PortAudio (~100 MB) which would otherwise stay
in the daemon for good (idle target 60 MB), and a driver stuck in a blocking ioctl can only be
abandoned by a thread but *killed* as a process. The settings go to the child on stdin (so
secrets never appear on a command line); results come back as JSON on stdout.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from agent.checks.model import CheckResult, CheckRun, Outcome, Status, said
from agent.config import Settings
from agent.messages import Message, message
from agent.selftest.runner import ProbeSpec, run_probes
from agent.selftest.suite import judge, run_selftest
from agent.system.workers import die_with_parent, run_worker

log = logging.getLogger(__name__)

# Interpreter start-up and imports of the probes' libraries, on top of the probes' own timeouts.
_STARTUP_ALLOWANCE_S = 15.0


def plain_settings(value: Any) -> Any:
    """Settings as JSON-able values, secrets included (model_dump would mask them)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: plain_settings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_settings(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _components(settings: Settings, only: Sequence[str]) -> list[str]:
    return list(only) if only else settings.enabled_components()


def _all_failed(settings: Settings, only: Sequence[str], reason: Message) -> CheckRun:
    def failed() -> Outcome:
        return said(Status.ERROR, reason, message("selftest.hint.restart"))

    # Through the runner so the results are stamped exactly like real ones.
    results = run_probes([ProbeSpec(c, failed, 1.0) for c in _components(settings, only)])
    return judge(settings, results, only)


def deadline_s(settings: Settings, components: Sequence[str]) -> float:
    """How long a child checking `components` may run before it is killed."""
    timeouts = [settings.component(c).timeout_s for c in components]
    return max(timeouts, default=0.0) + _STARTUP_ALLOWANCE_S


def run_selftest_isolated(settings: Settings, only: Sequence[str] = ()) -> CheckRun:
    """run_selftest in a child process; a hung or crashed child becomes `error` results."""
    deadline = deadline_s(settings, _components(settings, only))
    request = json.dumps(
        {"settings": plain_settings(settings.model_dump(mode="python")), "only": list(only)}
    )
    try:
        returncode, stdout = run_worker(
            "agent.selftest.worker", request.encode(), deadline, settings.paths.state_dir
        )
    except OSError as exc:
        return _all_failed(settings, only, message("selftest.worker_no_start", error=str(exc)))
    except subprocess.TimeoutExpired:
        log.error("self-test worker hung for %.0f s; killed", deadline)
        return _all_failed(settings, only, message("selftest.worker_hung", seconds=deadline))
    if returncode != 0:
        return _all_failed(settings, only, message("selftest.worker_crashed", code=returncode))
    try:
        results = [CheckResult.model_validate(r) for r in json.loads(stdout)]
    except ValueError as exc:
        return _all_failed(settings, only, message("selftest.worker_garbage", error=str(exc)))
    return judge(settings, results, only)


def main() -> int:
    die_with_parent()
    request = json.load(sys.stdin)
    # model_validate takes the values as given: no file, no environment is read again.
    settings = Settings.model_validate(request["settings"])
    from agent.system.logs import setup_logging  # noqa: PLC0415

    setup_logging("warning" if settings.log_level in ("debug", "info") else settings.log_level)
    test = run_selftest(settings, request["only"])
    try:
        sys.stdout.write(json.dumps([r.model_dump(mode="json") for r in test.results]))
        sys.stdout.flush()
    except BrokenPipeError:
        pass  # the daemon stopped while we ran: nobody wants the answer
    # Probe threads stuck in device I/O must not keep the child alive.
    os._exit(0)


if __name__ == "__main__":
    raise SystemExit(main())
