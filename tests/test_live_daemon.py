"""The live watch end to end: the daemon with a real mosquitto, a session in its schedule, a
network-only site (no codec profile) whose MCU target is a local listener. The line good:
`in_call`; the MCU stops answering: `poor` once held; the session over: the last `live` says
so. Nothing is published on `live` outside a session."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.checks.live import CallState
from agent.config import Settings
from agent.contract.payloads import LiveEventPayload, LivePayload, parse_report
from agent.runtime.daemon import Agent
from agent.sim.broker import Mosquitto
from agent.transport.listener import Listener, Received
from tests.fixtures.broker import InProcessAgent, agent_config

pytestmark = pytest.mark.broker


class Mcu:
    """A TCP listener standing in for the MCU. It answers (accepts) until it `refuse`s (the
    port closed: connects are refused at once) or falls `silent` (it stops accepting and its
    backlog is full: connects time out, as with a line cut on the way)."""

    def __init__(self) -> None:
        # A backlog roomy enough that the agent's probes are never refused while it answers
        # (backlog 0 dropped a probe now and then on a loaded machine: `poor` too soon).
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=8)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self._answer = threading.Event()
        self._answer.set()
        self._parked = threading.Event()
        self._closed = threading.Event()
        self._held: list[socket.socket] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            if not self._answer.is_set():
                self._parked.set()
                time.sleep(0.05)
                continue
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.close()

    def stop_answering(self, how: str) -> None:
        if how == "refuses":
            self.close()
            return
        self._answer.clear()
        assert self._parked.wait(5)
        # Fill the backlog: connections are queued until one is left waiting (its SYN dropped).
        for _ in range(64):
            try:
                self._held.append(socket.create_connection(("127.0.0.1", self.port), 0.5))
            except TimeoutError:
                return
        raise AssertionError("the listener's backlog never filled")

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self.sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def mcu() -> Iterator[Mcu]:
    listener = Mcu()
    yield listener
    listener.close()


def settings(broker: Mosquitto, tmp_path: Path, mcu_port: int) -> Settings:
    config: dict[str, Any] = agent_config(broker, tmp_path / "state", check_interval_s=3600)
    config["schedule"] = {"local_file": str(tmp_path / "none.toml"), "overrun_minutes": 0}
    config["network"]["targets"].append(
        {"name": "mcu", "host": "127.0.0.1", "port": mcu_port, "role": "mcu"}
    )
    config["network"]["samples"] = 3
    config["session"] = {"poll_s": 0.3, "hold_s": 1.0, "recover_s": 1.0}
    return Settings(**config)


def schedule(start: datetime, minutes: float = 120) -> bytes:
    entry = {
        "session_id": "s-now",
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=minutes)).isoformat(),
    }
    return json.dumps({"schema_version": "1", "entries": [entry]}).encode()


def verdicts(messages: list[Received]) -> list[str | None]:
    return [m.json()["verdict"] for m in messages if m.topic == "vc/s1/live"]


@pytest.mark.parametrize("how", ["refuses", "silent"])
def test_network_only_site_shows_poor_when_its_mcu_stops_answering(broker, tmp_path, mcu, how):
    centre = Listener(broker.endpoint(), ["vc/s1/live", "vc/s1/live/event"]).start()
    now = datetime.now(UTC)
    centre.publish("vc/s1/schedule", schedule(now - timedelta(minutes=5)), retain=True)
    agent = InProcessAgent(settings(broker, tmp_path, mcu.port)).start()
    try:
        assert centre.wait_for(lambda ms: "in_call" in verdicts(ms), 30)
        mcu.stop_answering(how)
        assert centre.wait_for(lambda ms: "poor" in verdicts(ms), 15)
        # the session is taken off the schedule: the last `live` says it is over
        centre.publish("vc/s1/schedule", json.dumps({"schema_version": "1"}).encode(), retain=True)
        assert centre.wait_for(
            lambda ms: any(m.json()["session"] is None for m in ms if m.topic == "vc/s1/live"),
            15,
        )
    finally:
        agent.stop()
        centre.stop()
    lives = [parse_report(LivePayload, m.payload) for m in centre.messages("vc/s1/live")]
    events = [
        parse_report(LiveEventPayload, m.payload) for m in centre.messages("vc/s1/live/event")
    ]
    assert [live.verdict.value for live in lives] == ["in_call", "poor", "poor"]
    assert lives[0].reason_msg is not None and lives[0].reason_msg.id == "live.path_good"
    poor = lives[1]
    assert poor.session is not None and poor.session.session_id == "s-now"
    assert poor.reason == "poor media: mcu does not answer"
    assert poor.hint_msg is not None and poor.hint_msg.id == "live.hint.path_down"
    assert poor.path[0].target == "mcu" and poor.path[0].loss_pct == 100.0
    assert poor.call is None
    assert lives[-1].session is None
    # poor was held for hold_s before it was said
    assert (poor.since - lives[0].since).total_seconds() >= 1.0
    assert [(e.before and e.before.value, e.after.value) for e in events] == [
        (None, "in_call"),
        ("in_call", "poor"),
    ]
    seqs = [m.seq for m in [*lives, *events]]
    assert len(set(seqs)) == len(seqs)  # each through the outbox, numbered


def test_nothing_on_live_outside_a_session(broker, tmp_path, mcu):
    centre = Listener(broker.endpoint(), ["vc/s1/live", "vc/s1/live/event", "vc/s1/state"]).start()
    later = datetime.now(UTC) + timedelta(hours=1)
    centre.publish("vc/s1/schedule", schedule(later), retain=True)
    agent = InProcessAgent(settings(broker, tmp_path, mcu.port)).start()
    try:
        # the agent is up and reporting (its startup check's state), and ten polls pass
        assert centre.wait_for(
            lambda ms: any(m.json().get("verdict") for m in ms if m.topic == "vc/s1/state"), 30
        )
        assert not centre.wait_for(lambda ms: any("live" in m.topic for m in ms), 3.0)
    finally:
        agent.stop()
        centre.stop()


def test_a_codec_dropping_out_is_seen_dropped_within_a_poll(broker, tmp_path, mcu):
    """The codec's reader is given to the daemon (the profile's reader is another module's
    test); what matters here is the way from its answer to the broker."""
    in_call = threading.Event()
    in_call.set()

    def read_call() -> CallState:
        return CallState(in_call=in_call.is_set(), far_end="sip:mcu@tinh")

    centre = Listener(broker.endpoint(), ["vc/s1/live/event"]).start()
    centre.publish(
        "vc/s1/schedule", schedule(datetime.now(UTC) - timedelta(minutes=5)), retain=True
    )
    agent = Agent(settings(broker, tmp_path, mcu.port), read_call=read_call)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,))
    thread.start()
    try:
        assert centre.wait_for(lambda ms: len(ms) == 1, 30)
        dropped_at = time.monotonic()
        in_call.clear()
        assert centre.wait_for(lambda ms: len(ms) == 2, 10)
        seen_after = time.monotonic() - dropped_at
    finally:
        stop.set()
        thread.join(10)
        centre.stop()
    events = [parse_report(LiveEventPayload, m.payload) for m in centre.messages()]
    assert [e.after.value for e in events] == ["in_call", "dropped"]
    assert events[0].reason == "in the call with sip:mcu@tinh"
    assert events[1].reason_msg is not None and events[1].reason_msg.id == "live.dropped"
    assert seen_after < 0.3 + 2.0  # one poll, and the outbox's way to the broker
