"""Shared by the codec, PTZ and display-power probes: run a firmware profile's queries for
one check and judge the answers. The probes differ only in which settings they read."""

from __future__ import annotations

from agent.checks.model import Outcome, Status
from agent.config import Settings
from agent.errors import ProbeError, ProfileError
from agent.profiles.loader import load_profile
from agent.profiles.session import Target, describe_target, run_queries
from agent.profiles.verdict import judge

# The runner stops waiting at the component's timeout; finish a little before it so the
# reason is ours ("no answer to 'version'") rather than the runner's "no answer within".
_DEADLINE_SHARE = 0.9


def check_with_profile(
    settings: Settings,
    *,
    check: str,
    profile_name: str,
    target: Target,
    timeout_s: float,
) -> Outcome:
    try:
        profile = load_profile(settings.paths.profiles_dir, profile_name)
    except ProfileError as exc:
        return Outcome(Status.ERROR, exc.message, exc.hint)
    names = profile.queries_for(check)
    if not names:
        return Outcome(
            Status.ERROR,
            f"firmware profile {profile.name} has no {check} queries",
            "choose a profile made for this device: `edge-agent profiles list`",
        )
    label = f"{check} {describe_target(profile, target.port)}"
    try:
        results = run_queries(profile, target, names, deadline_s=timeout_s * _DEADLINE_SHARE)
    except ProbeError as exc:
        return Outcome(
            Status.FAIL,
            f"{check} {exc.message}",
            exc.hint,
            {"profile": profile.name, "reachable": False},
        )
    return judge(profile, results, label).outcome
