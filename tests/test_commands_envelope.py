"""Command validation without a broker: every refusal case with its reason and no side
effect, replay memory across a restart, and >= 10,000 random and mutated payloads."""

from __future__ import annotations

import base64
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.commands.actions import ActionContext
from agent.commands.service import CommandService, Route
from agent.commands.store import DB_NAME
from agent.config import Settings
from agent.contract.envelope import Command, Reason, Rejection, public_key_b64
from agent.contract.payloads import CommandReplyPayload
from agent.transport.outbox import Outbox
from tests.commands_kit import KEY_ID, RecordingRunner, signed

KEY = Ed25519PrivateKey.generate()
OTHER_KEY = Ed25519PrivateKey.generate()
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SCHEDULE = {"schema_version": "1", "entries": []}


class Hooks:
    """Every way an action could touch the world, recorded."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.runner = RecordingRunner()

    def context(self, settings: Settings) -> ActionContext:
        def note(name: str) -> Any:
            return lambda *_a: self.calls.append(name)

        return ActionContext(
            settings=settings,
            run_checks=note("run_checks"),
            rebirth=note("rebirth"),
            exit_agent=note("exit_agent"),
            runner=self.runner,
            counter=note("counter"),
            set_schedule=note("set_schedule"),
            identify=note("identify"),
        )

    @property
    def touched(self) -> bool:
        return bool(self.calls or self.runner.calls)


def make_settings(state: Path, **commands: Any) -> Settings:
    return Settings.model_validate(
        {
            "site": {"site_id": "s1", "name": "Site 1", "tier": "commune"},
            "paths": {"state_dir": str(state)},
            "commands": {
                "keys": [{"key_id": KEY_ID, "public_key": public_key_b64(KEY.public_key())}],
                "allow_reboot_host": True,
                **commands,
            },
        }
    )


def make_service(state: Path, hooks: Hooks, **commands: Any) -> CommandService:
    s = make_settings(state, **commands)
    outbox = Outbox.from_settings(s)
    return CommandService(s, outbox, hooks.context(s), clock=lambda: NOW)


def seen_rows(state: Path) -> int:
    db = sqlite3.connect(state / DB_NAME)
    try:
        return int(db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])
    finally:
        db.close()


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def service(tmp_path, hooks):
    svc = make_service(tmp_path / "state", hooks)
    yield svc
    svc.close(wait=True)
    svc.outbox.close()


def _wire(raw: bytes) -> dict[str, Any]:
    return json.loads(raw)


def _resign_body(body: dict[str, Any], key: Ed25519PrivateKey = KEY) -> bytes:
    text = json.dumps(body, separators=(",", ":"))
    sig = key.sign(b"edge-agent/command/1\n" + text.encode())
    wire = {"schema": "edge-agent/command/1", "key_id": KEY_ID, "body": text}
    wire["sig"] = base64.b64encode(sig).decode()
    return json.dumps(wire).encode()


def _body(raw: bytes) -> dict[str, Any]:
    return json.loads(_wire(raw)["body"])


def _without(raw: bytes, field: str) -> bytes:
    wire = _wire(raw)
    wire.pop(field)
    return json.dumps(wire).encode()


def _with(raw: bytes, **changes: Any) -> bytes:
    return json.dumps(_wire(raw) | changes).encode()


VALID = signed(KEY, issued=NOW)

REFUSALS: list[tuple[str, bytes, Reason]] = [
    ("not json", b"\xff\x00garbage", Reason.MALFORMED),
    ("json array", b"[1,2]", Reason.MALFORMED),
    ("too big", b"{" + b" " * 70_000 + b"}", Reason.MALFORMED),
    ("no sig field", _without(VALID, "sig"), Reason.UNSIGNED),
    ("empty sig", _with(VALID, sig=""), Reason.UNSIGNED),
    ("unknown key id", _with(VALID, key_id="centre-1999"), Reason.UNKNOWN_KEY),
    ("signed by another key", signed(OTHER_KEY, issued=NOW), Reason.BAD_SIGNATURE),
    ("sig not base64", _with(VALID, sig="!!!!"), Reason.BAD_SIGNATURE),
    (
        "body changed after signing",
        _with(VALID, body=_wire(VALID)["body"].replace("reboot-host", "run-checks")),
        Reason.BAD_SIGNATURE,
    ),
    ("expired", signed(KEY, issued=NOW - timedelta(hours=1), valid_s=600), Reason.EXPIRED),
    ("not yet valid", signed(KEY, issued=NOW + timedelta(minutes=5)), Reason.NOT_YET_VALID),
    ("valid for too long", signed(KEY, issued=NOW, valid_s=86_400), Reason.VALIDITY_TOO_LONG),
    ("another site", signed(KEY, issued=NOW, target={"site": "s2"}), Reason.OTHER_SITE),
    ("another tier", signed(KEY, issued=NOW, target={"tier": "district"}), Reason.OTHER_SITE),
    ("unknown action", signed(KEY, issued=NOW, action="format-disk"), Reason.UNKNOWN_ACTION),
    (
        "invalid arguments",
        signed(KEY, issued=NOW, action="identify", args={"seconds": "forever"}),
        Reason.INVALID_ARGUMENTS,
    ),
    (
        "unexpected argument",
        signed(KEY, issued=NOW, args={"force": True}),
        Reason.INVALID_ARGUMENTS,
    ),
    (
        "bad schedule",
        signed(KEY, issued=NOW, action="set-schedule", args={"schedule": {"entries": 3}}),
        Reason.INVALID_ARGUMENTS,
    ),
    (
        "schedule with a field the agent does not know",
        signed(
            KEY,
            issued=NOW,
            action="set-schedule",
            args={"schedule": SCHEDULE | {"colour": "red"}},
        ),
        Reason.INVALID_ARGUMENTS,
    ),
    (
        "body with a field the agent does not know",
        _resign_body(_body(VALID) | {"priority": "high"}),
        Reason.INVALID_BODY,
    ),
    ("wire with a field the agent does not know", _with(VALID, priority="high"), Reason.MALFORMED),
    (
        "body missing nonce",
        _resign_body({k: v for k, v in _body(VALID).items() if k != "nonce"}),
        Reason.INVALID_BODY,
    ),
    (
        "timestamp as a number",
        _resign_body(_body(VALID) | {"issued_at": NOW.timestamp()}),
        Reason.INVALID_BODY,
    ),
]


@pytest.mark.parametrize(("case", "raw", "reason"), REFUSALS, ids=[c[0] for c in REFUSALS])
def test_each_refusal_has_its_reason_and_no_side_effect(service, hooks, case, raw, reason):
    verdict = service.on_message(raw, Route("vc/s1/cmd/reply", b"corr"))
    assert isinstance(verdict, Rejection), case
    assert verdict.reason is reason, verdict.text()
    service.close(wait=True)
    assert not hooks.touched
    assert seen_rows(service.settings.paths.state_dir) == 0
    rows = service.outbox.pending(0, 10)
    if verdict.quiet:  # a broadcast for another tier is not ours to answer
        assert rows == []
        return
    (row,) = rows
    reply = CommandReplyPayload.model_validate_json(row.payload)
    assert reply.status == "rejected"
    assert reply.reason.startswith(reason.value + ": ")
    assert row.correlation == b"corr"


def test_clock_skew_is_tolerated_both_ways(service):
    early = signed(KEY, issued=NOW + timedelta(seconds=50), command_id="cmd-skew-001")
    late = signed(
        KEY,
        issued=NOW - timedelta(seconds=400),
        valid_s=350,
        command_id="cmd-skew-002",
        nonce="f" * 32,
    )
    assert isinstance(service.decide(early), Command)
    assert isinstance(service.decide(late), Command)


def test_disabled_action_is_refused_without_running(tmp_path, hooks):
    svc = make_service(tmp_path / "state", hooks, allow_reboot_host=False)
    verdict = svc.on_message(VALID)
    svc.close(wait=True)
    svc.outbox.close()
    assert isinstance(verdict, Rejection)
    assert verdict.reason is Reason.DISABLED
    assert hooks.runner.calls == []


def test_valid_command_runs_once_and_replays_are_refused_even_after_restart(tmp_path, hooks):
    state = tmp_path / "state"
    svc = make_service(state, hooks)
    assert isinstance(svc.on_message(VALID), Command)
    again = svc.on_message(VALID)
    assert isinstance(again, Rejection) and again.reason is Reason.REPLAY
    # same id, fresh nonce; and same nonce under a new id: both replays
    new_nonce = signed(KEY, issued=NOW, nonce="a" * 32)
    new_id = signed(KEY, issued=NOW, command_id="cmd-00000002")
    assert svc.decide(new_nonce).reason is Reason.REPLAY  # type: ignore[union-attr]
    assert svc.decide(new_id).reason is Reason.REPLAY  # type: ignore[union-attr]
    svc.close(wait=True)
    svc.outbox.close()
    assert hooks.runner.calls == [["systemctl", "start", "--no-block", "edge-agent-reboot.service"]]

    restarted = make_service(state, hooks)
    verdict = restarted.on_message(VALID)
    restarted.close(wait=True)
    statuses = [
        CommandReplyPayload.model_validate_json(r.payload).status
        for r in restarted.outbox.pending(0, 50)
    ]
    restarted.outbox.close()
    assert isinstance(verdict, Rejection) and verdict.reason is Reason.REPLAY
    assert "status: succeeded" in verdict.detail
    assert len(hooks.runner.calls) == 1
    assert statuses == ["accepted", "succeeded", "rejected", "rejected"]


def test_seen_ids_are_forgotten_after_their_window(tmp_path, hooks):
    state = tmp_path / "state"
    svc = make_service(state, hooks)
    assert isinstance(svc.decide(VALID, NOW), Command)
    later = NOW + timedelta(days=8)  # ids are kept a week past their window (clock jumps)
    other = signed(KEY, issued=later, command_id="cmd-00000009", nonce="b" * 32)
    assert isinstance(svc.decide(other, later), Command)
    assert seen_rows(state) == 1  # the first one's window (300 s + skew) had passed
    assert svc.decide(VALID, later).reason is Reason.EXPIRED  # type: ignore[union-attr]
    svc.close()
    svc.outbox.close()


def test_failed_action_reports_why(service, hooks):
    hooks.runner.rc = 1
    hooks.runner.output = "Access denied"
    service.on_message(VALID)
    service.close(wait=True)
    replies = [
        CommandReplyPayload.model_validate_json(r.payload) for r in service.outbox.pending(0, 9)
    ]
    assert [r.status for r in replies] == ["accepted", "failed"]
    assert "exited 1" in replies[1].reason and replies[1].output == "Access denied"


def test_count_now_without_a_counter_fails(tmp_path, hooks):
    svc = make_service(tmp_path / "state", hooks)
    svc.context.counter = None
    svc.on_message(signed(KEY, issued=NOW, action="count-now"))
    svc.close(wait=True)
    last = CommandReplyPayload.model_validate_json(svc.outbox.pending(0, 9)[-1].payload)
    svc.outbox.close()
    assert (last.status, last.reason) == (
        "failed",
        "attendance counting not installed; this agent has no people counter yet",
    )


# ---- fuzz -----------------------------------------------------------------------------------

_SCALARS: dict[type, st.SearchStrategy[Any]] = {
    type(None): st.none(),
    bool: st.booleans(),
    int: st.integers(),
    float: st.floats(allow_nan=False),
    str: st.text(max_size=12),
    list: st.lists(st.integers() | st.text(max_size=4), max_size=3),
    dict: st.dictionaries(st.text(max_size=6), st.integers() | st.text(max_size=4), max_size=3),
}
_json = st.one_of(*_SCALARS.values())


def _other_type(value: Any) -> st.SearchStrategy[Any]:
    """Any JSON value of another type than `value` (no filtering: generation stays fast)."""
    return st.one_of(*(strategy for kind, strategy in _SCALARS.items() if kind is not type(value)))


BASE = signed(KEY, issued=NOW, action="set-schedule", args={"schedule": SCHEDULE})
BODY = _body(BASE)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    kind = draw(
        st.sampled_from(
            [
                "flip",
                "truncate",
                "drop",
                "retype",
                "body-drop",
                "body-retype",
                "body-extra",
                "random-json",
                "random-bytes",
            ]
        )
    )
    if kind == "flip":
        data = bytearray(BASE)
        i = draw(st.integers(0, len(data) - 1))
        data[i] ^= draw(st.integers(1, 255))
        return bytes(data)
    if kind == "truncate":
        return BASE[: draw(st.integers(0, len(BASE) - 1))]
    wire = _wire(BASE)
    if kind == "drop":
        wire.pop(draw(st.sampled_from(sorted(wire))))
        return json.dumps(wire).encode()
    if kind == "retype":
        name = draw(st.sampled_from(sorted(wire)))
        wire[name] = draw(_other_type(wire[name]))
        return json.dumps(wire).encode()
    body = dict(BODY)
    if kind == "body-drop":  # re-signed with the real key: the body checks must catch it
        body.pop(draw(st.sampled_from(sorted(body))))
        return _resign_body(body)
    if kind == "body-retype":
        name = draw(st.sampled_from(sorted(body)))
        body[name] = draw(_other_type(body[name]))
        return _resign_body(body)
    if kind == "body-extra":
        body["x-" + draw(st.text(max_size=6))] = draw(_json)
        return _resign_body(body)
    if kind == "random-json":
        return json.dumps(draw(_json)).encode()
    return draw(st.binary(max_size=200))


def test_fuzz_base_envelope_is_valid(tmp_path, hooks):
    svc = make_service(tmp_path / "state", hooks)
    assert isinstance(svc.decide(BASE), Command)  # so the mutations start from a valid one
    svc.close()
    svc.outbox.close()


def test_fuzz_ten_thousand_payloads_are_all_rejected_with_no_action(tmp_path_factory):
    state = tmp_path_factory.mktemp("fuzz")
    hooks = Hooks()
    svc = make_service(state, hooks)
    reasons: set[Reason] = set()
    tried: list[int] = []

    @settings(
        max_examples=10_000,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    @given(mutated())
    def check(raw: bytes) -> None:
        tried.append(1)
        verdict = svc.decide(raw)
        assert isinstance(verdict, Rejection), raw
        assert verdict.reason in Reason
        reasons.add(verdict.reason)

    try:
        check()
    finally:
        svc.close(wait=True)
        svc.outbox.close()
    assert len(tried) >= 10_000
    assert not hooks.touched
    assert seen_rows(state) == 0
    assert {
        Reason.MALFORMED,
        Reason.UNSIGNED,
        Reason.UNKNOWN_KEY,
        Reason.BAD_SIGNATURE,
        Reason.INVALID_BODY,
        Reason.INVALID_ARGUMENTS,
    } <= reasons


def test_audit_lines_survive_line_separators_inside_their_text(tmp_path):
    from agent.commands.store import AuditLog  # noqa: PLC0415

    audit = AuditLog(tmp_path / "audit.jsonl")
    audit.append("rejected", reason="unknown_key: 'a\u2028b\x1cc\x85d'")
    audit.append("accepted", command_id="c-1")
    records = audit.read()
    assert [r["event"] for r in records] == ["rejected", "accepted"]
    assert records[0]["reason"] == "unknown_key: 'a\u2028b\x1cc\x85d'"


def test_a_command_cut_off_by_a_crash_is_answered_failed_at_the_next_start(tmp_path):
    state = tmp_path / "state"
    hooks = Hooks()
    first = make_service(state, hooks)
    raw = signed(KEY, action="rebirth", issued=NOW, command_id="cmd-crash-001")
    # Accepted and remembered, then the process dies before the action finishes: what the
    # store holds after a kill -9 mid-action.
    first.store.remember("cmd-crash-001", "ab" * 16, "rebirth", NOW.timestamp() + 600, 0)
    first.close(wait=True)
    first.outbox.close()

    second = make_service(state, hooks)
    try:
        replies = [
            CommandReplyPayload.model_validate_json(r.payload) for r in second.outbox.pending(0, 10)
        ]
        assert [(r.command_id, r.status) for r in replies] == [("cmd-crash-001", "failed")]
        assert "restarted while running it; send it again" in replies[0].reason
        assert second.store.status("cmd-crash-001") == "failed"
        # the id is spent: the same command again is a replay and runs nothing
        verdict = second.on_message(raw, Route("vc/s1/cmd/reply", None))
        assert isinstance(verdict, Rejection)
        assert verdict.reason is Reason.REPLAY
        assert not hooks.touched
    finally:
        second.close(wait=True)
        second.outbox.close()
    third = make_service(state, hooks)  # answered once, not again at every start
    try:
        statuses = [
            CommandReplyPayload.model_validate_json(r.payload).status
            for r in third.outbox.pending(0, 10)
        ]
        assert statuses == ["failed", "rejected"]  # the answer and the replay's refusal only
    finally:
        third.close(wait=True)
        third.outbox.close()
