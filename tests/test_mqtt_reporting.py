"""Reporting over a real mosquitto on 127.0.0.1: availability, retained state and meta,
schemas, TLS with per-site ACL, protocol fallback, start-up errors."""

from __future__ import annotations

import json
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from agent.cli import main
from agent.config import Settings
from agent.contract.payloads import PAYLOADS
from agent.contract.schemas import SCHEMA_DIR, stale_files
from agent.errors import TransportError
from agent.runtime.daemon import Agent
from agent.sim.broker import V311OnlyProxy
from agent.transport.listener import Listener, Received
from agent.transport.mqtt import ConnAck, Connection, Protocol
from tests.fixtures.broker import (
    AgentProcess,
    InProcessAgent,
    agent_config,
    dump_toml,
    may_publish,
    puback,
    wait_until,
)

pytestmark = pytest.mark.broker


def _json(listener: Listener, suffix: str) -> list[dict]:
    return [m.json() for m in listener.messages() if m.topic.endswith("/" + suffix)]


def _has(suffix: str, **fields: object):
    def check(messages: list[Received]) -> bool:
        for m in messages:
            if m.topic.endswith("/" + suffix):
                data = m.json()
                if all(data.get(k) == v for k, v in fields.items()):
                    return True
        return False

    return check


def test_new_subscriber_sees_retained_availability_meta_and_latest_state(
    broker, centre, run_agent, tmp_path
):
    live = centre(broker)
    run_agent(agent_config(broker, tmp_path / "state", check_interval_s=0.3))
    assert live.wait_for(_has("state", cause="check", verdict="ready"), 5)
    time.sleep(0.4)  # let another state through, so "latest" is tested, not "first"

    late = centre(broker, ("vc/s1/#",))
    assert late.wait_for(lambda ms: {m.topic for m in ms} >= {"vc/s1/state", "vc/s1/meta"}, 3)
    retained = {m.topic: m for m in late.messages() if m.retain}
    assert set(retained) == {"vc/s1/availability", "vc/s1/meta", "vc/s1/state"}
    assert retained["vc/s1/availability"].json()["status"] == "online"
    meta = retained["vc/s1/meta"].json()
    assert meta["site"]["name"] == "Site s1"
    assert meta["protocol"] == "5"
    assert [c["component"] for c in meta["components"] if c["enabled"]] == ["network"]
    state = retained["vc/s1/state"].json()
    latest_live_state = max(s["seq"] for s in _json(live, "state"))
    assert state["seq"] >= latest_live_state - 2  # the newest or one being published
    assert state["verdict"] == "ready"
    assert state["components"]["network"]["status"] == "ok"
    # checks are events, not retained
    assert "vc/s1/checks" not in retained


def test_in_a_session_the_agent_skips_checks_but_keeps_its_heartbeat(
    broker, centre, run_agent, tmp_path
):
    now = datetime.now(UTC)
    schedule = tmp_path / "schedule.toml"
    schedule.write_text(
        f'[[entries]]\nsession_id = "now"\nstart = {(now - timedelta(minutes=5)).isoformat()}\n'
        f"end = {(now + timedelta(hours=1)).isoformat()}\n"
    )
    config = agent_config(broker, tmp_path / "state", check_interval_s=0.2, state_heartbeat_s=0.5)
    config["schedule"] = {"local_file": str(schedule)}
    live = centre(broker)
    run_agent(config)
    assert live.wait_for(_has("state", cause="heartbeat"), 5)  # past the start-up check
    assert _json(live, "meta")[-1]["heartbeat_s"] == 0.5  # the promise the centre judges by
    seen = len(live.messages())
    time.sleep(2.0)  # ten check intervals, four heartbeats
    later = [m.json() for m in live.messages()[seen:]]
    assert not [m for m in later if m["schema"] != "edge-agent/state/1"], "a check ran"
    assert {m["cause"] for m in later} == {"heartbeat"}
    assert 3 <= len(later) <= 5, [m["ts"] for m in later]
    assert all(m["current_session"]["session_id"] == "now" for m in later)


def test_while_the_broker_is_away_the_loop_sleeps_and_the_heartbeat_resumes_on_return(
    broker, centre, tmp_path
):
    # No heartbeat goes out while disconnected, so none may be "due" either: the loop used
    # to spin (a whole core) from one heartbeat interval after the broker went away.
    config = agent_config(broker, tmp_path / "state", check_interval_s=3600, state_heartbeat_s=0.3)
    broker.stop()
    site = InProcessAgent(Settings.model_validate(config))
    passes: list[float] = []
    tick = site.agent.presession.tick

    def counted(now: datetime):  # the real tick, one per pass of the loop
        passes.append(time.monotonic())
        return tick(now)

    site.agent.presession.tick = counted  # type: ignore[method-assign]
    site.start()
    try:
        assert wait_until(lambda: site.agent.last_check, 10)
        time.sleep(0.6)  # two heartbeat intervals past the startup check's state
        start = time.monotonic()
        time.sleep(1.0)
        idle = [t for t in passes if t >= start]
        assert len(idle) <= 3, f"{len(idle)} passes of the loop in 1 s with nothing to do"

        broker.start()
        live = centre(broker)
        assert wait_until(lambda: site.agent.link.status().connected, 10)
        assert live.wait_for(_has("state", cause="heartbeat"), 3), "no heartbeat after return"
    finally:
        site.stop()


def test_payloads_validate_against_the_published_schemas(broker, centre, run_agent, tmp_path):
    assert stale_files() == [], "run: python -m agent.contract.schemas"
    live = centre(broker)
    agent = run_agent(agent_config(broker, tmp_path / "state"))
    assert live.wait_for(_has("checks"), 5)
    agent.stop()
    assert live.wait_for(_has("availability", status="offline"), 3)

    kinds = set()
    for message in live.messages():
        data = message.json()
        kind = data["schema"].split("/")[1]
        kinds.add(kind)
        model = PAYLOADS[kind]
        model.model_validate_json(message.payload)  # strict: extra fields are errors
        schema = json.loads((SCHEMA_DIR / f"{kind}.json").read_text())
        assert data["schema"] == schema["$id"]
        assert set(schema["required"]) <= set(data), message.topic
        assert set(data) <= set(schema["properties"]), message.topic
        assert data["ts"].endswith("Z")
    assert kinds == {"availability", "meta", "state", "checks"}


def test_clean_shutdown_publishes_offline_retained(broker, centre, run_agent, tmp_path):
    agent = run_agent(agent_config(broker, tmp_path / "state"))
    live = centre(broker)
    assert live.wait_for(_has("availability", status="online"), 5)
    agent.stop()
    assert live.wait_for(_has("availability", status="offline", reason="clean shutdown"), 3)
    late = centre(broker, ("vc/s1/availability",))
    assert late.wait_for(lambda ms: len(ms) >= 1, 2)
    assert late.messages()[0].json()["status"] == "offline"


def test_availability_flips_to_offline_when_the_agent_is_killed(broker, centre, tmp_path):
    live = centre(broker, ("vc/s1/availability",))
    agent = AgentProcess(agent_config(broker, tmp_path / "state"), tmp_path).start()
    assert live.wait_for(_has("availability", status="online"), 10), agent.log()
    online = _json(live, "availability")[-1]
    agent.kill()
    killed_at = time.monotonic()
    # keepalive 5 s: the broker gives up after 1.5 x keepalive and publishes the will
    assert live.wait_for(_has("availability", status="offline"), 9), "no will"
    waited = time.monotonic() - killed_at
    offline = _json(live, "availability")[-1]
    assert offline["reason"] == "connection lost (will)"
    assert offline["boot"] == online["boot"]  # the will belongs to the connection that died
    assert waited <= 1.5 * 5 + 1.0


def test_tls_client_cert_acl_accepts_own_site_and_refuses_another(tls_broker, centre, tmp_path):
    live = centre(tls_broker)
    own = InProcessAgent(Settings.model_validate(agent_config(tls_broker, tmp_path / "own")))
    own.start()
    try:
        assert live.wait_for(_has("state", cause="check", site_id="s1"), 5)
        assert own.agent.link.status().refused == 0
    finally:
        own.stop()

    # An agent holding s1's certificate that tries to report as s2: every publish refused.
    # mosquitto 2.0 answers PUBACK "Not authorized" and closes the connection; the PUBACK is
    # often lost in the close, so the agent also treats "dropped 3 times while sending the
    # same report" as a refusal. Either way it is surfaced, and nothing is deleted.
    config = agent_config(tls_broker, tmp_path / "other", site_id="s2", user="s1")
    other = InProcessAgent(Settings.model_validate(config)).start()
    try:
        assert wait_until(lambda: other.agent.link.status().refused >= 1, 5)
        status = other.agent.link.status()
        assert "vc/s2/" in status.last_refusal
        assert ("Not authorized" in status.last_refusal) or ("dropped" in status.last_refusal)
        time.sleep(0.3)
    finally:
        other.stop()
    assert not [m for m in live.messages() if m.topic.startswith("vc/s2/")]
    # refused reports are not deleted as delivered: they wait in the outbox
    outbox = other.agent.outbox.__class__.from_settings(other.settings)
    try:
        assert outbox.stats().pending >= 1
    finally:
        outbox.close()


def test_acl_refusal_comes_back_as_a_puback_reason(broker_password):
    """The raw signal the link relies on (MQTT 5): PUBACK 0x87, seen in on_publish."""
    conn = Connection(broker_password.endpoint("s1", "probe-s1"), Protocol.V5)
    conn.open(2)
    assert wait_until(lambda: any(isinstance(e, ConnAck) for e in conn.pump(0.05)), 2)
    assert puback(conn, conn.publish("vc/s1/state", b"{}", 1, False)).ok
    theirs = puback(conn, conn.publish("vc/s2/state", b"{}", 1, False))
    assert not theirs.ok
    assert theirs.reason == "Not authorized"
    conn.abort()


def test_a_site_may_not_write_its_schedule_or_command_topics(broker_password):
    """The site ACL (agent.contract.topics.site_acl) at a real mosquitto: a site's own report
    and reply topics are accepted; its schedule and command topics, the fleet's and another
    site's are refused (under `readwrite vc/%u/#` a site could set its own sessions)."""
    allowed = ["vc/s1/state", "vc/s1/live/event", "vc/s1/cmd/reply", "vc/s1/cmd/reply/c1"]
    refused = ["vc/s1/schedule", "vc/s1/cmd", "vc/schedule", "vc/cmd", "vc/s2/state",
               "vc/s1/other"]  # fmt: skip
    verdicts = {topic: may_publish(broker_password, "s1", topic) for topic in allowed + refused}
    assert verdicts == {topic: topic in allowed for topic in allowed + refused}


def test_a_connection_on_a_descriptor_above_1023_still_works(broker):
    """One process holding many connections (the 100-site benchmark) passes descriptor 1023,
    the most select() takes; the broker's CONNACK must still be read there."""
    import os  # noqa: PLC0415
    import resource  # noqa: PLC0415

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 1200), hard))
    spare = [os.open(os.devnull, os.O_RDONLY) for _ in range(1030)]
    try:
        conn = Connection(broker.endpoint(), Protocol.V5)
        conn.open(2)
        assert conn._client.socket().fileno() > 1023
        events: list = []
        assert wait_until(lambda: events.extend(conn.pump(0.05)) or events, 5)
        assert [type(e) for e in events] == [ConnAck] and events[0].ok, events
        conn.abort()
    finally:
        for fd in spare:
            os.close(fd)


def test_tls_without_a_client_certificate_is_refused(tls_broker, tmp_path):
    config = agent_config(tls_broker, tmp_path / "state")
    del config["broker"]["tls_cert"], config["broker"]["tls_key"]
    agent = InProcessAgent(Settings.model_validate(config)).start()
    try:
        assert wait_until(lambda: agent.agent.link.status().last_error != "", 5)
        assert not agent.agent.link.status().connected
    finally:
        agent.stop()


def test_falls_back_to_mqtt_311_when_the_broker_refuses_v5(broker, centre, run_agent, tmp_path):
    proxy = V311OnlyProxy(broker.port).start()
    try:
        config = agent_config(broker, tmp_path / "state")
        config["broker"]["port"] = proxy.port
        live = centre(broker)
        run_agent(config)
        assert live.wait_for(_has("meta", protocol="3.1.1"), 5)
        assert live.wait_for(_has("state", cause="check"), 5)
        assert proxy.refused_v5 >= 1
    finally:
        proxy.stop()


def test_the_next_start_uses_the_protocol_that_worked(broker, centre, tmp_path):
    """No refused MQTT 5 CONNECT (and no boot number spent on it) at every start."""
    proxy = V311OnlyProxy(broker.port).start()
    try:
        config = agent_config(broker, tmp_path / "state")
        config["broker"]["port"] = proxy.port
        live = centre(broker, ("vc/s1/availability",))
        boots = []
        for _ in range(2):
            live.clear()
            agent = InProcessAgent(Settings.model_validate(config)).start()
            try:
                assert live.wait_for(_has("availability", status="online"), 10)
                assert agent.agent.link.status().protocol == "3.1.1"
                boots.append(_json(live, "availability")[-1]["boot"])
            finally:
                agent.stop()
            if not boots[1:]:
                refused_by_first_run = proxy.refused_v5
        assert refused_by_first_run >= 1
        assert proxy.refused_v5 == refused_by_first_run
        assert boots[1] == boots[0] + 1
    finally:
        proxy.stop()


def test_missing_tls_file_is_a_clear_start_up_error(broker, tmp_path, capsys):
    config = agent_config(broker, tmp_path / "state")
    config["broker"]["tls_ca"] = str(tmp_path / "nope-ca.pem")
    settings = Settings.model_validate(config)
    with pytest.raises(TransportError) as err:
        Agent(settings)
    assert "broker.tls_ca" in str(err.value)
    assert "nope-ca.pem" in str(err.value)

    path = tmp_path / "agent.toml"
    path.write_text(dump_toml(config))
    assert main(["--config", str(path), "run"]) == 3
    assert "broker.tls_ca: file" in capsys.readouterr().err


def test_mismatched_client_cert_and_key_is_a_start_up_error(tls_broker, tmp_path):
    config = agent_config(tls_broker, tmp_path / "state")
    config["broker"]["tls_key"] = str(tls_broker.client_cert("someone-else").key)
    with pytest.raises(TransportError, match=r"tls_cert/tls_key"):
        Agent(Settings.model_validate(config))


def test_a_frozen_agent_or_cut_line_goes_offline_within_keepalive_then_recovers(
    broker, centre, tmp_path
):
    """SIGSTOP keeps the socket open but silent, like a cut line: only keepalive can tell."""
    live = centre(broker, ("vc/s1/availability",))
    agent = AgentProcess(agent_config(broker, tmp_path / "state"), tmp_path).start()
    try:
        assert live.wait_for(_has("availability", status="online"), 10), agent.log()
        first = _json(live, "availability")[-1]
        agent.proc.send_signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        # MQTT says 1.5 x keepalive; mosquitto 2.0.11 was measured at 2 x (+ <= 1 s tick)
        assert live.wait_for(_has("availability", status="offline"), 2 * 5 + 2.5)
        assert time.monotonic() - stopped_at >= 1.5 * 5 - 0.5  # keepalive, not a FIN
        agent.proc.send_signal(signal.SIGCONT)

        # the agent finds its connection gone and reconnects with a new boot
        def back_online(ms: list[Received]) -> bool:
            last = ms[-1].json()
            return last["status"] == "online" and last["boot"] > first["boot"]

        assert live.wait_for(back_online, 10), agent.log()
    finally:
        agent.proc.send_signal(signal.SIGCONT)
        assert agent.terminate() == 0


def test_the_led_shows_a_lost_broker_at_once(broker, tmp_path):
    # The loop sleeps up to a heartbeat interval (here 30 s) between passes; the link wakes it
    # when the connection ends, so the technician's LED never says "ready" while the centre
    # cannot see the site.
    config = agent_config(broker, tmp_path / "state", check_interval_s=3600)
    site = InProcessAgent(Settings.model_validate(config)).start()
    try:
        assert wait_until(lambda: site.agent.led_pattern == "ready", 10)
        broker.stop()
        lost = time.monotonic()
        assert wait_until(lambda: site.agent.led_pattern == "no_broker", 5)
        took = time.monotonic() - lost
    finally:
        site.stop()
    assert took < 2.0, f"the LED showed the lost broker after {took:.1f} s"
