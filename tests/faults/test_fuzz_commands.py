"""Fuzz: the whole path of a received MQTT command, topic + raw bytes + MQTT 5 properties ->
the daemon's inbound handler -> verify -> parse -> refuse or accept -> run.

The service is the real one (SQLite replay store, audit log, outbox) with a key pair made
at test time. Every action is wrapped to count its runs. The oracle needs no second
implementation of the rules: the fuzzer cannot forge Ed25519, so a command can only be
accepted if its exact body was signed here, and this test signs two kinds of bodies: valid
ones (recorded in VALID) and bodies broken in a way that must be refused (wrong types,
missing or unknown keys, bad times, other targets, unknown or disabled actions, bad args).
So: every accepted command's body is in VALID, and runs == accepted.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import strategies as st
from pydantic import BaseModel, JsonValue

from agent.commands import actions
from agent.commands.actions import ACTIONS, ActionContext, ActionSpec
from agent.commands.service import CommandService, Route
from agent.commands.store import AUDIT_NAME
from agent.config import Settings
from agent.contract.envelope import SCHEMA, SIGNING_TAG, Command, Rejection, public_key_b64
from agent.runtime.inbound import Router
from agent.transport.mqtt import Inbound
from agent.transport.outbox import Outbox
from tests.faults.fuzzkit import (
    CASES,
    DEEP,
    DEEP_JSON,
    JSON_VALUES,
    SCALARS,
    Tally,
    dumps,
    mutated,
    replaced_json,
    run_fuzz,
)


def make_key(name: str) -> Ed25519PrivateKey:
    """A key made here, from a fixed seed: Ed25519 signs deterministically, so every run
    fuzzes the same bytes (a random key would change every signature, and the tally)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(name.encode()).digest())


KEY = make_key("fuzz-centre")
OLD_KEY = make_key("fuzz-centre-old")  # a second configured key (rotation)
STRANGER = make_key("fuzz-stranger")  # never configured
KEY_ID, OLD_KEY_ID = "centre-test", "centre-old"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
SITE, TIER = "s1", "commune"
VALID: set[str] = set()  # bodies signed here that are valid commands for this site, now
_serial = itertools.count()


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def wire(body: str, key: Ed25519PrivateKey = KEY, key_id: str = KEY_ID) -> dict[str, Any]:
    import base64  # noqa: PLC0415

    sig = base64.b64encode(key.sign(SIGNING_TAG + body.encode("utf-8", "surrogatepass")))
    return {"schema": SCHEMA, "key_id": key_id, "body": body, "sig": sig.decode()}


def to_bytes(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass")


SCHEDULE = {
    "schema_version": "1",
    "entries": [
        {
            "session_id": "s-1",
            "start": "2026-11-25T08:00:00+07:00",
            "end": "2026-11-25T10:00:00+07:00",
        }
    ],
}
GOOD_ARGS: dict[str, list[dict[str, Any]]] = {
    "rebirth": [{}],
    "run-checks": [{}, {"components": ["network"]}, {"components": "camera,network"}],
    "count-now": [{}],
    "identify": [{}, {"seconds": 5}],
    "set-schedule": [{"schedule": SCHEDULE}, {"schedule": {"schema_version": "1"}}],
}
# Arguments each action must refuse.
BAD_ARGS: dict[str, list[Any]] = {
    "rebirth": [{"x": 1}, [], "now"],
    "run-checks": [{"components": ["toaster"]}, {"components": 7}, {"only": []}, [1]],
    "count-now": [{"all": True}],
    "identify": [{"seconds": 0}, {"seconds": -1}, {"seconds": 601}, {"seconds": 1e308},
                 {"seconds": 10**400}, {"seconds": "abc"}, {"seconds": float("nan")}],
    "set-schedule": [{"schedule": "x"}, {"schedule": {"entries": [{"session_id": "x"}]}},
                     {"schedule": {"schema_version": "9"}}, {}, {"schedule": [1, 2]}],
}  # fmt: skip
BAD_TARGETS: list[Any] = [
    None, 1, "s1", [], {}, {"site": 1}, {"site": ""}, {"site": "s1", "x": 1}, {"site": "s2"},
    {"tier": "village"}, {"tier": "district"}, {"all": False}, {"all": "true"}, {"all": 1},
    {"site": "s1", "tier": "commune"}, {"site": "s" * 65},
]  # fmt: skip
BAD_TIMES: list[Any] = [
    0, 1764000000, None, "", "2026-11-24T12:00:00", "yesterday", "2026-13-45T99:00:00Z",
    "99999-01-01T00:00:00Z", "2026-11-24T12:00:00+25:00", [], {"t": 1},
]  # fmt: skip
REQUIRED = ("id", "action", "target", "issued_at", "expires_at", "nonce")


@st.composite
def body_dict(draw: st.DrawFn) -> dict[str, Any]:
    """A valid body for this site, now (ids mostly fresh, sometimes repeated: replay)."""
    action = draw(st.sampled_from(sorted(GOOD_ARGS)))
    issued = NOW - timedelta(seconds=draw(st.integers(0, 300)))
    n = next(_serial) if draw(st.integers(0, 9)) else 0
    return {
        "id": f"cmd-{n:08d}",
        "action": action,
        "args": draw(st.sampled_from(GOOD_ARGS[action])),
        "target": draw(st.sampled_from([{"site": SITE}, {"tier": TIER}, {"all": True}])),
        "issued_at": iso(issued),
        "expires_at": iso(issued + timedelta(seconds=draw(st.integers(301, 3600)))),
        "nonce": f"{n:016x}{draw(st.integers(0, 2**32)):08x}",
    }


@st.composite
def valid_command(draw: st.DrawFn) -> bytes:
    body = json.dumps(draw(body_dict()), separators=(",", ":"))
    VALID.add(body)
    key, key_id = draw(st.sampled_from([(KEY, KEY_ID), (OLD_KEY, OLD_KEY_ID)]))
    doc = wire(body, key, key_id)
    # The outer object is not signed: any spelling of it carries the same command.
    return json.dumps(doc, indent=draw(st.sampled_from([None, 2]))).encode()


BAD_IDS = st.sampled_from([1, None, "short", "a\x00bcdefghi", "x" * 65]) | JSON_VALUES.filter(
    lambda v: not isinstance(v, str)
)
BAD_ACTIONS = st.sampled_from(["", "x" * 65, "Rebirth", "reboot", None]) | st.text(max_size=10).map(
    lambda t: "x-" + t
)
NOT_JSON = st.sampled_from(["", "{", "\ud800", "{'id': 1}", "null\x00"]) | st.just(100_000).map(
    lambda n: "[" * n
)


@st.composite
def broken_body(draw: st.DrawFn) -> str:
    """A body this site must refuse, signed with the right key."""
    doc = draw(body_dict())
    how = draw(
        st.sampled_from(
            ["missing", "unknown_key", "id", "target", "time", "window", "args", "action",
             "disabled", "not_object", "not_json"]
        )
    )  # fmt: skip
    if how == "missing":
        del doc[draw(st.sampled_from(REQUIRED))]
    elif how == "unknown_key":
        doc[draw(st.sampled_from(["sig", "key_id", "Action", "", "\x00"]))] = draw(JSON_VALUES)
    elif how == "id":
        doc["id"] = draw(BAD_IDS)
    elif how == "target":
        doc["target"] = draw(st.one_of(st.sampled_from(BAD_TARGETS), DEEP))
    elif how == "time":
        doc[draw(st.sampled_from(["issued_at", "expires_at"]))] = draw(st.sampled_from(BAD_TIMES))
    elif how == "window":
        issued = NOW + timedelta(seconds=draw(st.sampled_from([-7200, -4000, 600, 10**6])))
        span = draw(st.sampled_from([-10, 0, 300, 7200]))
        doc["issued_at"], doc["expires_at"] = iso(issued), iso(issued + timedelta(seconds=span))
    elif how == "args":
        doc["args"] = draw(st.one_of(st.sampled_from(BAD_ARGS[doc["action"]]), DEEP))
    elif how == "action":
        doc["action"] = draw(BAD_ACTIONS)
    elif how == "disabled":
        doc["action"], doc["args"] = "reboot-host", {}
    elif how == "not_object":
        return dumps(
            draw(st.one_of(JSON_VALUES.filter(lambda v: not isinstance(v, dict)), DEEP))
        ).decode("utf-8", "surrogatepass")
    else:
        return draw(NOT_JSON)
    return dumps(doc).decode("utf-8", "surrogatepass")


SIGNED_BROKEN = broken_body().map(lambda body: to_bytes(wire(body)))
VALID_WIRES = valid_command()
WRONG_KEY = st.builds(
    lambda body, who: to_bytes(wire(body, *who)),
    body_dict().map(json.dumps),
    st.sampled_from([(STRANGER, KEY_ID), (STRANGER, "centre-stranger"), (KEY, "")]),
)
OUTER = st.fixed_dictionaries(
    {},
    optional={"schema": SCALARS, "key_id": SCALARS, "body": SCALARS | JSON_VALUES, "sig": SCALARS},
).map(dumps)
PAYLOADS = st.one_of(
    st.binary(max_size=200),
    DEEP_JSON.map(str.encode),
    JSON_VALUES.map(dumps),
    OUTER,
    mutated(VALID_WIRES),
    replaced_json(VALID_WIRES.map(json.loads)),
    SIGNED_BROKEN,
    SIGNED_BROKEN,
    WRONG_KEY,
    VALID_WIRES,
    st.just(70_000).map(lambda n: b"x" * n),
)
OTHER_TOPICS = st.sampled_from(
    ["vc/s2/cmd", "vc/s1/cmd/reply", "vc/s1/schedule", "", "vc/s1/cmd\x00", "VC/S1/CMD", "vc/+/cmd"]
) | st.text(max_size=20)


@st.composite
def topics(draw: st.DrawFn) -> str:
    """Mostly this site's command topics (the path under test), sometimes anything."""
    pick = draw(st.integers(0, 9))
    return "vc/s1/cmd" if pick < 7 else "vc/cmd" if pick < 9 else draw(OTHER_TOPICS)


TOPICS = topics()
# What a broker delivers as a response topic: well-formed UTF-8 (paho decodes it; no lone
# surrogates), no wildcards, no NUL (MQTT 5, 1.5.4 and 3.3.2.3.5).
RESPONSE = st.none() | st.text(
    st.characters(blacklist_characters="#+\x00", blacklist_categories=("Cs",)),
    min_size=1,
    max_size=30,
)
MESSAGES = st.builds(
    Inbound,
    topic=TOPICS,
    payload=PAYLOADS,
    retain=st.booleans(),
    qos=st.sampled_from([0, 1, 2]),
    response_topic=RESPONSE,
    correlation=st.none() | st.binary(max_size=40),
)


def make_settings(state: Path) -> Settings:
    return Settings.model_validate(
        {
            "site": {"site_id": SITE, "name": "fuzz", "tier": TIER},
            "paths": {"state_dir": str(state), "sysfs_root": str(state / "sys")},
            "camera": {"enabled": False},
            "microphone": {"enabled": False},
            "display": {"enabled": False},
            "codec": {"enabled": False},
            "commands": {
                "keys": [
                    {"key_id": KEY_ID, "public_key": public_key_b64(KEY.public_key())},
                    {"key_id": OLD_KEY_ID, "public_key": public_key_b64(OLD_KEY.public_key())},
                ],
                "allow_reboot_host": False,
            },
        }
    )


def test_command_path_refuses_everything_but_signed_valid_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path)
    runs: list[str] = []
    hooks: list[str] = []

    def counted(name: str, spec: ActionSpec) -> ActionSpec:
        def run(ctx: ActionContext, args: BaseModel) -> JsonValue:
            runs.append(name)
            return spec.run(ctx, args)

        return ActionSpec(spec.args, run, spec.doc)

    for name, spec in list(ACTIONS.items()):
        monkeypatch.setitem(actions.ACTIONS, name, counted(name, spec))

    def hook(name: str) -> Any:
        def call(*_args: Any) -> JsonValue:
            hooks.append(name)
            return {}

        return call

    def refuse_to_run(argv: Any, _timeout: float) -> tuple[int, str]:
        hooks.append(f"runner:{argv}")
        return 1, "not in a test"

    context = ActionContext(
        settings=settings,
        run_checks=hook("run_checks"),
        rebirth=hook("rebirth"),
        exit_agent=hook("exit_agent"),
        runner=refuse_to_run,
        counter=hook("counter"),
        set_schedule=hook("set_schedule"),
        identify=hook("identify"),
    )
    outbox = Outbox.from_settings(settings)
    service = CommandService(settings, outbox, context, clock=lambda: NOW)
    verdicts: list[Command | Rejection] = []
    original = service.on_message

    def spy(raw: bytes, route: Route | None = None, *, fleet: bool = False) -> Command | Rejection:
        verdict = original(raw, route or Route(), fleet=fleet)
        verdicts.append(verdict)
        return verdict

    service.on_message = spy  # type: ignore[method-assign]
    handle = Router(settings, service)
    tally = Tally()
    accepted: list[Command] = []

    def case(message: Inbound) -> None:
        before = len(verdicts)
        handle(message)
        if len(verdicts) == before:
            assert message.topic not in ("vc/s1/cmd", "vc/cmd"), "a command topic went unheard"
            tally.add("ignored:not_a_command_topic")
            return
        verdict = verdicts[-1]
        if isinstance(verdict, Rejection):
            tally.add(f"refused:{verdict.reason.value}")
            return
        accepted.append(verdict)
        tally.add("accepted")

    try:
        run_fuzz(MESSAGES, case)
    finally:
        service.close(wait=True)
        outbox.close()
    tally.report("commands")
    print(f"[fuzz commands] action runs: {len(runs)}, hook calls: {len(hooks)}")
    assert tally.total >= CASES
    # Only bodies signed here as valid were accepted, each once (a repeat is a replay)...
    bodies = [json.dumps(c.body.model_dump(mode="json")) for c in accepted]
    ids = [c.id for c in accepted]
    assert len(ids) == len(set(ids))
    valid_ids = {json.loads(b)["id"] for b in VALID}
    forged = [b for b, i in zip(bodies, ids, strict=True) if i not in valid_ids]
    assert not forged, forged[:3]
    # ...and nothing ran but the accepted commands: one run each, and no other hook.
    assert len(runs) == len(accepted) > 0
    assert not [h for h in hooks if h.startswith("runner:") or h == "exit_agent"]
    # Actions ran to an answer: no crash inside one (concurrent set-schedule used to race).
    # (Split on "\n" only: a refused id may hold U+2028 or \x1c, which str.splitlines splits.)
    lines = (tmp_path / AUDIT_NAME).read_text(encoding="utf-8").split("\n")
    crashed = [line for line in lines if '"failed"' in line and "internal error" in line]
    assert not crashed, crashed[:3]
    assert tally.counts["refused:bad_signature"] > 0
    assert tally.counts["refused:invalid_body"] > 0
    assert tally.counts["refused:invalid_arguments"] > 0
    assert tally.counts["refused:disabled"] > 0
