"""`rejoin`: the centre asks a site to dial its running session's conference again, through
the codec profile's `dial` table; the refusals that say why it cannot; and the schedule's
`conference_address` as an older agent reads it."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import types
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.centre.web.server import Dashboard
from agent.cli import main
from agent.commands.actions import ACTIONS, ActionContext, ActionFailed, NoArgs
from agent.commands.store import AUDIT_NAME
from agent.config import Settings
from agent.profiles.model import Dial
from agent.schedule.model import ScheduleError, Session, parse_payload
from agent.sim.serial_device import PtyDevice, load_recording
from agent.validation import Invalid
from tests.commands_kit import CommandAgent
from tests.fixtures.broker import ROOT, agent_config, dump_toml, wait_until
from tests.test_dashboard import Client, filled, settings_for, write_key  # noqa: F401 (fixture)

ADDRESS = "1001@mcu.tinh.gov.vn"  # the address the recordings answer
DIAL = f'xCommand Dial Number: "{ADDRESS}"'.encode()
# The last commit before conference_address: the schedule model deployed agents run.
OLD_AGENT = "1b5978f"


def _session(address: str | None = ADDRESS) -> Session:
    start = datetime.now(UTC) - timedelta(minutes=5)
    return Session(
        session_id="S1", start=start, end=start + timedelta(hours=2), conference_address=address
    )


def _settings(tmp_path: Path, port: str, **codec: Any) -> Settings:
    return Settings.model_validate(
        {
            "site": {"site_id": "s1", "name": "s1", "tier": "commune"},
            "paths": {"state_dir": str(tmp_path / "state")},
            "codec": {"enabled": True, "port": port, "password": "secret", **codec},
        }
    )


def _rejoin(settings: Settings, sessions: Sequence[Session] | None) -> Any:
    ctx = ActionContext(
        settings=settings,
        run_checks=lambda _only: None,
        rebirth=lambda: None,
        exit_agent=lambda: None,
        current_sessions=None if sessions is None else (lambda: sessions),
    )
    return ACTIONS["rejoin"].run(ctx, NoArgs())


@pytest.fixture
def codec():
    dev = PtyDevice(load_recording("cisco-roomos_ce9.15")).start()
    yield dev
    dev.stop()


# ---- end to end: centre schedule + centre send -> the emulated codec dials ------------------


@pytest.mark.broker
def test_centre_send_rejoin_dials_the_sessions_conference(broker, codec, tmp_path, capsys):
    stem = tmp_path / "keys" / "centre-test"
    assert main(["centre", "keygen", "--out", str(stem)]) == 0
    config = agent_config(broker, tmp_path / "state", "s1", check_interval_s=3600.0)
    config["site"]["tier"] = "commune"
    public = str(stem.with_suffix(".pub"))
    config["commands"] = {"keys": [{"key_id": "centre-test", "path": public}]}
    config["codec"] = {"enabled": True, "port": codec.port, "password": "secret"}
    agent = CommandAgent(config).start()
    try:
        assert wait_until(lambda: agent.agent.link.status().connected, 10)
        centre = tmp_path / "centre.toml"
        centre.write_text(
            dump_toml(
                {
                    "broker": broker.broker_settings("centre"),
                    "db_path": str(tmp_path / "centre.sqlite"),
                    "command_key": str(stem.with_suffix(".key")),
                    "key_id": "centre-test",
                }
            )
        )
        cfg = ["--config", str(centre)]
        send = ["centre", "send", "rejoin", "--site", "s1", *cfg, "--timeout", "15"]
        assert main(send) == 1  # no session yet: refused, with the reason, nothing dialled
        assert "no session is running on this site" in capsys.readouterr().out
        assert DIAL not in codec.requests
        now = datetime.now(UTC)
        when = ["--start", (now - timedelta(minutes=5)).isoformat(),
                "--end", (now + timedelta(hours=1)).isoformat()]  # fmt: skip
        assert main(["centre", "schedule", "add", "S1", *cfg, *when, "--site", "s1",
                     "--conference", ADDRESS]) == 0  # fmt: skip
        assert wait_until(lambda: agent.agent.presession.current_sessions(datetime.now(UTC)), 10)
        capsys.readouterr()
        assert main(send) == 0
        out = capsys.readouterr().out
        assert "succeeded" in out, out
        assert DIAL in codec.requests
        audit = [json.loads(line) for line in (tmp_path / "state" / AUDIT_NAME).open()]
        done = [e["event"] for e in audit if e.get("action") == "rejoin"]
        assert done == ["accepted", "failed", "accepted", "succeeded"], audit
    finally:
        agent.stop()


@pytest.mark.usefixtures("filled")  # the accounts "op" (operator) and "view" (viewer)
def test_the_page_offers_rejoin_to_operators_only(tmp_path):
    from agent.centre.web.commands import Commander  # noqa: PLC0415

    write_key(tmp_path / "centre.key")
    settings = settings_for(tmp_path, command_key=str(tmp_path / "centre.key"))
    dash = Dashboard(settings, "127.0.0.1:0", with_broker=False).start()
    # Not started: requests are queued, never sent (no broker needed to see who may send).
    dash.services.commander = Commander(settings, lambda *_: None)
    body = {"action": "rejoin", "sites": ["c1"]}
    try:
        viewer = Client(dash.url)
        viewer.login("view")
        assert viewer.call("POST", "/api/command", body)[0] == 403
        assert dash.services.commander._requests.empty()
        operator = Client(dash.url)
        operator.login("op")
        status, me, _ = operator.call("GET", "/api/me")
        assert "rejoin" in me["actions"]
        status, data, _ = operator.call("POST", "/api/command", body)
        assert status == 202, data
    finally:
        dash.stop()


# ---- refusals: each with its reason, and nothing sent to the codec --------------------------


def _refused(settings: Settings, sessions: Sequence[Session] | None) -> ActionFailed:
    with pytest.raises(ActionFailed) as caught:
        _rejoin(settings, sessions)
    return caught.value


def test_rejoin_refuses_without_a_running_session(codec, tmp_path):
    settings = _settings(tmp_path, codec.port)
    for sessions in (None, []):
        err = _refused(settings, sessions)
        assert err.msg is not None and err.msg.id == "command.failed.no_session"
    assert DIAL not in codec.requests


def test_rejoin_refuses_a_session_without_a_conference_address(codec, tmp_path):
    err = _refused(_settings(tmp_path, codec.port), [_session(None)])
    assert err.msg is not None and err.msg.id == "command.failed.no_address"
    assert "S1" in err.message and "--conference" in err.hint
    assert codec.requests == []


def test_rejoin_refuses_without_a_codec(tmp_path):
    err = _refused(_settings(tmp_path, "/dev/nowhere", enabled=False), [_session()])
    assert err.msg is not None and err.msg.id == "command.failed.codec_off"


def test_rejoin_refuses_a_profile_that_cannot_dial(codec, tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (ROOT / "firmware_profiles" / "cisco-roomos.toml").read_text()
    (profiles / "cisco-roomos.toml").write_text(text.split("\n[dial]")[0] + "\n")
    settings = _settings(tmp_path, codec.port)
    settings.paths.profiles_dir = profiles
    err = _refused(settings, [_session()])
    assert err.msg is not None and err.msg.id == "command.failed.cannot_dial"
    assert codec.requests == []


def test_rejoin_reports_the_codecs_refusal_of_the_dial(tmp_path):
    dev = PtyDevice(load_recording("cisco-roomos_ce9.15"), "error_reply").start()
    try:
        err = _refused(_settings(tmp_path, dev.port), [_session()])
    finally:
        dev.stop()
    assert "DialResult (status=Error)" in err.message or "ERROR" in err.message


def test_rejoin_dials_through_a_poly_profile(tmp_path):
    dev = PtyDevice(load_recording("poly-group_6.2")).start()
    try:
        out = _rejoin(_settings(tmp_path, dev.port, profile="poly-group"), [_session()])
    finally:
        dev.stop()
    assert f'dial manual 1024 "{ADDRESS}"'.encode() in dev.requests
    assert out["address"] == ADDRESS and out["session_id"] == "S1"


def test_dial_send_must_carry_the_address_and_nothing_else():
    for send in ("dial now", "dial {id} {address}", "dial {address"):
        with pytest.raises((Invalid, ValueError)):
            Dial(send=send, accepted="^ok")


# ---- the schedule field, as new and old agents read it --------------------------------------


def _schedule(address: str) -> str:
    entry = _session().model_dump(mode="json") | {"conference_address": address}
    return json.dumps({"schema_version": "1", "entries": [entry]})


@pytest.mark.parametrize("bad", ['1001" ; xCommand SystemUnit Boot', "a\r\nb", "{id}", ""])
def test_a_conference_address_that_could_break_the_dial_line_is_refused(bad):
    with pytest.raises(ScheduleError) as caught:
        parse_payload(_schedule(bad))
    assert "conference_address" in caught.value.message


def _old_schedule_model(tmp_path: Path) -> types.ModuleType:
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{OLD_AGENT}:agent/schedule/model.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "conference_address" not in source
    path = tmp_path / "old_schedule_model.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_schedule_model", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # pydantic resolves the models' annotations through it
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_an_old_agent_reads_a_schedule_with_a_conference_address(tmp_path):
    old = _old_schedule_model(tmp_path)
    payload = old.parse_payload(_schedule(ADDRESS))
    (entry,) = payload.entries
    assert entry.session_id == "S1" and not hasattr(entry, "conference_address")
    # Inside a signed set-schedule the body stays strict: an old agent refuses it with a
    # reason (and keeps its schedule) instead of dropping a field it cannot honour.
    with pytest.raises(old.ScheduleError):
        old.parse_payload(_schedule(ADDRESS), strict=True)


def test_centre_schedule_add_refuses_an_undialable_conference_in_words(tmp_path, capsys):
    centre = tmp_path / "centre.toml"
    centre.write_text(f'db_path = "{tmp_path / "centre.sqlite"}"\n')
    argv = ["centre", "schedule", "add", "S1", "--config", str(centre), "--start",
            "2026-03-10T08:00:00+07:00", "--end", "2026-03-10T11:00:00+07:00",
            "--conference", '1001" ; xCommand SystemUnit Boot']  # fmt: skip
    assert main(argv) != 0
    err = capsys.readouterr().err
    assert "not a dialable conference address" in err and "pydantic.dev" not in err, err
