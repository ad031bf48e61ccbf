"""Probes: the I/O edge. Each talks to one kind of device and returns an `Outcome`.

Probe modules (named per component in agent.components) are imported only when their
component is checked, so the idle daemon never loads OpenCV, numpy or PortAudio. `frames`
is the one camera frame grabber, for the camera check and attendance counting.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from agent.checks.model import Outcome
from agent.components import COMPONENTS, TABLE
from agent.config import Settings
from agent.errors import ConfigError
from agent.selftest.runner import ProbeSpec


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
            f"unknown component(s): {', '.join(unknown)}",
            f"choose from: {', '.join(COMPONENTS)}",
        )
    components = list(only) if only else settings.enabled_components()
    return [_bind(settings, c) for c in components]
