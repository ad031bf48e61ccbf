"""The MQTT contract without a broker: the topic table, payload models, checked-in schemas,
the docs, and the pure pacing rules (backoff, rate limit, historical flag)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.centre.ingest import parse
from agent.centre.sender import parse_reply
from agent.checks.live import CallState, LiveVerdict, MediaStats, PathStats
from agent.config import BrokerSettings
from agent.contract.payloads import (
    PAYLOADS,
    AvailabilityPayload,
    CommandReplyPayload,
    Envelope,
    LiveEventPayload,
    LivePayload,
    SessionRef,
    StatePayload,
    parse_report,
)
from agent.contract.schemas import SCHEMA_DIR, expected_files, stale_files
from agent.contract.topics import TOPICS, Direction, name_of, site_acl, topic_for
from agent.errors import TransportError
from agent.sim.fleet_site import SimSite
from agent.transport.link import as_historical
from agent.transport.listener import Received
from agent.transport.mqtt import Inbound, endpoint, tls_context
from agent.transport.pacing import TokenBucket, backoff_delay

DOCS = Path(__file__).resolve().parent.parent / "docs" / "mqtt.md"


def test_topic_for_site_and_fleet():
    assert topic_for("vc", "hn-01", "state") == "vc/hn-01/state"
    assert topic_for("prov/hn", "hn-01", "cmd_reply") == "prov/hn/hn-01/cmd/reply"
    assert topic_for("vc", "hn-01", "fleet_schedule") == "vc/schedule"
    for name in TOPICS:
        assert name_of("vc", "hn-01", topic_for("vc", "hn-01", name)) == name
    assert name_of("vc", "hn-01", "vc/hn-02/state") is None


def test_the_site_acl_writes_what_a_site_publishes_and_reads_what_it_hears():
    acl = site_acl("vc").splitlines()
    assert "pattern write vc/%u/state" in acl
    assert "pattern write vc/%u/cmd/reply/#" in acl  # MQTT 5 response topics below it
    assert "pattern read vc/%u/schedule" in acl and "pattern read vc/cmd" in acl
    assert not [line for line in acl if "readwrite" in line or line.endswith("/%u/#")]
    assert not [line for line in acl if line.startswith("pattern write") and "schedule" in line]
    assert len(acl) == len(set(acl))
    assert site_acl("vc") in DOCS.read_text()  # the docs show what the brokers get


def test_every_outgoing_topic_has_a_payload_model_and_a_schema_file():
    for topic in TOPICS.values():
        if topic.direction is Direction.OUT:
            assert topic.payload in PAYLOADS, topic.name
            assert (SCHEMA_DIR / f"{topic.payload}.json").is_file(), topic.name
    assert {t.name for t in TOPICS.values() if t.retained and t.direction is Direction.OUT} == {
        "availability",
        "meta",
        "state",
        "live",
    }


def test_checked_in_schemas_match_the_models():
    assert stale_files() == [], "run: python -m agent.contract.schemas"


def test_schema_check_notices_a_changed_file(tmp_path):
    for name, text in expected_files().items():
        (tmp_path / name).write_text(text)
    assert stale_files(tmp_path) == []
    (tmp_path / "state.json").write_text("{}\n")
    (tmp_path / "old.json").write_text("{}\n")
    assert stale_files(tmp_path) == ["old.json", "state.json"]


def test_docs_describe_every_topic_and_payload():
    text = DOCS.read_text()
    for topic in TOPICS.values():
        assert f"`{topic.suffix}`" in text, topic.name
    for kind in PAYLOADS:
        assert f"schemas/{kind}.json" in text
    for word in ("seq", "boot", "historical", "QoS", "retain"):
        assert word in text


def test_envelope_serialises_schema_first_and_utc_z():
    ts = datetime(2025, 3, 1, 9, 30, tzinfo=timezone(timedelta(hours=7)))
    payload = AvailabilityPayload(site_id="s1", ts=ts, status="online", keepalive_s=30)
    data = json.loads(payload.to_bytes())
    assert list(data)[:6] == ["schema", "site_id", "seq", "boot", "ts", "historical"]
    assert data["schema"] == "edge-agent/availability/1"
    assert data["ts"] == "2025-03-01T02:30:00Z"
    assert AvailabilityPayload.model_validate_json(payload.to_bytes()) == payload


def test_payloads_refuse_unknown_fields_and_naive_times():
    now = datetime.now().astimezone()
    good = AvailabilityPayload(site_id="s1", ts=now, status="online", keepalive_s=5)
    data = json.loads(good.to_bytes())
    with pytest.raises(ValidationError):
        AvailabilityPayload.model_validate({**data, "surprise": 1})
    with pytest.raises(ValidationError):
        AvailabilityPayload.model_validate({**data, "ts": "2025-03-01T02:30:00"})
    with pytest.raises(ValidationError):
        AvailabilityPayload.model_validate({**data, "schema": "edge-agent/availability/2"})


def test_every_payload_kind_is_an_envelope_with_its_own_schema_string():
    for kind, model in PAYLOADS.items():
        assert issubclass(model, Envelope)
        assert model.model_fields["schema_"].default == f"edge-agent/{kind}/1"


def test_as_historical_flips_only_the_top_level_flag():
    raw = b'{"schema":"x","historical":false,"results":[{"historical":false,"r":"\\u00e9"}]}'
    data = json.loads(as_historical(raw))
    assert data["historical"] is True
    assert data["results"][0]["historical"] is False
    assert data["results"][0]["r"] == "é"


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    assert backoff_delay(0, 1, 120, lambda: 0.0) == 0.5
    assert backoff_delay(0, 1, 120, lambda: 1.0) == 1.0
    assert backoff_delay(3, 1, 120, lambda: 1.0) == 8.0
    assert backoff_delay(20, 1, 120, lambda: 0.0) == 60.0
    assert backoff_delay(20, 1, 120, lambda: 1.0) == 120.0
    assert backoff_delay(10_000, 1, 120, lambda: 1.0) == 120.0


def test_token_bucket_limits_the_rate_after_a_burst():
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert bucket.available(0.0) == 5
    bucket.take(0.0, 5)
    assert bucket.available(0.0) == 0
    assert bucket.wait_s(0.0) == pytest.approx(0.1)
    assert bucket.available(0.35) == 3
    assert bucket.available(100.0) == 5  # never more than the burst
    unlimited = TokenBucket(rate=0, burst=20, now=0.0)
    unlimited.take(0.0, 1000)
    assert unlimited.available(0.0) == 20 and unlimited.wait_s(0.0) == 0


def test_tls_settings_errors_name_the_field_and_file(tmp_path):
    with pytest.raises(TransportError, match=r"broker.tls_ca: file .*missing.pem not found"):
        tls_context(BrokerSettings(tls_ca=tmp_path / "missing.pem"))
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(TransportError, match=r"broker.tls_ca: .*not a PEM CA certificate"):
        tls_context(BrokerSettings(tls_ca=bad))
    with pytest.raises(TransportError, match=r"broker\.username"):
        endpoint(BrokerSettings(password="x"), "c")
    assert tls_context(BrokerSettings()) is None


# ---- evolving the contract: writers strict, readers lenient ------------------------------

_FUTURE = {"added_later": {"any": ["shape", 1]}}


def _reports() -> dict[str, tuple[bytes, list[tuple[str | int, ...]]]]:
    """One valid report of each kind, with the paths of the nested objects in it."""
    site = SimSite("s1")
    reply = CommandReplyPayload(
        site_id="s1", seq=9, ts=datetime.now(UTC), command_id="c-1", status="succeeded",
        output={"sessions": 1},
    )  # fmt: skip
    now = datetime.now(UTC)
    session = SessionRef(session_id="s-1", start=now, end=now, title="Giao ban")
    media = MediaStats(kind="video", direction="in", loss_pct=9.5, jitter_ms=40.0)
    live = LivePayload(
        site_id="s1", seq=10, ts=now, verdict=LiveVerdict.POOR, since=now, reason="loss 9.5 %",
        call=CallState(in_call=True, since=now, far_end="mcu@tinh", media=(media,)),
        path=(PathStats(target="mcu", loss_pct=0.0, rtt_ms=12.0),), session=session,
    )  # fmt: skip
    event = LiveEventPayload(
        site_id="s1", seq=11, ts=now, session=session, before=LiveVerdict.IN_CALL,
        after=LiveVerdict.POOR, reason="loss 9.5 %",
    )  # fmt: skip
    return {
        "availability": (site.availability()[1], []),
        "meta": (site.meta()[1], [("site",), ("components", 0)]),
        "state": (site.state()[1], [("outbox",), ("components", "camera")]),
        "checks": (site.checks()[1], [("results", 0)]),
        "attendance": (site.attendance("sess-1", 12)[1], []),
        "command_reply": (reply.to_bytes(), []),
        "live": (live.to_bytes(), [("call",), ("call", "media", 0), ("path", 0), ("session",)]),
        "live_event": (event.to_bytes(), [("session",)]),
    }


def _with_future_fields(raw: bytes, paths: list[tuple[str | int, ...]]) -> bytes:
    data = json.loads(raw)
    data.update(_FUTURE)
    for path in paths:
        node = data
        for step in path:
            node = node[step]
        node.update(_FUTURE)
    return json.dumps(data).encode()


def test_every_report_kind_is_covered_here():
    assert set(_reports()) == set(PAYLOADS)


@pytest.mark.parametrize("kind", sorted(PAYLOADS))
def test_readers_ignore_fields_they_do_not_know_at_every_level(kind):
    raw, paths = _reports()[kind]
    newer = _with_future_fields(raw, paths)
    model = PAYLOADS[kind]
    with pytest.raises(ValidationError, match="added_later"):  # the writer's model: strict
        model.model_validate_json(newer)
    read = parse_report(model, newer)
    assert read == model.model_validate_json(raw)
    assert "added_later" not in read.to_bytes().decode()


@pytest.mark.parametrize("kind", ["availability", "meta", "state", "checks", "attendance"])
def test_the_centre_stores_a_report_with_a_field_it_does_not_know(kind):
    raw, paths = _reports()[kind]
    message = Received(f"vc/s1/{TOPICS[kind].suffix}", _with_future_fields(raw, paths), False)
    assert parse("vc", message) == PAYLOADS[kind].model_validate_json(raw)


def test_the_command_sender_reads_a_reply_with_a_field_it_does_not_know():
    raw, _ = _reports()["command_reply"]
    message = Inbound("vc/s1/cmd/reply", _with_future_fields(raw, []), False, 1)
    reply = parse_reply(message, "c-1", 0.5)
    assert reply is not None and (reply.status, reply.output) == ("succeeded", {"sessions": 1})


def test_readers_still_refuse_what_is_wrong_and_another_schema_version():
    raw, _ = _reports()["state"]
    data = json.loads(raw)
    with pytest.raises(ValidationError):
        parse_report(StatePayload, json.dumps({**data, "seq": -1, **_FUTURE}))
    with pytest.raises(ValidationError):
        parse_report(StatePayload, json.dumps({**data, "schema": "edge-agent/state/2"}))
    with pytest.raises(ValidationError):
        parse_report(StatePayload, json.dumps({k: v for k, v in data.items() if k != "outbox"}))


def test_published_schemas_let_readers_take_unknown_properties():
    for kind in PAYLOADS:
        text = (SCHEMA_DIR / f"{kind}.json").read_text()
        assert '"additionalProperties": false' not in text, kind
        assert '"additionalProperties": true' in text, kind
