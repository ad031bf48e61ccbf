"""The display's own power state through its firmware profile: Samsung MDC or LG over
RS-232, PJLink over TCP for projectors, or HDMI-CEC through cec-client. The DRM display probe
(agent/probes/display.py) calls this when display.profile is set and merges the result,
prefixing these metrics with power_ (so the power field reads as power_state)."""

from __future__ import annotations

from dataclasses import replace

from agent.checks.model import MetricValue, Outcome, Status, said
from agent.config import Settings
from agent.messages import message
from agent.probes.profiled import check_with_profile
from agent.profiles.session import Target


def query_display_power(settings: Settings) -> Outcome:
    cfg = settings.display
    if not cfg.profile:
        return said(Status.SKIPPED, message("display.no_profile"))
    target = Target(
        port=cfg.port,
        device_id=cfg.device_id,
        password=cfg.password.get_secret_value() if cfg.password else None,
    )
    outcome = check_with_profile(
        settings,
        check="display",
        profile_name=cfg.profile,
        target=target,
        timeout_s=cfg.timeout_s,
    )
    metrics: dict[str, MetricValue] = {
        ("state" if key == "power" else key): value for key, value in outcome.metrics.items()
    }
    return replace(outcome, metrics=metrics)
