"""Codec check through its firmware profile (Cisco xAPI, Poly API, ...): reachable, firmware
version, call state, SIP/H.323 registration, the peripherals it sees, its people count."""

from __future__ import annotations

from agent.checks.model import Outcome
from agent.config import Settings
from agent.probes.profiled import check_with_profile
from agent.profiles.session import Target


def check_codec(settings: Settings) -> Outcome:
    cfg = settings.codec
    target = Target(
        port=cfg.port,
        username=cfg.username,
        password=cfg.password.get_secret_value() if cfg.password else None,
    )
    return check_with_profile(
        settings, check="codec", profile_name=cfg.profile, target=target, timeout_s=cfg.timeout_s
    )
