"""Runs probes concurrently, each under its own timeout.

A probe is a plain callable returning an `Outcome`. Each runs in its own daemon thread: a
device driver stuck in a blocking read cannot be interrupted from Python, so the runner
stops *waiting* for it at its deadline and reports the timeout; the stuck thread is left
to die with its I/O and never holds up the others or the process exit.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from agent.checks.model import CheckResult, Outcome, Status, said
from agent.components import COMPONENTS, TABLE
from agent.config import Settings
from agent.errors import AgentError, ConfigError
from agent.messages import message

log = logging.getLogger(__name__)

ProbeFn = Callable[[], Outcome]


@dataclass(frozen=True)
class ProbeSpec:
    component: str
    run: ProbeFn
    timeout_s: float


class _Slot:
    def __init__(self) -> None:
        self.outcome: Outcome | None = None
        self.done = threading.Event()
        self.finished_at = 0.0


def _guarded(spec: ProbeSpec, slot: _Slot) -> None:
    try:
        slot.outcome = spec.run()
    except AgentError as exc:
        # A device problem the probe recognised (missing, silent, garbage): the device
        # failed the check; the message and hint come from the probe.
        slot.outcome = Outcome(
            Status.FAIL, exc.message, exc.hint, {}, reason_msg=exc.msg, hint_msg=exc.hint_msg
        )
    except Exception as exc:
        log.exception("probe %s raised", spec.component)
        slot.outcome = said(
            Status.ERROR,
            message("selftest.crashed", error=f"{type(exc).__name__}: {exc}"),
            message("selftest.hint.bug"),
        )
    finally:
        slot.finished_at = time.monotonic()
        slot.done.set()


def run_probes(specs: Sequence[ProbeSpec]) -> list[CheckResult]:
    """Run every probe at once; return one result per probe, in the order given."""
    started_wall = datetime.now(UTC)
    started = time.monotonic()
    slots: list[_Slot] = []
    for spec in specs:
        slot = _Slot()
        slots.append(slot)
        threading.Thread(
            target=_guarded, args=(spec, slot), name=f"probe-{spec.component}", daemon=True
        ).start()

    results: list[CheckResult] = []
    for spec, slot in zip(specs, slots, strict=True):
        remaining = spec.timeout_s - (time.monotonic() - started)
        if slot.done.wait(max(0.0, remaining)) and slot.outcome is not None:
            outcome = slot.outcome
            duration = slot.finished_at - started
        else:
            outcome = said(
                Status.ERROR,
                message("selftest.timeout", seconds=spec.timeout_s),
                message("selftest.hint.hung", component=spec.component),
            )
            duration = spec.timeout_s
            log.warning("probe %s timed out after %.1f s", spec.component, spec.timeout_s)
        results.append(CheckResult.from_outcome(spec.component, outcome, started_wall, duration))
    return results


def _bind(settings: Settings, component: str) -> ProbeSpec:
    spec = TABLE[component]

    def run() -> Outcome:
        func = getattr(importlib.import_module(spec.probe_module), spec.probe_function)
        outcome: Outcome = func(settings)
        return outcome

    return ProbeSpec(component, run, settings.component(component).timeout_s)


def build_probes(settings: Settings, only: Sequence[str] = ()) -> list[ProbeSpec]:
    """The probes to run: the enabled components, or those named (enabled or not)."""
    unknown = [c for c in only if c not in TABLE]
    if unknown:
        raise ConfigError(
            message("selftest.unknown_components", names=", ".join(unknown)),
            message("selftest.hint.components", names=", ".join(COMPONENTS)),
        )
    components = list(only) if only else settings.enabled_components()
    return [_bind(settings, c) for c in components]
