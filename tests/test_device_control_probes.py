"""The codec, PTZ and display-power probes, configured only through Settings, against the
recorded devices on a real pty / TCP / cec-client; and through the concurrent runner."""

import pytest

from agent.checks.model import Status
from agent.config import Settings
from agent.probes.codec import check_codec
from agent.probes.display import check_display
from agent.probes.display_power import query_display_power
from agent.probes.ptz import check_ptz
from agent.selftest.suite import run_selftest

SITE = {"site_id": "t", "name": "t", "tier": "commune"}


def settings(**sections):
    return Settings(site=SITE, **sections)


def test_check_codec(serial_device):
    device = serial_device("cisco-roomos_ce9.15-incall")
    outcome = check_codec(
        settings(codec={"port": device.url, "username": "admin", "password": "secret"})
    )
    assert outcome.status is Status.OK
    assert outcome.reason.startswith(f"codec cisco-roomos on {device.url}: firmware ce9.15")
    assert outcome.metrics["people_count"] == 4
    assert outcome.metrics["camera_connected"] == "connected"


def test_check_codec_poly(serial_device):
    device = serial_device("poly-hdx_3.1")
    cfg = {"profile": "poly-hdx", "port": device.url, "password": "secret"}
    outcome = check_codec(settings(codec=cfg))
    assert outcome.status is Status.OK
    assert outcome.metrics["version"] == "3.1.3"
    assert outcome.metrics["call_state"] == "connected"


def test_check_codec_unknown_profile_is_an_error_not_a_crash():
    outcome = check_codec(settings(codec={"profile": "no-such-codec"}))
    assert outcome.status is Status.ERROR
    assert "no-such-codec" in outcome.reason
    assert "cisco-roomos" in outcome.hint


def test_check_ptz(serial_device):
    device = serial_device("sony-visca_evi-d70")
    outcome = check_ptz(settings(ptz={"enabled": True, "port": device.url}))
    assert outcome.status is Status.OK
    assert outcome.metrics["power"] == "on"
    assert outcome.metrics["model"] == "EVI-D70"


def test_check_ptz_with_a_display_profile_has_nothing_to_ask():
    outcome = check_ptz(settings(ptz={"profile": "samsung-mdc", "port": "/dev/null"}))
    assert outcome.status is Status.ERROR
    assert "no ptz queries" in outcome.reason


@pytest.mark.parametrize(
    ("profile", "recording", "extra"),
    [
        ("samsung-mdc", "samsung-mdc_generic", {}),
        ("lg-rs232", "lg-rs232_generic", {}),
        ("pjlink", "pjlink_class1-auth", {"password": "JBMIAProjectorLink"}),
    ],
)
def test_query_display_power(serial_device, profile, recording, extra):
    device = serial_device(recording)
    cfg = {"profile": profile, "port": device.url, **extra}
    outcome = query_display_power(settings(display=cfg))
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.metrics["state"] == "on"


def test_query_display_power_over_cec(cec_client):
    cec_client("hdmi-cec_libcec6")
    outcome = query_display_power(settings(display={"profile": "hdmi-cec"}))
    assert outcome.status is Status.OK
    assert outcome.metrics["state"] == "on"


def test_display_probe_merges_the_power_state(sysfs, serial_device):
    device = serial_device("samsung-mdc_generic", "error_reply")
    cfg = {"profile": "samsung-mdc", "port": device.url, "timeout_s": 1.0}
    outcome = check_display(settings(paths={"sysfs_root": str(sysfs)}, display=cfg))
    assert outcome.status is Status.FAIL  # the screen is connected but refuses MDC
    assert outcome.metrics["connected"] is True
    assert outcome.metrics["power_reachable"] is True
    assert "NAK" in outcome.reason


def test_selftest_runs_codec_and_ptz_concurrently(serial_device):
    codec = serial_device("cisco-roomos_ce9.15")
    ptz = serial_device("sony-visca_evi-d70", "silent")
    test = run_selftest(
        settings(
            codec={"port": codec.url, "username": "admin", "password": "secret"},
            ptz={"enabled": True, "port": ptz.url, "timeout_s": 0.5},
        ),
        ["codec", "ptz"],
    )
    by = {r.component: r for r in test.results}
    assert by["codec"].status is Status.OK
    assert by["ptz"].status is Status.FAIL
    assert "no answer" in by["ptz"].reason
    assert by["ptz"].duration_s < 0.6
