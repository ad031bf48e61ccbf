"""The codec's call and media health during a session, read through its firmware profile's
`[live]` table (agent/profiles/live.py turns the replies into a CallState).

Never raises for what the codec does: a silent, garbled or half-answering codec gives
CallState(in_call=None), the "cannot tell" the live verdict turns into `unknown`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from agent.checks.live import CallState
from agent.errors import ProbeError
from agent.profiles.live import call_state
from agent.profiles.model import Profile
from agent.profiles.session import QueryResult, Target, run_queries

log = logging.getLogger(__name__)


def _reply(result: QueryResult | None) -> str | None:
    if result is None or not result.ok:
        return None
    return "\n".join(result.fields.values())


def read_call(
    profile: Profile, target: Target, timeout_s: float, *, now: datetime | None = None
) -> CallState:
    """Ask the codec for its call and media in one session of at most `timeout_s`."""
    live = profile.live
    if live is None:
        return CallState(in_call=None)
    names = [live.call] + ([live.media] if live.media and live.media != live.call else [])
    try:
        results = {r.name: r for r in run_queries(profile, target, names, deadline_s=timeout_s)}
    except (ProbeError, OSError) as exc:
        log.info("call state of %s unknown: %s", profile.name, exc)
        return CallState(in_call=None)
    call = results.get(live.call)
    if call is not None and call.error is not None:
        log.info("call state of %s unknown: %s", profile.name, call.error)
    media = _reply(results.get(live.media)) if live.media else None
    return call_state(live, _reply(call), media, now or datetime.now(UTC))


__all__ = ["read_call"]
