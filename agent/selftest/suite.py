"""A full self-test of the site: build the probes from settings, run them, judge."""

from __future__ import annotations

from collections.abc import Sequence

from agent.checks.model import CheckResult, CheckRun, site_verdict
from agent.components import COMPONENTS
from agent.config import Settings
from agent.selftest.runner import build_probes, run_probes


def judge(settings: Settings, results: list[CheckResult], only: Sequence[str] = ()) -> CheckRun:
    """The run's verdict and results; its trigger, start and duration are for the caller, who
    knows them, to add (the daemon does)."""
    # A partial check judges only what it looked at: the rest is not "never checked".
    required = [c for c in settings.required_components() if not only or c in only]
    return CheckRun(verdict=site_verdict(results, required), results=results)


def run_selftest(settings: Settings, only: Sequence[str] = ()) -> CheckRun:
    """Run the probes in this process (the CLI); the daemon uses agent.selftest.worker."""
    return judge(settings, run_probes(build_probes(settings, only)), only)


def only_components(settings: Settings, only: Sequence[str]) -> Settings:
    """Settings with every component not in `only` switched off (a partial self-test)."""
    if not only:
        return settings
    update = {
        name: settings.component(name).model_copy(update={"enabled": False})
        for name in COMPONENTS
        if name not in only
    }
    return settings.model_copy(update=update)
