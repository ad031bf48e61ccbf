"""A full self-test of the site: build the probes from settings, run them, judge."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agent.checks.model import CheckResult, Verdict, site_verdict
from agent.checks.runner import run_probes
from agent.config import Settings
from agent.probes import build_probes


@dataclass(frozen=True)
class SelfTest:
    results: list[CheckResult]
    verdict: Verdict


def run_selftest(settings: Settings, only: Sequence[str] = ()) -> SelfTest:
    results = run_probes(build_probes(settings, only))
    return SelfTest(results, site_verdict(results, settings.required_components()))
