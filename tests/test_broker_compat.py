"""bench/broker_compat.py against the broker we ship with (mosquitto: everything works) and
against the same mosquitto behind a front that refuses MQTT 5 as a 3.1.1-only broker does
(what the agent and the centre do then). RabbitMQ is not run here: see docs/brokers.md."""

from __future__ import annotations

import re

import pytest

from agent.centre.sender import Sender
from agent.sim.broker import Mosquitto, V311OnlyProxy
from agent.transport.mqtt import Endpoint, Protocol
from tests.bench_kit import load_bench

compat = load_bench("broker_compat")


def verdicts(lines: list[str]) -> dict[str, tuple[str, str]]:
    """feature -> (verdict, detail), from the printed lines (the header skipped)."""
    out = {}
    for line in lines[1:]:
        found = re.match(r"(.+?)\s+(works|refused|wrong)(?:\s+(.*))?$", line)
        assert found, f"no verdict in {line!r}"
        out[found[1]] = (found[2], found[3] or "")
    return out


def test_mosquitto_has_everything_the_agent_and_the_centre_need(
    broker: Mosquitto, capsys: pytest.CaptureFixture[str]
) -> None:
    assert compat.main([f"mqtt://{broker.host}:{broker.port}"]) == 0
    lines = capsys.readouterr().out.splitlines()
    seen = verdicts(lines)
    assert len(seen) == 16, lines
    assert {f: v for f, (v, _) in seen.items() if v != compat.WORKS} == {}
    assert "over MQTT 5" in seen["agent reports (broker.protocol auto)"][1]


def test_a_311_only_broker_the_agent_falls_back_the_centre_refuses_to_share(
    broker: Mosquitto,
) -> None:
    proxy = V311OnlyProxy(broker.port).start()
    try:
        lines = compat.run_checks(f"mqtt://127.0.0.1:{proxy.port}")
    finally:
        proxy.stop()
    seen = {line.feature: (line.verdict, line.detail) for line in lines}
    assert seen["MQTT 5 CONNECT"][0] == compat.REFUSED
    assert seen["MQTT 3.1.1 CONNECT"][0] == compat.WORKS
    for needs_v5 in ("session expiry", "response topic", "receive maximum"):
        (verdict,) = {v for f, (v, _) in seen.items() if f.startswith(needs_v5)}
        assert verdict == compat.REFUSED
    agent = seen["agent reports (broker.protocol auto)"]
    assert agent[0] == compat.WORKS and "over MQTT 3.1.1" in agent[1], agent
    shared = seen["centre ingest, protocol auto, share_group 'centre'"]
    assert shared[0] == compat.REFUSED and "shared subscriptions need MQTT 5" in shared[1]
    assert seen["centre ingest, protocol 3.1.1, share_group ''"][0] == compat.WORKS
    # The rest is mosquitto's, over 3.1.1: all there.
    assert seen["retained messages through wildcard filters"][0] == compat.WORKS
    assert seen["will (retained, QoS 1) on a dropped connection"][0] == compat.WORKS


def test_a_broker_that_drops_mqtt5_unanswered_is_taken_for_311_by_the_centre_too(
    broker: Mosquitto,
) -> None:
    """RabbitMQ 3.10 closes an MQTT 5 CONNECT without a CONNACK: the centre's `auto` must read
    that as the agent does, and reach its own refusal of the shared subscription."""
    proxy = V311OnlyProxy(broker.port, answer=False).start()
    try:
        lines = compat.run_checks(f"mqtt://127.0.0.1:{proxy.port}")
        seen = {line.feature: (line.verdict, line.detail) for line in lines}
        assert seen["MQTT 5 CONNECT"][0] == compat.REFUSED
        assert "over MQTT 3.1.1" in seen["agent reports (broker.protocol auto)"][1]
        shared = seen["centre ingest, protocol auto, share_group 'centre'"]
        assert shared[0] == compat.REFUSED, shared
        assert "shared subscriptions need MQTT 5" in shared[1], shared
        where = Endpoint("127.0.0.1", proxy.port, "compat-sender", 10)
        with Sender(where, "vc", "auto") as sender:
            assert sender.protocol is Protocol.V311
    finally:
        proxy.stop()
