"""MQTT 5 properties of a received message are untrusted: nothing in them is signed.

One unsigned command whose response topic held a wildcard used to take a site off the air
for good: its refusal was queued for that topic, paho raised in the link thread, nothing
reconnected, and the poisoned reply stayed in the outbox for the next start. Here, through a
real mosquitto and the real daemon: every bad shape of response topic, a poisoned outbox row
left by an older agent, a failing link thread (restarted) and a dead one (watchdog starved),
and 10,000 fuzzed property sets on the command topic, after which the agent is still online
on its first connection, still publishing, and has run nothing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from agent.commands.service import reply_route
from agent.commands.store import AUDIT_NAME, AuditLog
from agent.config import Settings, load_settings
from agent.contract.payloads import CommandReplyPayload, utc_now
from agent.contract.topics import MAX_TOPIC_BYTES, publish_topic_problem
from agent.errors import ConfigError
from agent.sim.broker import Mosquitto
from agent.transport.link import Link
from agent.transport.outbox import FILENAME, Outbox
from tests.commands_kit import CommandAgent, commands_config, signed
from tests.faults.faultkit import say
from tests.faults.fuzzkit import CASES, run_fuzz
from tests.faults.test_watchdog_faults import Pings
from tests.fixtures.broker import agent_config, wait_until

OWN_REPLY = "vc/s1/cmd/reply"


# ---- pure: which topics may be published, which routes are used ---------------------------


@pytest.mark.parametrize(
    ("topic", "problem"),
    [
        ("vc/s1/cmd/reply", None),
        ("vc/s1/cmd/reply/centre-7", None),
        ("a\ufeffb", None),  # U+FEFF is a character like any other (MQTT 5, 1.5.4)
        ("x" * MAX_TOPIC_BYTES, None),
        ("x/reply/+", "contains a wildcard (+ or #)"),
        ("x/#", "contains a wildcard (+ or #)"),
        ("+", "contains a wildcard (+ or #)"),
        ("$SYS/broker/x", "starts with $ (reserved for the broker)"),
        ("a\0b", "contains a NUL character"),
        ("", "empty"),
        (None, "empty"),
        (b"vc/s1", "empty"),
        ("a\udcff", "is not valid UTF-8"),  # bad bytes as paho's tolerant reader leaves them
        ("é" * (MAX_TOPIC_BYTES // 2 + 1), f"is longer than {MAX_TOPIC_BYTES} bytes"),
    ],
)
def test_publish_topic_problem(topic: Any, problem: str | None) -> None:
    assert publish_topic_problem(topic) == problem


def _settings(tmp_path: Any, **commands: Any) -> Settings:
    config = agent_config(Mosquitto(tmp_path), tmp_path / "state")
    config["commands"] = commands
    return Settings.model_validate(config)


def test_reply_topics_never_open_the_fleets_own_topics(tmp_path) -> None:
    settings = _settings(tmp_path, reply_topics=["vc", "vc/s1", "ops"])
    for topic in ("vc/s1/state", "vc/s2/cmd/reply", "vc/s1/meta", "vc/cmd"):
        assert reply_route(settings, topic, None).response_topic is None, topic
    assert reply_route(settings, "vc/s1/cmd/reply/x", None).response_topic == "vc/s1/cmd/reply/x"
    assert reply_route(settings, "ops/desk", None).response_topic == "ops/desk"


def test_reply_route_uses_only_the_reply_space(tmp_path) -> None:
    settings = _settings(tmp_path, reply_topics=["ops/replies"])
    used = {
        "vc/s1/cmd/reply": "vc/s1/cmd/reply",
        "vc/s1/cmd/reply/c-1": "vc/s1/cmd/reply/c-1",
        "ops/replies": "ops/replies",
        "ops/replies/desk": "ops/replies/desk",
    }
    for asked, topic in used.items():
        assert reply_route(settings, asked, b"id") == (reply_route(settings, topic, b"id"))
        route = reply_route(settings, asked, b"id")
        assert (route.response_topic, route.correlation, route.note) == (topic, b"id", None)
    refused = {
        "x/reply/+": "contains a wildcard (+ or #)",
        "$SYS/x": "starts with $ (reserved for the broker)",
        "vc/s2/cmd/reply": "is outside this site's reply topics",
        "vc/s1/state": "is outside this site's reply topics",
        "vc/s1/cmd/replyX": "is outside this site's reply topics",
        "ops/repliesX": "is outside this site's reply topics",
        "a\0b": "contains a NUL character",
    }
    for asked, problem in refused.items():
        route = reply_route(settings, asked, b"id")
        assert route.response_topic is None, asked
        assert route.correlation == b"id"
        assert route.note is not None, asked
        assert route.note.text == f"response topic {asked!a} {problem}: replied on {OWN_REPLY}"
    # Correlation data: bytes within MQTT's bound, else dropped (never an error).
    assert reply_route(settings, None, b"x" * 65_535).correlation == b"x" * 65_535
    assert reply_route(settings, None, b"x" * 65_536).correlation is None
    assert reply_route(settings, None, "text").correlation is None
    assert reply_route(settings, None, None) == reply_route(settings, None, None)
    assert reply_route(settings, None, None).note is None


def test_reply_topics_setting_refuses_unpublishable_topics(tmp_path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text("[site]\nsite_id = 's1'\n[commands]\nreply_topics = ['ops/+']\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert "commands.reply_topics" in str(info.value)
    assert "reply topic 'ops/+' contains a wildcard (+ or #)" in str(info.value)


# ---- through a real broker -----------------------------------------------------------------


class RawPublisher:
    """A paho client of the test's own, free to set any property the broker passes on."""

    def __init__(self, broker: Mosquitto) -> None:
        endpoint = broker.endpoint()
        self.client = paho.Client(
            paho.CallbackAPIVersion.VERSION2, client_id="fuzzer", protocol=paho.MQTTv5
        )
        self.client.max_inflight_messages_set(200)
        self.client.connect(endpoint.host, endpoint.port)
        self.client.loop_start()
        assert wait_until(self.client.is_connected, 5)

    def send(
        self,
        payload: bytes,
        *,
        response_topic: str | None = None,
        correlation: bytes | None = None,
        user: list[tuple[str, str]] | None = None,
        content_type: str | None = None,
        format_indicator: int | None = None,
        topic: str = "vc/s1/cmd",
    ) -> paho.MQTTMessageInfo:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if response_topic is not None:
            props.ResponseTopic = response_topic
        if correlation is not None:
            props.CorrelationData = correlation
        if user:
            props.UserProperty = user
        if content_type is not None:
            props.ContentType = content_type
        if format_indicator is not None:
            props.PayloadFormatIndicator = format_indicator
        return self.client.publish(topic, payload, 1, properties=props)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def site(broker, key, tmp_path) -> Iterator[CommandAgent]:
    config = commands_config(broker, tmp_path / "state", key)
    config["report"]["state_heartbeat_s"] = 0.5
    agent = CommandAgent(config).start()
    assert wait_until(lambda: agent.agent.link.status().connected, 10)
    time.sleep(0.1)  # the SUBSCRIBE went out before the announce; let its SUBACK land
    yield agent
    if agent.thread.is_alive():
        agent.stop()


def _unsigned(key: Ed25519PrivateKey, command_id: str) -> bytes:
    envelope = json.loads(signed(key, command_id=command_id))
    envelope.pop("sig")
    return json.dumps(envelope).encode()


def _still_live(agent: CommandAgent, watcher: Any, since: float) -> None:
    """Online on its first connection, and still publishing `state` after `since`."""
    status = agent.agent.link.status()
    assert status.connected and status.connects == 1, status
    assert watcher.wait_for(
        lambda ms: any(m.topic == "vc/s1/state" and m.at > since for m in ms), 5
    ), "no state published after the flood"
    online = [m.json()["status"] for m in watcher.messages("vc/s1/availability")]
    assert online == ["online"], online  # no will, no second birth


@pytest.mark.broker
def test_each_bad_response_topic_is_answered_on_cmd_reply_and_the_link_lives(
    broker, key, site, centre
):
    watcher = centre(broker, ("vc/#", "x/#", "ops/#"))
    publisher = RawPublisher(broker)
    shapes = {
        "cmd-wild-plus": ("x/reply/+", "contains a wildcard (+ or #)"),
        "cmd-wild-hash": ("x/#", "contains a wildcard (+ or #)"),
        "cmd-dollar-01": ("$SYS/x", "starts with $ (reserved for the broker)"),
        "cmd-othersite": ("vc/s2/cmd/reply", "is outside this site's reply topics"),
        "cmd-ownstate1": ("vc/s1/state", "is outside this site's reply topics"),
    }
    try:
        started = time.monotonic()
        for command_id, (topic, _) in shapes.items():
            publisher.send(
                _unsigned(key, command_id), response_topic=topic, correlation=command_id.encode()
            )
        # U+FEFF in a response topic and a user property: paho called such a packet malformed
        # and dropped the connection, and the broker redelivered it at every reconnect.
        publisher.send(
            _unsigned(key, "cmd-bom-inner"),
            response_topic="vc/s1/cmd/reply/\ufeff",
            user=[("k\ufeff", "v\ufeff")],
        )
        assert watcher.wait_for(
            lambda ms: len([m for m in ms if m.topic.startswith(OWN_REPLY)]) >= len(shapes) + 1,
            10,
        ), [m.topic for m in watcher.messages()]
        replies = {m.json()["command_id"]: m for m in watcher.messages() if "cmd/reply" in m.topic}
        for command_id, (topic, problem) in shapes.items():
            reply = replies[command_id]
            assert reply.topic == OWN_REPLY, (command_id, reply.topic)
            reason = reply.json()["reason"]
            assert reason.startswith("unsigned: "), reason
            assert reason.endswith(
                f"; response topic {topic!a} {problem}: replied on {OWN_REPLY}"
            ), reason
        # A topic in the reply space is used as it came, U+FEFF and all.
        assert replies["cmd-bom-inner"].topic == "vc/s1/cmd/reply/\ufeff"
        # Nothing landed anywhere else: not on x/..., not on another site's or our own state.
        stray = [m.topic for m in watcher.messages() if not m.topic.startswith("vc/s1/")]
        assert stray == [], stray
        assert all(
            m.json().get("schema", "").startswith("edge-agent/state/")
            for m in watcher.messages("vc/s1/state")
        )
        _still_live(site, watcher, started)
        assert site.runner.calls == []
        assert site.agent.outbox.stats().refused == 0
    finally:
        publisher.close()


@pytest.mark.broker
def test_a_poisoned_outbox_row_is_set_aside_and_the_queue_moves_on(
    broker, key, tmp_path, centre, caplog
):
    """The refusal an older agent queued for `x/reply/+` is still on disk at the next start."""
    state = tmp_path / "state"
    config = commands_config(broker, state, key)
    settings = Settings.model_validate(config)
    outbox = Outbox.from_settings(settings)
    poisoned = CommandReplyPayload(
        site_id="s1", ts=utc_now(), command_id="cmd-old", status="rejected", reason="unsigned"
    )
    bad = outbox.put(poisoned, topic="x/reply/+", correlation=b"cmd-old")
    after = outbox.put(poisoned.model_copy(update={"command_id": "cmd-after"}))
    outbox.close()
    watcher = centre(broker)
    caplog.set_level(logging.ERROR, logger="agent.transport.link")
    agent = CommandAgent(config).start()
    try:
        assert watcher.wait_for(
            lambda ms: any(m.json().get("seq") == after.seq for m in ms if "cmd/reply" in m.topic),
            10,
        ), "the report queued behind the poisoned one was not delivered"
        assert wait_until(lambda: agent.agent.outbox.stats().refused == 1, 5)
        # Set aside is not waiting: no backlog that never drains.
        assert wait_until(lambda: agent.agent.outbox.stats().pending == 0, 5)
        assert agent.agent.outbox.stats().oldest_created is None
        # The next state says so, and the link never dropped.
        agent.agent.publish_state("check")
        assert watcher.wait_for(
            lambda ms: any(
                m.json()["outbox"]["refused"] == 1 for m in ms if m.topic == "vc/s1/state"
            ),
            5,
        )
        assert agent.agent.link.status().connects == 1
        refusals = [r for r in caplog.records if f"seq {bad.seq}" in r.getMessage()]
        assert len(refusals) == 1, [r.getMessage() for r in caplog.records]
        assert "contains a wildcard" in refusals[0].getMessage()
    finally:
        agent.stop()
    # Still on disk, marked, and not offered again after a restart.
    with sqlite3.connect(state / FILENAME) as db:
        rows = db.execute("SELECT seq, refused, aside FROM outbox").fetchall()
    assert rows == [(bad.seq, f"topic {'x/reply/+'!a}: contains a wildcard (+ or #)", 1)]
    again = Outbox.from_settings(settings)
    try:
        assert again.retry_refused() == 0
        assert again.pending(0, 10) == []
    finally:
        again.close()


@pytest.mark.broker
def test_an_exception_in_the_link_thread_is_logged_and_the_link_restarts(
    broker, tmp_path, centre, caplog, monkeypatch
):
    settings = Settings.model_validate(agent_config(broker, tmp_path / "state"))
    failures: list[str] = []
    real_pending = Outbox.pending

    def fail_once(self: Outbox, after_seq: int, limit: int) -> Any:
        if not failures:
            failures.append("raised")
            raise RuntimeError("injected bug in the drain")
        return real_pending(self, after_seq, limit)

    monkeypatch.setattr(Outbox, "pending", fail_once)
    caplog.set_level(logging.ERROR, logger="agent.transport.link")
    watcher = centre(broker)
    from tests.fixtures.broker import InProcessAgent  # noqa: PLC0415

    agent = InProcessAgent(settings).start()
    try:
        assert wait_until(lambda: agent.agent.link.status().connects >= 2, 10)
        assert watcher.wait_for(lambda ms: len(ms_of(ms, "vc/s1/checks")) >= 2, 10)
        assert agent.agent.link.alive()
    finally:
        agent.stop()
    logged = [r for r in caplog.records if r.getMessage().startswith("broker link failed")]
    assert len(logged) == 1
    assert logged[0].exc_info is not None
    assert "injected bug in the drain" in str(logged[0].exc_info[1])


def ms_of(messages: list[Any], topic: str) -> list[Any]:
    return [m for m in messages if m.topic == topic]


@pytest.mark.broker
def test_a_dead_link_thread_starves_the_watchdog(broker, tmp_path, monkeypatch, caplog):
    path = tmp_path / "notify"
    pings = Pings(path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    settings = Settings.model_validate(agent_config(broker, tmp_path / "state"))
    kill = threading.Event()
    real_attempt = Link._attempt

    class ThreadKilled(BaseException):
        """Escapes the link's own recovery, as only a dying interpreter's errors do."""

    def attempt(self: Link) -> tuple[bool, bool]:
        if kill.is_set():
            raise ThreadKilled
        return real_attempt(self)

    monkeypatch.setattr(Link, "_attempt", attempt)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)
    caplog.set_level(logging.CRITICAL, logger="agent.runtime.watchdog")
    from agent.runtime.daemon import Agent  # noqa: PLC0415

    agent = Agent(settings)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: agent.link.status().connected, 10)
        assert wait_until(lambda: len(pings.watchdog()) >= 2, 10), pings.got
        kill.set()
        # Drop the connection from the broker's side: the link's next attempt dies.
        broker.stop()
        assert wait_until(lambda: not agent.link.alive(), 10)
        dead_at = time.monotonic()
        time.sleep(3.0)  # WatchdogSec is 2 s: a live loop pings at least twice in this time
        late = pings.watchdog(dead_at + 1.05)
        assert late == [], late
        assert [r.getMessage() for r in caplog.records] == [
            "the broker link thread has died: watchdog pings stop"
        ]
        say("link-dead", f"pings after the link thread died: {len(late)}")
    finally:
        stop.set()
        thread.join(10)
        pings.close()


# ---- 10,000 fuzzed property sets on the command topic ---------------------------------------

# mosquitto drops a publisher whose strings hold control characters or non-characters (its
# UTF-8 check): those never reach a site either.
_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cn")), max_size=30)
# Topics the broker passes on: wildcards, `$`, U+FEFF, other sites, our own topics, long ones.
# (NUL and bad UTF-8 never reach us: mosquitto drops the publisher as malformed; the pure
# test above covers them.)
_TOPIC_CHARS = st.sampled_from(["+", "#", "$", "/", "\ufeff", "a", "é", "Đ", " ", "\u2028"])
_TOPICS = st.one_of(
    st.sampled_from(["vc/s1/cmd/reply", "vc/s1/state", "vc/s2/cmd/reply", "$SYS/x", "#"]),
    st.builds("".join, st.lists(_TOPIC_CHARS, min_size=1, max_size=40)),
    st.builds(lambda s: "vc/s1/cmd/reply/" + s, _TEXT),
    st.builds(lambda n: "z" * n, st.integers(1, MAX_TOPIC_BYTES)),
)
_PROPERTY_SETS = st.fixed_dictionaries(
    {},
    optional={
        "response_topic": _TOPICS,
        "correlation": st.binary(max_size=64),
        "user": st.lists(st.tuples(_TEXT, _TEXT), max_size=3),
        "content_type": _TEXT,
        "format_indicator": st.sampled_from([0, 1]),
    },
)
_PAYLOADS = st.one_of(
    st.just(b"{}"), st.binary(max_size=40).map(lambda b: b.hex().encode()), _TEXT.map(str.encode)
)


@pytest.mark.broker
def test_ten_thousand_fuzzed_property_sets_leave_the_site_online(broker, key, site, centre):
    watcher = centre(broker, ("vc/s1/availability", "vc/s1/state"))
    publisher = RawPublisher(broker)
    sent: list[paho.MQTTMessageInfo] = []

    def case(value: tuple[dict[str, Any], bytes]) -> None:
        props, payload = value
        sent.append(publisher.send(payload, **props))

    started = time.monotonic()
    try:
        run_fuzz(st.tuples(_PROPERTY_SETS, _PAYLOADS), case)
        for info in sent:
            info.wait_for_publish(10)
        audit = site.agent.settings.paths.state_dir / AUDIT_NAME
        assert wait_until(lambda: _rejected(audit) >= len(sent), 60), (_rejected(audit), len(sent))
        _still_live(site, watcher, time.monotonic())
        assert site.runner.calls == []
        events = {a["event"] for a in _audit(audit)}
        assert events == {"rejected"}, events
    finally:
        publisher.close()
    say(
        "fuzz-properties",
        f"{len(sent)} property sets published in {time.monotonic() - started:.1f} s; all "
        "refused, 0 run; still online on its first connection",
    )
    assert len(sent) == CASES


def _audit(path: Any) -> list[dict[str, Any]]:
    older = path.with_name(path.name + ".1")
    return [*AuditLog(older).read(), *AuditLog(path).read()]


def _rejected(path: Any) -> int:
    return sum(1 for a in _audit(path) if a["event"] == "rejected")


def test_a_flood_of_refusals_fills_neither_the_outbox_nor_the_journal(tmp_path, caplog) -> None:
    """Anyone may publish on the command topic: 2,000 garbage messages in a burst are each
    audited, but answered and logged only within the refusal budget (30, then 1 a second)."""
    from agent.commands.host import attach  # noqa: PLC0415

    settings = _settings(tmp_path, enabled=True)

    class Host:
        def __init__(self) -> None:
            self.settings = settings
            self.outbox = Outbox.from_settings(settings)

        def __getattr__(self, name: str) -> Any:
            def never(*_: Any) -> Any:
                raise AssertionError(f"a refused command must not reach the host ({name})")

            return never

    host = Host()
    service = attach(host)  # type: ignore[arg-type]
    assert service is not None
    caplog.set_level(logging.DEBUG, logger="agent.commands.service")
    try:
        for i in range(2000):
            service.on_message(b"garbage %d" % i)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        logged = [r for r in warnings if r.msg == "command %s refused: %s"]
        audited = _rejected(settings.paths.state_dir / AUDIT_NAME)
        replies = host.outbox.stats().pending
    finally:
        service.close()
        host.outbox.close()
    say("refusal-flood", f"2000 refused: {audited} audited, {replies} answered, "
        f"{len(warnings)} warnings logged in all")  # fmt: skip
    assert audited == 2000
    assert 30 <= replies <= 32  # the burst, and what the rate refilled meanwhile
    assert len(logged) == replies  # one line per answered refusal
    assert len(warnings) <= replies + 2  # + the missing-key notice, + at most one summary


def test_a_full_disk_does_not_cost_a_good_connection_its_protocol_memory(tmp_path, monkeypatch):
    """Remembering the MQTT version is a saving for the next start, not a reason to drop the
    connection that just got its CONNACK (the link used to raise and reconnect in a loop)."""
    from agent.errors import TransportError  # noqa: PLC0415
    from agent.transport.mqtt import Protocol  # noqa: PLC0415

    settings = _settings(tmp_path)
    assert settings.broker.protocol == "auto"  # the only mode that remembers
    outbox = Outbox.from_settings(settings)
    try:
        link = Link(settings, outbox, lambda cause, protocol: None)  # type: ignore[arg-type,return-value]
        link._protocol = Protocol.V311

        def full(key: str, value: bytes) -> None:
            raise TransportError("outbox: write failed: database or disk is full", "")

        monkeypatch.setattr(outbox, "put_kv", full)
        link._remember_protocol()  # logged, not raised
    finally:
        outbox.close()
