"""`[session] auto_rejoin`: the agent redials the session's conference itself once the codec
has been out of the call for hold_s, then at most once per rejoin_every_s while it stays out.

End to end: the daemon (a child process) with the Cisco emulator on a pty playing the
recording's `rejoin` scenario and a real mosquitto: the far end hangs up -> `dropped` -> the
agent dials the schedule's conference address -> the emulator is in the call again -> `live`
says `in_call`, and `live/event` carries the try."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.checks.live import LiveState, LiveVerdict
from agent.commands.actions import ActionFailed
from agent.config import Settings
from agent.contract.payloads import Envelope, LiveEventPayload
from agent.messages import Message
from agent.runtime.rejoin import AutoRejoin, dial_session
from agent.schedule.model import Session
from agent.sim.broker import Mosquitto
from agent.sim.serial_device import PtyDevice
from agent.transport.listener import Listener, Received
from tests.fixtures.broker import AgentProcess, agent_config, wait_until
from tests.test_live_e2e import ADDRESS, DIAL, held_call

HOLD_S = 1.0


@pytest.fixture
def codec() -> Iterator[PtyDevice]:
    dev = PtyDevice(held_call(), scenario="rejoin").start()
    yield dev
    dev.stop()


def _session(address: str | None = ADDRESS) -> Session:
    now = datetime.now(UTC)
    return Session(
        session_id="S1",
        start=now - timedelta(minutes=5),
        end=now + timedelta(hours=1),
        conference_address=address,
    )


def _verdicts(msgs: list[Received]) -> list[str]:
    return [m.json()["verdict"] for m in msgs if m.topic.endswith("/live")]


@pytest.mark.broker
def test_a_dropped_site_redials_by_itself_and_is_in_the_call_again(
    broker: Mosquitto, codec: PtyDevice, tmp_path: Path
) -> None:
    config = agent_config(broker, tmp_path / "state", "s1", check_interval_s=3600.0)
    config["codec"] = {"enabled": True, "port": codec.port, "password": "secret"}
    config["session"] = {"poll_s": 0.5, "hold_s": HOLD_S, "auto_rejoin": True}
    centre = Listener(broker.endpoint(), ["vc/s1/live", "vc/s1/live/event"]).start()
    schedule = {"schema_version": "1", "entries": [_session().model_dump(mode="json")]}
    centre.publish("vc/s1/schedule", json.dumps(schedule).encode(), retain=True)
    agent = AgentProcess(config, tmp_path).start()
    try:
        assert centre.wait_for(lambda ms: "in_call" in _verdicts(ms), 20), agent.log()
        assert DIAL not in codec.requests
        codec.jump("dropped")  # the far end hangs up
        assert centre.wait_for(lambda ms: "dropped" in _verdicts(ms), 10), agent.log()
        assert wait_until(lambda: DIAL in codec.requests, 10), agent.log()
        assert centre.wait_for(lambda ms: _verdicts(ms)[-1:] == ["in_call"], 10), agent.log()
    finally:
        assert agent.terminate() == 0
        centre.stop()
    events = [
        LiveEventPayload.model_validate(m.json())
        for m in centre.messages()
        if m.topic.endswith("/event")
    ]
    steps = [(e.before, e.after) for e in events]
    assert steps == [
        (None, LiveVerdict.IN_CALL),
        (LiveVerdict.IN_CALL, LiveVerdict.DROPPED),
        (LiveVerdict.DROPPED, LiveVerdict.DROPPED),  # the try
        (LiveVerdict.DROPPED, LiveVerdict.IN_CALL),
    ]
    dropped, tried = events[1], events[2]
    assert tried.reason_msg is not None and tried.reason_msg.id == "live.rejoin.dialled"
    assert ADDRESS in tried.reason
    assert (tried.ts - dropped.ts).total_seconds() >= HOLD_S - 0.1  # held first
    assert codec.requests.count(DIAL) == 1
    assert "auto_rejoin: session S1 dropped" in agent.log()


def _settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings.model_validate(
        {
            "site": {"site_id": "s1", "name": "Xã Một", "tier": "commune"},
            "paths": {"state_dir": str(tmp_path)},
            **extra,
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _dropped(since: datetime) -> LiveState:
    return LiveState(verdict=LiveVerdict.DROPPED, since=since, reason="dropped")


def test_tries_once_held_then_at_most_every_rejoin_every_s_and_again_after_a_new_drop(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, session={"hold_s": 10, "rejoin_every_s": 60})
    clock, dialled, sent = Clock(), [], []

    def dial(_s: Settings, session: Session) -> None:
        dialled.append(clock.now)

    rejoin = AutoRejoin(settings, sent.append, dial=dial, clock=clock)
    session, since = _session(), clock.now
    for step_s in [0, 5, 5, 20, 20, 15, 5, 60]:  # looks at 0, 5, 10, 30, 50, 65, 70, 130 s
        clock.now += timedelta(seconds=step_s)
        rejoin.after_look(_dropped(since), session)
    seconds = [(t - since).total_seconds() for t in dialled]
    assert seconds == [10, 70, 130]
    assert len(sent) == 3
    rejoin.after_look(LiveState(verdict=LiveVerdict.IN_CALL, since=clock.now), session)
    clock.now += timedelta(seconds=1)
    again = clock.now
    clock.now += timedelta(seconds=10)
    rejoin.after_look(_dropped(again), session)  # a new drop: its own hold, then a try
    assert len(dialled) == 4


def test_a_dial_that_cannot_happen_is_reported_and_never_stops_the_watch(tmp_path: Path) -> None:
    """The real rejoin action with the codec off, and a session without an address: a failed
    try on `live/event` with the action's reason, no exception."""
    settings = _settings(tmp_path, codec={"enabled": False}, session={"hold_s": 0})
    with pytest.raises(ActionFailed):
        dial_session(settings, _session(None))
    sent: list[Envelope] = []
    clock = Clock()
    rejoin = AutoRejoin(settings, sent.append, clock=clock)
    rejoin.after_look(_dropped(clock.now), _session(None))
    clock.now += timedelta(seconds=61)
    rejoin.after_look(_dropped(clock.now - timedelta(seconds=61)), _session())

    def boom(_s: Settings, _session: Session) -> None:
        raise OSError("the line is gone")

    clock.now += timedelta(seconds=61)
    broken = AutoRejoin(settings, sent.append, dial=boom, clock=clock)
    broken.after_look(_dropped(clock.now), _session())
    reasons = [e.reason_msg for e in sent if isinstance(e, LiveEventPayload)]
    assert [r.id if r else None for r in reasons] == ["live.rejoin.failed"] * 3
    problems = [r.params["problem"] for r in reasons if r is not None]
    assert [p.id for p in problems if isinstance(p, Message)] == [
        "command.failed.no_address",  # the action's own reason, checked before the codec
        "command.failed.codec_off",
        "live.rejoin.error",
    ]
    assert "OSError" in reasons[2].text if reasons[2] else False
