"""Fuzz: every MQTT payload parser but the command path (test_fuzz_commands.py).

- Agent side: the retained schedule message (agent.schedule.parse_payload, what the daemon
  hands every message on <prefix>/<site>/schedule and <prefix>/schedule). Only ScheduleError.
- Centre side: agent.centre.ingest.parse on every report kind (availability, meta, state,
  checks, attendance) and any topic. Only ValueError (pydantic's ValidationError is one),
  which Ingest._store logs and counts; and whatever parse accepts must be storable: the
  writer thread survives sqlite3.Error, ValueError and TypeError only, anything else
  stops the centre.

Inputs: valid payloads of each kind, with byte edits or one value swapped for a hostile one
(wrong types, huge numbers, deep nesting, unicode, NULs) or a key removed or added; valid JSON
of any shape; raw bytes.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import strategies as st

from agent.centre.ingest import INGESTED, parse
from agent.centre.store import Incoming, Store
from agent.checks.live import CallState, LiveVerdict, MediaStats, PathStats
from agent.checks.model import CheckResult, Status, Verdict
from agent.contract.payloads import (
    AttendancePayload,
    AvailabilityPayload,
    ChecksPayload,
    ComponentInfo,
    ComponentState,
    LiveEventPayload,
    LivePayload,
    MetaPayload,
    OutboxHealth,
    SessionRef,
    SiteInfo,
    StatePayload,
)
from agent.contract.topics import OUT_BY_PAYLOAD, TOPICS
from agent.errors import AgentError
from agent.schedule.model import ScheduleError, parse_payload
from agent.transport.listener import Received
from tests.faults.fuzzkit import (
    CASES,
    DEEP_JSON,
    JSON_VALUES,
    Tally,
    big_numbers,
    dumps,
    mutated,
    replaced_json,
    run_fuzz,
)

TS = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ENV = {"site_id": "s1", "seq": 7, "boot": 2, "ts": TS}
RESULT = CheckResult(
    component="camera",
    status=Status.WARN,
    reason="camera: dark picture",
    hint="uncover the lens",
    metrics={"luma": 12.5, "frames": 30, "source": "url", "ok": False, "none": None},
    started_at=TS,
    duration_s=1.2,
)
SESSION = SessionRef(session_id="hdnd-1", title="Họp", start=TS, end=TS)
VALID_REPORTS = {
    "availability": AvailabilityPayload(**ENV, status="online", keepalive_s=30),
    "meta": MetaPayload(
        **ENV,
        agent_version="0.9",
        site=SiteInfo(
            name="xã",
            tier="commune",
            parent="d1",
            timezone="Asia/Ho_Chi_Minh",
            expected_attendance=30,
        ),
        components=[ComponentInfo(component="camera", enabled=True, required=True, device="x")],
        profiles=["cisco-roomos"],
        capabilities=["checks"],
        protocol="5",
        check_interval_s=300.0,
        hostname="box",
        started_at=TS,
    ),
    "state": StatePayload(
        **ENV,
        cause="check",
        verdict=Verdict.DEGRADED,
        components={"camera": ComponentState(status=Status.WARN, reason="dark")},
        last_check=TS,
        current_session=SESSION,
        outbox=OutboxHealth(
            pending=1, pending_bytes=10, dropped_checks=0, refused=0, oldest_pending=TS
        ),
    ),
    "checks": ChecksPayload(
        **ENV,
        trigger="interval",
        verdict=Verdict.DEGRADED,
        started_at=TS,
        duration_s=1.5,
        results=[RESULT],
    ),
    "attendance": AttendancePayload(
        **ENV, session_id="hdnd-1", count=12, spread=0.5, detector="yunet", expected=30
    ),
    "live": LivePayload(
        **ENV,
        verdict=LiveVerdict.POOR,
        since=TS,
        reason="loss 9 %",
        call=CallState(
            in_call=True,
            since=TS,
            far_end="mcu",
            media=(MediaStats(kind="video", direction="in", loss_pct=9.0, jitter_ms=35.0),),
        ),
        path=(PathStats(target="mcu", loss_pct=0.0, rtt_ms=20.0),),
        session=SESSION,
    ),
    "live_event": LiveEventPayload(
        **ENV, session=SESSION, before=LiveVerdict.IN_CALL, after=LiveVerdict.POOR, reason="x"
    ),
}
assert set(VALID_REPORTS) == set(INGESTED)
KINDS = sorted(VALID_REPORTS)
SEED_BYTES = {k: st.just(VALID_REPORTS[k].to_bytes()) for k in KINDS}
SEED_DOCS = {k: st.just(json.loads(VALID_REPORTS[k].to_bytes())) for k in KINDS}
BODIES = {
    k: st.one_of(
        SEED_BYTES[k],
        mutated(SEED_BYTES[k]),
        replaced_json(SEED_DOCS[k]),
        replaced_json(SEED_DOCS[k]),
        replaced_json(SEED_DOCS[k]),
        big_numbers(SEED_DOCS[k]),
        big_numbers(SEED_DOCS[k]),
        JSON_VALUES.map(dumps),
        DEEP_JSON.map(str.encode),
        st.binary(max_size=200),
    )
    for k in KINDS
}
OTHER_TOPICS = st.sampled_from(
    ["vc/s2/state", "vc/s1/cmd", "vc/s1/cmd/reply", "vc/s1/schedule", "vc/s1/state/x", "vc//state",
     "other/s1/state", "vc/s1", "", "vc/+/state", "vc/s\x00/meta"]
) | st.text(max_size=20)  # fmt: skip


@st.composite
def messages(draw: st.DrawFn) -> Received:
    """Mostly a report on its own topic (so the payload is what is tested), sometimes a
    report on the wrong topic or another site's."""
    kind = draw(st.sampled_from(KINDS))
    pick = draw(st.integers(0, 9))
    own = f"vc/s1/{TOPICS[OUT_BY_PAYLOAD[kind]].suffix}"  # live_event goes on live/event
    topic = own if pick < 8 else draw(OTHER_TOPICS)
    return Received(topic=topic, payload=draw(BODIES[kind]), retain=draw(st.booleans()))


def test_centre_ingest_parse_refuses_cleanly_and_stores_what_it_accepts(tmp_path: Path) -> None:
    store = Store(tmp_path / "centre.sqlite")
    tally = Tally()

    def case(message: Received) -> None:
        try:
            payload = parse("vc", message)
        except ValueError as exc:
            assert str(exc)
            tally.add("refused:" + type(exc).__name__)
            return
        kind = type(payload).kind
        try:
            store.apply_batch([Incoming(payload, message.retain, TS.timestamp())])
        except (sqlite3.Error, ValueError, TypeError) as exc:
            # Handled by Ingest._store (logged, counted as rejected); not a crash.
            tally.add(f"accepted:{kind}:store_refused:{type(exc).__name__}")
            return
        tally.add(f"accepted:{kind}")

    try:
        run_fuzz(messages(), case)
    finally:
        store.close()
    tally.report("ingest")
    assert tally.total >= CASES
    for kind in KINDS:
        assert tally.counts[f"accepted:{kind}"] > 0, kind
    assert tally.counts["refused:ValidationError"] > 0
    assert tally.counts["refused:ValueError"] > 0


SCHEDULE = {
    "schema_version": "1",
    "issued_at": "2026-11-24T12:00:00+07:00",
    "entries": [
        {"session_id": "hdnd-1", "title": "Họp HĐND", "start": "2026-11-25T08:00:00+07:00",
         "end": "2026-11-25T11:30:00+07:00", "expected_attendance": 30},
        {"session_id": "tap-huan", "start": "2026-11-26T14:00:00Z",
         "end": "2026-11-26T16:00:00Z", "cancelled": True},
    ],
}  # fmt: skip
SCHEDULE_BYTES = st.just(json.dumps(SCHEDULE).encode())
SCHEDULE_DOCS = st.just(SCHEDULE)
SCHEDULE_INPUTS = st.one_of(
    SCHEDULE_BYTES,
    mutated(SCHEDULE_BYTES),
    replaced_json(SCHEDULE_DOCS),
    replaced_json(SCHEDULE_DOCS),
    big_numbers(SCHEDULE_DOCS),
    JSON_VALUES.map(dumps),
    st.binary(max_size=200),
    # Too many entries, and one entry's fields swapped for hostile values.
    st.just(1001).map(lambda n: json.dumps({"entries": [SCHEDULE["entries"][1]] * n}).encode()),
)


def test_schedule_message_parser_refuses_cleanly() -> None:
    tally = Tally()

    def case(raw: bytes) -> None:
        try:
            payload = parse_payload(raw, "schedule message")
        except ScheduleError as exc:
            assert exc.message.startswith("schedule message: ") and exc.hint
            tally.add("refused:" + ("json" if "not valid JSON" in exc.message else "fields"))
            return
        assert all(s.end > s.start for s in payload.entries)
        tally.add("accepted:empty" if not payload.entries else "accepted")

    run_fuzz(SCHEDULE_INPUTS, case)
    tally.report("schedule")
    assert tally.total >= CASES
    assert tally.counts["accepted"] > 0
    assert tally.counts["refused:json"] > 0
    assert tally.counts["refused:fields"] > 0


def test_schedule_message_parser_refuses_deep_nesting() -> None:
    with pytest.raises(AgentError):
        parse_payload(b"[" * 100_000)
