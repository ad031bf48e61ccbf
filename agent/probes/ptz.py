"""PTZ camera check through its firmware profile (VISCA): power state and version."""

from __future__ import annotations

from agent.checks.model import Outcome
from agent.config import Settings
from agent.probes.profiled import check_with_profile
from agent.profiles.session import Target


def check_ptz(settings: Settings) -> Outcome:
    cfg = settings.ptz
    return check_with_profile(
        settings,
        check="ptz",
        profile_name=cfg.profile,
        target=Target(port=cfg.port, device_id=cfg.device_id),
        timeout_s=cfg.timeout_s,
    )
