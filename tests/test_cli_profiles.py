"""`edge-agent profiles list|show|test`: output and monitoring-plugin exit codes, run
through agent.cli.main against recorded devices, with no settings file."""

import json

import pytest

from agent.cli import main


@pytest.fixture(autouse=True)
def no_settings_file(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGE_AGENT_CONFIG", str(tmp_path / "missing.toml"))


def test_list_shows_every_profile(capsys):
    assert main(["profiles", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("cisco-roomos", "poly-hdx", "sony-visca", "samsung-mdc", "pjlink", "hdmi-cec"):
        assert name in out


def test_list_flags_an_invalid_profile(tmp_path, capsys):
    (tmp_path / "broken.toml").write_text('name = "broken"\n')
    assert main(["profiles", "list", "--profiles-dir", str(tmp_path)]) == 1
    assert "broken  INVALID: " in capsys.readouterr().out


def test_show(capsys):
    assert main(["profiles", "show", "samsung-mdc"]) == 0
    out = capsys.readouterr().out
    assert "serial 9600 8N1" in out
    assert "Samsung MDC Protocol guide" in out
    assert main(["profiles", "show", "pjlink", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["transport"] == {"kind": "tcp", "port": 4352}


def test_test_ok_is_0_with_a_table(serial_device, capsys):
    device = serial_device("cisco-roomos_ce9.15")
    args = ["profiles", "test", "cisco-roomos", "--port", device.url, "--password", "secret"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "version        OK" in out
    assert "result: OK - cisco-roomos on" in out


def test_test_warning_is_1(serial_device, capsys):
    device = serial_device("cisco-roomos_ce9.10-unregistered")
    args = ["profiles", "test", "cisco-roomos", "--port", device.url, "--password", "secret"]
    assert main([*args, "--query", "microphones"]) == 1
    assert "microphones muted" in capsys.readouterr().out


def test_test_failure_is_2_and_json(serial_device, capsys):
    device = serial_device("sony-visca_evi-d70", "garbage")
    assert main(["profiles", "test", "sony-visca", "--port", device.url, "--json"]) == 2
    report = json.loads(capsys.readouterr().out)
    assert report["status"] == "fail"
    assert report["queries"][0]["status"] == "fail"
    assert "garbage" in report["reason"]


def test_test_silent_device_is_2_within_the_timeout(serial_device, capsys):
    device = serial_device("lg-rs232_generic", "silent")
    args = ["profiles", "test", "lg-rs232", "--port", device.url, "--timeout", "0.3"]
    assert main(args) == 2
    out = capsys.readouterr().out
    assert "result: FAIL - lg-rs232 on" in out
    assert "no answer to 'power'" in out
    assert "hint: check the RS-232 cable" in out


def test_test_action_query_runs_only_when_named(serial_device, capsys):
    device = serial_device("cisco-roomos_ce9.15")
    base = ["profiles", "test", "cisco-roomos", "--port", device.url, "--password", "secret"]
    assert main([*base, "--json"]) == 0
    assert "reboot" not in {q["name"] for q in json.loads(capsys.readouterr().out)["queries"]}
    assert main([*base, "--query", "reboot"]) == 0
    assert b"xCommand SystemUnit Boot Action: Restart" in device.requests


def test_test_over_tcp_with_device_id(serial_device, capsys):
    device = serial_device("samsung-mdc_generic", tcp=True)
    assert main(["profiles", "test", "samsung-mdc", "--port", device.url, "--id", "1"]) == 0
    assert "power on" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profiles", "test", "no-such"], "no file"),
        (["profiles", "test", "lg-rs232", "--port", "/dev/null", "--query", "x"], "no query x"),
        (["profiles", "test", "lg-rs232"], "give --port"),
    ],
)
def test_could_not_run_is_3(args, message, capsys):
    assert main(args) == 3
    assert message in capsys.readouterr().err
