"""Every shipped firmware profile against its recorded device, through real pyserial on a
pty (TCP for PJLink and MDC over TCP, a real subprocess for cec-client), and every fault
mode: a failed or errored check with a clear reason, within the timeout, never a crash or a
hang."""

import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.checks.model import Outcome, Status
from agent.config import PathSettings, Settings
from agent.probes.profiled import check_with_profile
from agent.profiles.loader import load_profile
from agent.profiles.session import Target
from agent.sim.recording import Fault, load_recording

FAULT_TIMEOUT_S = 0.45  # the probe finishes at 90 % of it
SLACK_S = 0.6  # thread start, process start, CI noise


@dataclass(frozen=True)
class Case:
    profile: str
    recording: str
    check: str
    via: str = "pty"  # pty | tcp | cec
    login: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.recording}-{self.via}"


CASES = [
    Case("cisco-roomos", "cisco-roomos_ce9.15", "codec",
         login={"username": "admin", "password": "secret"}),
    Case("poly-group", "poly-group_6.2", "codec", login={"password": "secret"}),
    Case("poly-hdx", "poly-hdx_3.1", "codec", login={"password": "secret"}),
    Case("sony-visca", "sony-visca_evi-d70", "ptz"),
    Case("samsung-mdc", "samsung-mdc_generic", "display"),
    Case("samsung-mdc", "samsung-mdc_generic", "display", via="tcp"),
    Case("lg-rs232", "lg-rs232_generic", "display"),
    Case("pjlink", "pjlink_class1", "display", via="tcp"),
    Case("pjlink", "pjlink_class1-auth", "display", via="tcp",
         login={"password": "JBMIAProjectorLink"}),
    Case("hdmi-cec", "hdmi-cec_libcec6", "display", via="cec"),
]  # fmt: skip

FAULT_CUES = {
    Fault.SILENT: r"no answer|no PJLink greeting",
    Fault.SLOW: r"no answer|no PJLink greeting|not asked in time",
    Fault.GARBAGE: r"unrecognised|garbage|not an MDC frame|expected a %1POWR|unexpected answer"
    r"|without the expected answer",
    Fault.PARTIAL: r"incomplete|unexpected answer|without the expected answer",
    Fault.BAD_CHECKSUM: r"checksum wrong",
    Fault.ERROR_REPLY: r"answered an error|VISCA error|NAK|answered ERR\d|autodetect FAILED",
    Fault.DISCONNECT: r"connection lost|without the expected answer",
}


def _settings() -> Settings:
    return Settings(site={"site_id": "t", "name": "t", "tier": "commune"})


def run_case(case: Case, port: str | None, timeout_s: float, **login: str) -> Outcome:
    creds = {**case.login, **login}
    return check_with_profile(
        _settings(),
        check=case.check,
        profile_name=case.profile,
        target=Target(port=port, **creds),
        timeout_s=timeout_s,
    )


@pytest.fixture
def start(serial_device, cec_client):
    def start_case(case: Case, fault: Fault | None = None):
        if case.via == "cec":
            cec_client(case.recording, fault)
            return None
        return serial_device(case.recording, fault, tcp=case.via == "tcp")

    return start_case


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_profile_passes_against_its_recorded_device(case, start):
    device = start(case)
    began = time.monotonic()
    outcome = run_case(case, device.url if device else None, timeout_s=3.0)
    assert outcome.status is Status.OK, (outcome.reason, outcome.hint)
    assert outcome.metrics["reachable"] is True
    assert outcome.metrics["profile"] == case.profile
    assert time.monotonic() - began < 2.0


FAULT_CASES = [
    pytest.param(case, fault, id=f"{case.id}-{fault.value}")
    for case in CASES
    for fault in Fault
    if fault is not Fault.BAD_CHECKSUM or load_recording(case.recording).checksum
]


@pytest.mark.parametrize(("case", "fault"), FAULT_CASES)
def test_every_fault_fails_with_a_clear_reason_in_time(case, fault, start):
    device = start(case, fault)
    began = time.monotonic()
    outcome = run_case(case, device.url if device else None, timeout_s=FAULT_TIMEOUT_S)
    elapsed = time.monotonic() - began
    assert outcome.status in (Status.FAIL, Status.ERROR), outcome.reason
    assert re.search(FAULT_CUES[fault], outcome.reason), outcome.reason
    assert outcome.hint, f"no hint for: {outcome.reason}"
    assert elapsed < FAULT_TIMEOUT_S + SLACK_S


# --- the bytes on the wire are the guides' ------------------------------------------------


def test_profiles_send_the_guides_bytes(serial_device):
    expected = {
        "samsung-mdc_generic": ("samsung-mdc", "display", bytes.fromhex("AA 11 01 00 12")),
        "sony-visca_evi-d70": ("sony-visca", "ptz", bytes.fromhex("81 09 04 00 FF")),
        "lg-rs232_generic": ("lg-rs232", "display", b"ka 01 ff"),
    }
    for recording, (profile, check, request) in expected.items():
        device = serial_device(recording)
        outcome = run_case(Case(profile, recording, check), device.url, timeout_s=3.0)
        assert outcome.status is Status.OK
        assert request in device.requests, (recording, device.requests)


def test_cisco_logs_in_then_turns_echo_off(serial_device):
    device = serial_device("cisco-roomos_ce9.15")
    assert run_case(CASES[0], device.url, timeout_s=3.0).status is Status.OK
    assert device.requests[:4] == [b"", b"admin", b"secret", b"Echo off"]
    # A serial session outlives the port: the second check finds it logged in (no prompt).
    assert run_case(CASES[0], device.url, timeout_s=3.0).status is Status.OK
    assert b"admin" not in device.requests[4 + 9 :]


def test_pjlink_prefixes_only_the_first_command_with_the_md5(serial_device):
    device = serial_device("pjlink_class1-auth")
    assert run_case(CASES[8], device.url, timeout_s=3.0).status is Status.OK
    first, *rest = device.requests
    assert first == b"5d8409bc1c3fa39749434aa3a5c38682%1POWR ?"
    assert all(not r.startswith(b"5d84") for r in rest)


def test_visca_profile_holds_dtr_on_a_pty_without_modem_lines(serial_device):
    # A pty answers ENOTTY to DTR; the session must go on (the pass test proves it does).
    assert load_profile(PathSettings().profiles_dir, "sony-visca").transport.dtr is True
    device = serial_device("sony-visca_evi-d70")
    assert run_case(CASES[3], device.url, timeout_s=3.0).status is Status.OK


# --- codec states that answer but are not ready -------------------------------------------


def test_codec_in_a_call_is_reported_not_failed(serial_device):
    device = serial_device("cisco-roomos_ce9.15-incall")
    outcome = run_case(CASES[0], device.url, timeout_s=3.0)
    assert outcome.status is Status.OK
    assert "call Connected" in outcome.reason
    assert outcome.metrics["call_status"] == "Connected"
    assert outcome.metrics["people_count"] == 4


def test_idle_codec_without_people_counting_reports_none(serial_device):
    outcome = run_case(CASES[0], serial_device("cisco-roomos_ce9.15").url, timeout_s=3.0)
    assert outcome.metrics["people_count"] is None
    assert outcome.metrics["sip_registration"] == "Registered"
    assert outcome.metrics["version"] == "ce9.15.3.22"


def test_old_unregistered_muted_codec_fails_with_every_reason(serial_device):
    device = serial_device("cisco-roomos_ce9.10-unregistered")
    outcome = run_case(CASES[0], device.url, timeout_s=3.0)
    assert outcome.status is Status.FAIL
    for part in ("SIP Failed", "below 9.15", "microphones muted"):
        assert part in outcome.reason
    assert "SIP account" in outcome.hint
    assert "9.15 or later" in outcome.hint


# --- login and connection problems ---------------------------------------------------------


def test_wrong_password_is_a_refused_login(serial_device):
    device = serial_device("cisco-roomos_ce9.15")
    outcome = run_case(CASES[0], device.url, timeout_s=3.0, password="wrong")
    assert outcome.status is Status.FAIL
    assert "login refused" in outcome.reason
    assert "password" in outcome.hint


def test_missing_password_is_named(serial_device):
    device = serial_device("poly-group_6.2")
    outcome = run_case(Case("poly-group", "poly-group_6.2", "codec"), device.url, 3.0)
    assert outcome.status is Status.FAIL
    assert "asks for a password but none is set" in outcome.reason


def test_missing_port_is_not_found_with_a_hint():
    outcome = run_case(CASES[3], "/dev/ttyUSB-missing", timeout_s=3.0)
    assert outcome.status is Status.FAIL
    assert "not found" in outcome.reason
    assert "plugged in" in outcome.hint


def test_refused_tcp_port():
    outcome = run_case(CASES[7], "socket://127.0.0.1:1", timeout_s=3.0)
    assert outcome.status is Status.FAIL
    assert "cannot connect" in outcome.reason


def test_mdc_display_that_wants_tls_says_so(serial_device):
    device = serial_device("samsung-mdc_tls")
    outcome = run_case(CASES[5], device.url, timeout_s=3.0)
    assert outcome.status is Status.FAIL
    assert "TLS" in outcome.reason


@pytest.mark.parametrize(
    ("password", "cue"),
    [("wrong", "refused the PJLink password"), (None, "asks for a PJLink password")],
)
def test_pjlink_password_problems(serial_device, password, cue):
    device = serial_device("pjlink_class1-auth")
    case = Case("pjlink", "pjlink_class1-auth", "display", via="tcp")
    login = {"password": password} if password else {}
    outcome = run_case(case, device.url, 3.0, **login)
    assert outcome.status is Status.FAIL
    assert cue in outcome.reason
    assert "display.password" in outcome.hint


def test_a_wrong_profile_fails_against_the_recording(tmp_path, serial_device):
    # The recordings are not generated from the profiles: a profile that reads the version
    # inquiry wrongly fails against the EVI-D70 as transcribed from Sony's manual.
    text = (PathSettings().profiles_dir / "sony-visca.toml").read_text()
    text = text.replace(
        "fields.model = { offset = 2, length = 2", "fields.model = { offset = 7, length = 2"
    )
    (tmp_path / "sony-visca.toml").write_text(text)
    settings = Settings(
        site={"site_id": "t", "name": "t", "tier": "commune"}, paths={"profiles_dir": tmp_path}
    )
    device = serial_device("sony-visca_evi-d70")
    outcome = check_with_profile(
        settings, check="ptz", profile_name="sony-visca", target=Target(device.url), timeout_s=3
    )
    assert outcome.status is Status.FAIL
    assert "too short for field 'model'" in outcome.reason


@pytest.mark.skipif(shutil.which("cec-client") is None, reason="cec-utils not installed")
def test_real_cec_client_without_an_adapter(monkeypatch):
    # The real libCEC: no adapter exists here, so it prints "autodetect FAILED" (~0.5 s).
    monkeypatch.setenv("PATH", str(Path(shutil.which("cec-client")).parent))
    began = time.monotonic()
    outcome = run_case(CASES[9], None, timeout_s=5.0)
    assert outcome.status is Status.FAIL
    assert "autodetect FAILED" in outcome.reason
    assert "adapter" in outcome.hint
    assert time.monotonic() - began < 4.5
