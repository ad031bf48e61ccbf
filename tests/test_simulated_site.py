"""End to end: `edge-agent check` against the whole simulated site (real OpenCV stream,
real PulseAudio through sounddevice, real ptys, sysfs-shaped tree)."""

import json
import os
import time
from pathlib import Path

import pytest

from agent.cli import main
from agent.config import load_settings
from agent.sim.site import SimulatedSite


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    with SimulatedSite(tmp_path_factory.mktemp("site"), width=640, height=480) as running:
        saved = dict(os.environ)
        running.apply_env()
        yield running
        os.environ.clear()
        os.environ.update(saved)


def check_json(site, capsys, *components):
    code = main(["--config", str(site.config_path), "check", "--json", *components])
    return code, json.loads(capsys.readouterr().out)


def test_one_result_per_configured_component_all_ok(site, capsys):
    code, report = check_json(site, capsys)
    settings = load_settings(site.config_path)
    components = [r["component"] for r in report["results"]]
    assert components == settings.enabled_components()
    assert components == ["camera", "microphone", "display", "codec", "ptz", "network"]
    not_ok = {r["component"]: r["reason"] for r in report["results"] if r["status"] != "ok"}
    assert not_ok == {}
    assert report["verdict"] == "ready"
    assert code == 0
    by = {r["component"]: r for r in report["results"]}
    assert by["camera"]["metrics"]["width"] == 640
    assert by["microphone"]["metrics"]["rms_dbfs"] == pytest.approx(-9.0, abs=1.0)
    assert by["display"]["metrics"]["monitor_name"] == "SAMSUNG"
    assert by["codec"]["metrics"]["version"] == "ce9.15.3.22"
    assert by["codec"]["metrics"]["sip_registration"] == "Registered"


def test_covered_lens_makes_the_site_fault(site, capsys):
    site.camera.set_mode("black")
    try:
        code, report = check_json(site, capsys, "camera", "network")
    finally:
        site.camera.set_mode("normal")
    camera = report["results"][0]
    assert camera["status"] == "fail"
    assert camera["hint"]
    assert code == 2
    assert report["verdict"] == "fault"


def test_silent_microphone_fails(site, capsys):
    site.tone.set_kind("silence")
    time.sleep(0.2)  # what the player's pipe and the sink already hold (~60 ms) plays out
    try:
        code, report = check_json(site, capsys, "microphone")
    finally:
        site.tone.set_kind("tone")
    assert report["results"][0]["status"] == "fail"
    assert code == 2


def test_human_table(site, capsys):
    code = main(["--config", str(site.config_path), "check", "display", "ptz"])
    out = capsys.readouterr().out
    assert code == 0
    assert "display    OK" in out
    assert "site verdict:" in out


def test_settings_file_is_valid_toml_for_the_agent(site):
    text = Path(site.config_path).read_text()
    assert "[[network.targets]]" in text
    assert load_settings(site.config_path).codec.port == site.codec.port


def test_blurred_picture_warns_with_exit_code_1(site, capsys):
    site.camera.set_mode("blurred")
    try:
        code, report = check_json(site, capsys, "camera")
    finally:
        site.camera.set_mode("normal")
    camera = report["results"][0]
    assert camera["status"] == "warn"
    assert "focus" in camera["reason"] or "blur" in camera["reason"]
    assert report["verdict"] == "degraded"
    assert code == 1


def test_table_in_vietnamese(site, capsys):
    code = main(["--config", str(site.config_path), "check", "--local", "--lang", "vi", "ptz"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("Thiết bị")
    assert "ptz" in out and "Đạt" in out
    assert "Đánh giá điểm cầu: SẴN SÀNG" in out


def test_the_site_trusts_the_centre_key_pair_written_beside_it(site):
    """`sim up` then `centre send --key <dir>/sim-centre.key`: the site accepts the command."""
    from agent.centre.keys import load_private_key  # noqa: PLC0415
    from agent.contract.envelope import public_key_b64  # noqa: PLC0415

    [key] = load_settings(site.config_path).commands.keys
    assert key.key_id == site.command_key.stem  # `centre send`'s default --key-id
    private = load_private_key(str(site.command_key))
    assert key.path is not None
    assert key.path.read_text().strip() == public_key_b64(private.public_key())
    assert site.command_key.stat().st_mode & 0o777 == 0o600
