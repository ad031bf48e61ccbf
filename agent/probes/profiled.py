"""Shared by the codec, PTZ and display-power probes: run a firmware profile's queries for
one check and judge the answers. The probes differ only in which settings they read."""

from __future__ import annotations

from agent.checks.model import Outcome, Status, said
from agent.config import Settings
from agent.errors import ProbeError, ProfileError
from agent.messages import message
from agent.profiles.loader import load_profile
from agent.profiles.session import Target, run_queries, target_message
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
        return Outcome(
            Status.ERROR, exc.message, exc.hint, {}, reason_msg=exc.msg, hint_msg=exc.hint_msg
        )
    names = profile.queries_for(check)
    if not names:
        return said(
            Status.ERROR,
            message("profile.no_queries", profile=profile.name, check=check),
            message("profile.hint.choose_profile"),
        )
    label = message(
        "profile.check_target", check=check, target=target_message(profile, target.port)
    )
    try:
        results = run_queries(profile, target, names, deadline_s=timeout_s * _DEADLINE_SHARE)
    except ProbeError as exc:
        hint = exc.hint_msg or (message("profile.text", text=exc.hint) if exc.hint else None)
        return said(
            Status.FAIL,
            message("profile.check_failed", check=check, text=exc.msg or exc.message),
            hint,
            {"profile": profile.name, "reachable": False},
        )
    return judge(profile, results, label).outcome
