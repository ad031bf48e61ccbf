"""Commands over a real mosquitto: refusals answered with their reason and no action, exactly
once under duplicate delivery and across a restart, replies with correlation data (MQTT 5)
and on cmd/reply (MQTT 3.1.1), fleet broadcasts, and the `centre` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from agent.centre.sender import Outcome, Sender
from agent.centre.store import Incoming, Store
from agent.cli import main
from agent.commands.store import AUDIT_NAME, AuditLog
from agent.contract.payloads import PAYLOADS
from agent.sim.broker import _CENTRE_PASSWORD, V311OnlyProxy
from agent.sim.fleet_site import SimSite
from agent.transport.mqtt import Protocol
from tests.commands_kit import KEY_ID, CommandAgent, commands_config, signed
from tests.fixtures.broker import ROOT, dump_toml, wait_until

pytestmark = pytest.mark.broker

REBOOT = ["systemctl", "start", "--no-block", "edge-agent-reboot.service"]


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def agents():
    started: list[CommandAgent] = []

    def make(config, runner=None) -> CommandAgent:
        agent = CommandAgent(config, runner).start()
        started.append(agent)
        return agent

    yield make
    for agent in started:
        if agent.thread.is_alive():
            agent.stop()


def _online(agent: CommandAgent) -> None:
    assert wait_until(lambda: agent.agent.link.status().connected, 10)
    time.sleep(0.1)  # the SUBSCRIBE went out before the announce; let its SUBACK land


def _statuses(outcome: Outcome) -> list[str]:
    return [r.status for r in outcome.replies]


def test_each_refusal_is_answered_with_its_reason_and_runs_nothing(broker, key, agents, tmp_path):
    agent = agents(commands_config(broker, tmp_path / "state", key))
    _online(agent)
    now = datetime.now(UTC)
    stranger = Ed25519PrivateKey.generate()
    valid = json.loads(signed(key, command_id="cmd-unsigned"))
    valid.pop("sig")
    cases = {
        "cmd-unsigned": (json.dumps(valid).encode(), "unsigned"),
        "cmd-badsig01": (signed(stranger, command_id="cmd-badsig01"), "bad_signature"),
        "cmd-unknownk": (signed(key, command_id="cmd-unknownk", key_id="old"), "unknown_key"),
        "cmd-expired1": (
            signed(key, command_id="cmd-expired1", issued=now - timedelta(hours=1), valid_s=60),
            "expired",
        ),
        "cmd-future01": (
            signed(key, command_id="cmd-future01", issued=now + timedelta(minutes=10)),
            "not_yet_valid",
        ),
        "cmd-othersit": (
            signed(key, command_id="cmd-othersit", target={"site": "s2"}),
            "other_site",
        ),
        "cmd-unknowna": (signed(key, command_id="cmd-unknowna", action="wipe"), "unknown_action"),
        "cmd-badargs1": (
            signed(key, command_id="cmd-badargs1", args={"delay": 5}),
            "invalid_arguments",
        ),
    }
    with Sender(broker.endpoint(), "vc") as centre:
        for command_id, (payload, reason) in cases.items():
            centre.publish_raw(payload, {"site": "s1"}, command_id.encode())
            outcome = centre.collect(command_id, {"s1"}, 5)
            assert _statuses(outcome) == ["rejected"], command_id
            reply = outcome.replies[0]
            assert reply.reason.startswith(reason + ": "), reply.reason
            assert reply.correlation == command_id.encode()
        # After all of that: nothing ran, nothing was remembered. Then a valid one runs, and
        # its replay is refused.
        assert agent.runner.calls == []
        assert agent.agent.commands is not None
        assert agent.agent.commands.store.status("cmd-badargs1") is None
        good = signed(key, command_id="cmd-good0001")
        centre.publish_raw(good, {"site": "s1"}, b"cmd-good0001")
        assert _statuses(centre.collect("cmd-good0001", {"s1"}, 5)) == ["accepted", "succeeded"]
        centre.publish_raw(good, {"site": "s1"}, b"cmd-good0001")
        replay = centre.collect("cmd-good0001", {"s1"}, 5)
        assert _statuses(replay) == ["rejected"]
        assert replay.replies[0].reason.startswith("replay: ")
    assert agent.runner.calls == [REBOOT]
    audit = AuditLog(tmp_path / "state" / AUDIT_NAME).read()
    rejected = {a["command_id"]: a["reason"] for a in audit if a["event"] == "rejected"}
    assert rejected == {cid: reason for cid, (_, reason) in cases.items()} | {
        "cmd-good0001": "replay"
    }
    assert [a["event"] for a in audit if a["command_id"] == "cmd-good0001"] == [
        "accepted",
        "succeeded",
        "rejected",
    ]


def test_duplicate_delivery_and_a_restart_run_the_command_exactly_once(
    broker, key, agents, tmp_path
):
    config = commands_config(broker, tmp_path / "state", key)
    first = agents(config)
    _online(first)
    payload = signed(key, command_id="cmd-once0001")
    with Sender(broker.endpoint(), "vc") as centre:
        # QoS 1 may deliver twice: the same bytes twice in a row.
        centre.publish_raw(payload, {"site": "s1"}, b"c1")
        centre.publish_raw(payload, {"site": "s1"}, b"c1")
        outcome = centre.collect("cmd-once0001", {"s1"}, 5)
        time.sleep(0.3)
        outcome.replies += centre.collect("cmd-once0001", set(), 0.3).replies
        assert sorted(_statuses(outcome)) == ["accepted", "rejected", "succeeded"]
        first.stop()

        again = agents(config)
        _online(again)
        centre.publish_raw(payload, {"site": "s1"}, b"c1")
        after = centre.collect("cmd-once0001", {"s1"}, 5)
        assert _statuses(after) == ["rejected"]
        assert "status: succeeded" in after.replies[0].reason
    assert first.runner.calls == [REBOOT]
    assert again.runner.calls == []


def test_run_checks_replies_on_the_response_topic_with_correlation_data(
    broker, key, agents, tmp_path
):
    agent = agents(commands_config(broker, tmp_path / "state", key))
    _online(agent)
    with Sender(broker.endpoint(), "vc") as centre:
        command_id, _ = centre.send(
            key,
            KEY_ID,
            "run-checks",
            {"components": "network"},
            {"site": "s1"},
            response_topic="vc/s1/cmd/reply/desk-7",
        )
        outcome = centre.collect(command_id, {"s1"}, 10)
    assert _statuses(outcome) == ["accepted", "progress", "succeeded"]
    assert {r.topic for r in outcome.replies} == {"vc/s1/cmd/reply/desk-7"}
    assert {r.correlation for r in outcome.replies} == {command_id.encode()}
    report = outcome.replies[-1].output
    assert report["verdict"] == "ready"
    assert [(r["component"], r["status"]) for r in report["results"]] == [("network", "ok")]


def test_under_mqtt_311_replies_go_to_cmd_reply_with_the_command_id(broker, key, agents, tmp_path):
    proxy = V311OnlyProxy(broker.port).start()
    try:
        config = commands_config(broker, tmp_path / "state", key)
        config["broker"]["port"] = proxy.port
        agent = agents(config)
        _online(agent)
        assert agent.agent.link.status().protocol == "3.1.1"
        with Sender(broker.endpoint(), "vc", Protocol.V311) as centre:
            command_id, _ = centre.send(key, KEY_ID, "rebirth", {}, {"site": "s1"})
            outcome = centre.collect(command_id, {"s1"}, 10)
    finally:
        proxy.stop()
    assert _statuses(outcome) == ["accepted", "succeeded"]
    assert {r.topic for r in outcome.replies} == {"vc/s1/cmd/reply"}
    assert {r.correlation for r in outcome.replies} == {None}


def test_tier_broadcast_reaches_only_that_tier_and_others_stay_quiet(broker, key, agents, tmp_path):
    commune = agents(commands_config(broker, tmp_path / "s1", key, "s1", "commune"))
    district = agents(commands_config(broker, tmp_path / "s2", key, "s2", "district"))
    _online(commune)
    _online(district)
    with Sender(broker.endpoint(), "vc") as centre:
        assert centre.sites == {"s1": "commune", "s2": "district"}
        target = {"tier": "commune"}
        command_id, _ = centre.send(key, KEY_ID, "reboot-host", {}, target)
        outcome = centre.collect(command_id, centre.expected_sites(target), 5)
        late = centre.collect(command_id, set(), 0.5)
        # One site's command on the fleet topic: the others hear it and stay quiet too.
        assert centre.conn is not None
        centre.conn.publish(
            "vc/cmd", signed(key, command_id="cmd-fleet-s2", target={"site": "s2"}), 1, False
        )
        for_s2 = centre.collect("cmd-fleet-s2", set(), 1.0)
    assert {r.site_id for r in outcome.replies + late.replies} == {"s1"}
    assert outcome.summary()["succeeded"] == 1
    assert {(r.site_id, r.status) for r in for_s2.replies} == {
        ("s2", "accepted"),
        ("s2", "succeeded"),
    }
    assert commune.runner.calls == [REBOOT]
    assert district.runner.calls == [REBOOT]


def test_restart_agent_answers_then_stops_the_daemon(broker, key, agents, tmp_path):
    agent = agents(commands_config(broker, tmp_path / "state", key))
    _online(agent)
    with Sender(broker.endpoint(), "vc") as centre:
        command_id, _ = centre.send(key, KEY_ID, "restart-agent", {}, {"site": "s1"})
        outcome = centre.collect(command_id, {"s1"}, 10)
    assert _statuses(outcome) == ["accepted", "succeeded"]
    agent.thread.join(10)
    assert not agent.thread.is_alive(), "the daemon did not exit for systemd to restart it"


def test_centre_cli_keygen_and_send_prints_replies_and_summary(
    broker, agents, tmp_path, capsys, monkeypatch
):
    stem = tmp_path / "keys" / "centre-test"
    assert main(["centre", "keygen", "--out", str(stem)]) == 0
    printed = capsys.readouterr().out
    assert oct((stem.with_suffix(".key")).stat().st_mode & 0o777) == "0o600"
    public = stem.with_suffix(".pub").read_text().strip()
    assert f'public_key = "{public}"' in printed

    config = commands_config(broker, tmp_path / "state", Ed25519PrivateKey.generate())
    config["commands"]["keys"] = [{"key_id": "centre-test", "path": str(stem.with_suffix(".pub"))}]
    agent = agents(config)
    _online(agent)
    monkeypatch.setenv("EDGE_AGENT_CENTRE_KEY", str(stem.with_suffix(".key")))
    centre = tmp_path / "centre.toml"  # a centre whose fleet database does not exist yet
    centre.write_text(f'db_path = "{tmp_path / "none.sqlite"}"\n')
    monkeypatch.setenv("EDGE_AGENT_CENTRE_CONFIG", str(centre))
    argv = ["centre", "send", "identify", "--all", "--arg", "seconds=1", "--timeout", "5"]
    argv += ["--port", str(broker.port)]
    assert main(argv) == 1  # no LED on this box: identify fails, and says why
    out = capsys.readouterr().out
    assert "s1" in out and "accepted" in out
    assert "failed     no status LED on this site" in out
    assert "summary: answered 1/1, succeeded 0, failed 1, rejected 0, no answer 0" in out

    argv = ["centre", "send", "rebirth", "--site", "s1", "--port", str(broker.port)]
    assert main([*argv, "--timeout", "5"]) == 0
    assert "summary: answered 1/1, succeeded 1" in capsys.readouterr().out
    # No fleet database: s1 was known from its retained meta; "nowhere" is not known.
    argv = ["centre", "send", "rebirth", "--site", "nowhere", "--port", str(broker.port)]
    assert main([*argv, "--timeout", "0.5"]) == 3
    out, err = capsys.readouterr()
    assert "sent" not in out
    assert "site nowhere: the centre has never heard of it" in err and "--force" in err
    assert main([*argv, "--timeout", "0.5", "--force"]) == 1
    assert "no answer 1 (nowhere)" in capsys.readouterr().out


def test_centre_send_knows_the_sites_in_the_fleet_database(broker, tmp_path, capsys, monkeypatch):
    db = tmp_path / "centre.sqlite"
    store = Store(db)
    raw = [(m[1], json.loads(m[1])["schema"].split("/")[1]) for m in SimSite("c9").birth()]
    store.apply_batch(
        Incoming(PAYLOADS[kind].model_validate_json(r), False, time.time()) for r, kind in raw
    )
    store.close()
    config = tmp_path / "centre.toml"
    config.write_text(f'db_path = "{db}"\n')
    stem = tmp_path / "centre-test"
    assert main(["centre", "keygen", "--out", str(stem)]) == 0
    monkeypatch.setenv("EDGE_AGENT_CENTRE_KEY", str(stem.with_suffix(".key")))
    monkeypatch.setenv("EDGE_AGENT_CENTRE_CONFIG", str(config))
    capsys.readouterr()
    argv = ["centre", "send", "rebirth", "--port", str(broker.port), "--timeout", "0.3"]
    # c9 is stored (never online now): sent, and silent
    assert main([*argv, "--site", "c9"]) == 1
    assert "no answer 1 (c9)" in capsys.readouterr().out
    assert main([*argv, "--site", "c99"]) == 3
    err = capsys.readouterr().err
    assert "site c99: the centre has never heard of it" in err and str(db) in err
    # a missing centre.toml that was asked for is an error, not an empty fleet
    monkeypatch.setenv("EDGE_AGENT_CENTRE_CONFIG", str(tmp_path / "missing.toml"))
    assert main([*argv, "--site", "c9"]) == 3
    assert "missing.toml" in capsys.readouterr().err


def test_centre_send_reads_the_broker_password_from_a_file_never_argv(
    broker_password, tmp_path, capsys, monkeypatch
):
    stem = tmp_path / "centre-test"
    assert main(["centre", "keygen", "--out", str(stem)]) == 0
    monkeypatch.setenv("EDGE_AGENT_CENTRE_KEY", str(stem.with_suffix(".key")))
    argv = ["centre", "send", "rebirth", "--site", "nowhere", "--timeout", "0.5", "--force"]
    argv += ["--port", str(broker_password.port), "--username", "centre"]
    right = tmp_path / "pw"
    right.write_text(_CENTRE_PASSWORD + "\n")
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it\n")
    capsys.readouterr()

    assert main([*argv, "--password-file", str(right)]) == 1  # connected; the site is silent
    assert "no answer 1 (nowhere)" in capsys.readouterr().out
    assert main([*argv, "--password-file", str(wrong)]) != 0
    assert "silent" not in capsys.readouterr().out  # refused at CONNECT, never sent
    assert main([*argv, "--password-file", str(tmp_path / "missing")]) == 3
    assert "broker password file" in capsys.readouterr().err


def _edge_agent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("EDGE_AGENT_")},
    )


def test_centre_send_takes_broker_and_key_from_the_centre_settings(
    broker_password, agents, tmp_path
):
    """As `centre serve` does: [broker] (port, user, password), command_key and key_id."""
    stem = tmp_path / "centre-command"
    assert main(["centre", "keygen", "--out", str(stem)]) == 0
    config = commands_config(broker_password, tmp_path / "state", Ed25519PrivateKey.generate())
    config["commands"]["keys"] = [{"key_id": "desk-1", "path": str(stem.with_suffix(".pub"))}]
    _online(agents(config))
    centre_toml = tmp_path / "centre.toml"
    centre_toml.write_text(
        dump_toml(
            {
                "broker": broker_password.broker_settings("centre"),
                "db_path": str(tmp_path / "centre.sqlite"),
                "command_key": str(stem.with_suffix(".key")),
                "key_id": "desk-1",
            }
        )
    )
    sent = _edge_agent("centre", "send", "rebirth", "--site", "s1", "--config", str(centre_toml))
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert "summary: answered 1/1, succeeded 1" in sent.stdout
    # An option given on the line still wins over the file.
    wrong = tmp_path / "wrong"
    wrong.write_text("not-it\n")
    refused = _edge_agent(
        "centre", "send", "rebirth", "--site", "s1", "--config", str(centre_toml),
        "--password-file", str(wrong),
    )  # fmt: skip
    assert refused.returncode == 3 and "refused" in refused.stderr, refused.stderr


def test_centre_send_speaks_what_the_broker_speaks(broker, key, agents, tmp_path):
    proxy = V311OnlyProxy(broker.port).start()
    try:
        config = commands_config(broker, tmp_path / "state", key)
        config["broker"]["port"] = proxy.port
        _online(agents(config))
        key_file = tmp_path / "centre.key"
        key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        argv = ["centre", "send", "rebirth", "--site", "s1", "--key", str(key_file)]
        argv += ["--key-id", KEY_ID, "--port", str(proxy.port), "--timeout", "10"]
        auto = _edge_agent(*argv)  # auto is the default, as broker.protocol's
        assert auto.returncode == 0, auto.stdout + auto.stderr
        assert "summary: answered 1/1, succeeded 1" in auto.stdout
        five = _edge_agent(*argv, "--protocol", "5")
    finally:
        proxy.stop()
    assert five.returncode == 3
    assert f"broker 127.0.0.1:{proxy.port} does not speak MQTT 5" in five.stderr
    assert "broker.protocol" in five.stderr and "Traceback" not in five.stderr
