"""Pushed call changes (issue 19): where the codec's profile lists `feedback`, the live watch
keeps the codec's line open while the session runs, registers once per connection, and a
pushed call change makes it look at once. Real pty, the emulator playing the recorded
pushes (transcribed from the guides), the daemon and a real mosquitto: with `poll_s` at a
minute the drop can only be seen in seconds through the push."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config import Settings
from agent.contract.payloads import LivePayload, parse_report
from agent.probes.call import CallPushes
from agent.profiles.loader import load_profile
from agent.profiles.session import Target, run_queries
from agent.sim.broker import Mosquitto
from agent.sim.recording import Recording, load_recording
from agent.sim.serial_device import PtyDevice
from agent.transport.listener import Listener
from tests.fixtures.broker import ROOT, InProcessAgent, agent_config, wait_until

REGISTER = b"xFeedback register /Status/Call"
POLL_S = 60.0  # a drop seen within seconds came through the push, not a poll


def held(name: str) -> Recording:
    """The `rejoin` scenario with its first step (connected) held until the test jumps."""
    rec = load_recording(name)
    steps = list(rec.scenarios["rejoin"])
    steps[0] = steps[0].model_copy(update={"polls": None})
    return rec.model_copy(update={"scenarios": {**rec.scenarios, "rejoin": steps}})


@pytest.fixture
def cisco() -> Iterator[PtyDevice]:
    dev = PtyDevice(held("cisco-roomos_ce9.15-calls"), scenario="rejoin").start()
    yield dev
    dev.stop()


def schedule(start: datetime) -> bytes:
    entry = {
        "session_id": "s-now",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=2)).isoformat(),
    }
    return json.dumps({"schema_version": "1", "entries": [entry]}).encode()


def verdicts(centre: Listener) -> list[str]:
    return [
        parse_report(LivePayload, m.payload).verdict.value for m in centre.messages("vc/s1/live")
    ]


@pytest.mark.broker
def test_a_pushed_hang_up_is_dropped_on_the_broker_long_before_the_next_poll(
    broker: Mosquitto, cisco: PtyDevice, tmp_path: Path
) -> None:
    config = agent_config(broker, tmp_path / "state", check_interval_s=3600)
    config["schedule"] = {"local_file": str(tmp_path / "none.toml"), "overrun_minutes": 0}
    config["codec"] = {"enabled": True, "port": cisco.port, "password": "secret"}
    config["session"] = {"poll_s": POLL_S}
    centre = Listener(broker.endpoint(), ["vc/s1/live"]).start()
    centre.publish(
        "vc/s1/schedule", schedule(datetime.now(UTC) - timedelta(minutes=5)), retain=True
    )
    agent = InProcessAgent(Settings(**config)).start()
    try:
        assert centre.wait_for(lambda ms: len(ms) >= 1, 30)
        assert verdicts(centre) == ["in_call"]
        wait_until(lambda: REGISTER in cisco.requests, 10)
        polls = cisco.requests.count(b"xStatus Call")
        cisco.jump("dropped")  # the far end hangs up; the codec pushes the change
        switched = time.monotonic()
        assert centre.wait_for(lambda ms: len(ms) >= 2, 10)
        seen_s = time.monotonic() - switched
    finally:
        agent.stop()
        centre.stop()
    print(f"\npushed drop on the broker {seen_s:.2f} s after the codec's switch (poll_s {POLL_S})")
    assert verdicts(centre)[:2] == ["in_call", "dropped"]
    assert seen_s < 3.0
    # registered once for the connection, and one look for the push's burst of lines
    assert cisco.requests.count(REGISTER) == 1
    # the agent stopped: the registration was taken back, so no pushes outlive the watch
    assert cisco.requests[-1] == b"xFeedback deregister /Status/Call"
    assert cisco.requests.count(b"xStatus Call") - polls <= 2


@pytest.mark.parametrize("name", ["poly-group_6.2-calls", "poly-hdx_3.1-calls"])
def test_poly_pushes_are_heard_and_the_line_still_answers_queries(name: str) -> None:
    profile = load_profile(ROOT / "firmware_profiles", name.split("_", maxsplit=1)[0])
    dev = PtyDevice(held(name), scenario="rejoin").start()
    heard: list[str] = []
    got = threading.Event()

    def on_push(line: str) -> None:
        heard.append(line)
        got.set()

    target = Target(port=dev.port, password="secret")
    pushes = CallPushes(profile, target, on_push, timeout_s=3.0).start()
    try:
        assert pushes.registered.wait(10)
        assert b"notify callstatus" in dev.requests and b"notify linestatus" in dev.requests
        # the line is shared: a query still gets its answer while the listener holds it
        (result,) = run_queries(profile, target, ["call_live"], deadline_s=5)
        assert result.ok and "connected" in result.fields["call_reply"]
        assert not heard  # the registration's replies and the query's are no pushes
        dev.jump("dropped")
        assert got.wait(2)
        assert wait_until(lambda: len(heard) == 3, 2)
        pushes.stop()
        assert dev.requests[-2:] == [b"nonotify callstatus", b"nonotify linestatus"]
        # taken back: the next hang-up pushes nothing into the readiness check's replies
        dev.jump("connected")
        dev.jump("dropped")
        (after,) = run_queries(profile, target, ["call_live"], deadline_s=5)
        assert after.ok and "notification" not in after.fields["call_reply"]
    finally:
        pushes.stop()
        dev.stop()
    assert heard[0].startswith("notification:callstatus:outgoing:43:")
    assert heard[0].split(":")[6] == "disconnecting"
    assert heard[1] == "notification:linestatus:outgoing:43:0:0:disconnected"


def test_without_a_registration_the_emulator_pushes_nothing(cisco: PtyDevice) -> None:
    profile = load_profile(ROOT / "firmware_profiles", "cisco-roomos")
    target = Target(port=cisco.port, username="admin", password="secret")
    (result,) = run_queries(profile, target, ["call_live"], deadline_s=5)
    assert result.ok
    cisco.jump("dropped")
    (after,) = run_queries(profile, target, ["call_live"], deadline_s=5)
    # the reply is the idle block alone: no pushed Status line waiting on the line before it
    assert after.ok and "Status" not in after.fields["call_reply"]


def test_paused_for_the_self_test_child_the_listener_leaves_the_line_alone(
    cisco: PtyDevice,
) -> None:
    """The self-test runs in a child process, outside the line's lock: paused, the listener
    reads nothing (the pushed lines wait on the line for whoever reads it); resumed, it
    hears them."""
    profile = load_profile(ROOT / "firmware_profiles", "cisco-roomos")
    target = Target(port=cisco.port, username="admin", password="secret")
    heard: list[str] = []
    pushes = CallPushes(profile, target, heard.append, timeout_s=3.0).start()
    try:
        assert pushes.registered.wait(10)
        pushes.pause()
        cisco.jump("dropped")
        time.sleep(0.5)
        assert heard == []
        pushes.resume()
        assert wait_until(lambda: len(heard) == 2, 2)
    finally:
        pushes.stop()
    assert heard == ["*s Call 3 Status: Disconnecting", "*s Call 3 (ghost=True):"]
