"""`edge-agent check` on a site where every component fails, in Vietnamese and in English.

The real CLI in a new interpreter: camera source missing, microphone device missing, display
connector absent (a sysfs fake: there is no DRM hardware here), codec on a pty that never
answers, PTZ and display power on ports that do not exist, network target a closed port on
127.0.0.1. Under LANG=vi_VN.UTF-8 nothing printed may be English, reasons and hints
included; under LANG=en the same failures read in English.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.checks.model import CheckResult, Status, Verdict
from agent.checks.report import render_table
from agent.sim.sysfs import Connector, add_connector
from tests.test_cli_vietnamese import assert_vietnamese, cli, vi_env

NOW = datetime(2026, 12, 3, 7, 0, tzinfo=UTC)

COMPONENTS = ("camera", "microphone", "display", "codec", "ptz", "network")
# Names a reason shows as they are: the components in the first column and in a profiled
# check's reason ("codec cisco-roomos ở cổng ..."), the connectors of this machine.
NAMES = (
    *(f"\n{c} " for c in COMPONENTS),
    "codec cisco-roomos",
    "ptz sony-visca",
    "card0-HDMI-A-1",
    "HDMI-A-9",
)


@pytest.fixture
def silent_pty() -> Iterator[str]:
    """A pty whose other end is held open and never written: a codec that does not answer."""
    master, slave = os.openpty()
    try:
        yield os.ttyname(slave)
    finally:
        os.close(slave)
        os.close(master)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def failing_site(tmp_path: Path, codec_port: str) -> Path:
    sysfs = tmp_path / "sys"
    add_connector(sysfs, Connector())
    path = tmp_path / "agent.toml"
    path.write_text(
        f"""\
[site]
site_id = "hn-01"
name = "UBND xa"
tier = "commune"
[paths]
state_dir = "{tmp_path}"
sysfs_root = "{sysfs}"
[schedule]
local_file = "{tmp_path / "schedule.toml"}"
[camera]
source = "{tmp_path / "video9"}"
timeout_s = 8
[microphone]
device = "no-such-microphone"
[display]
connector = "HDMI-A-9"
[codec]
port = "{codec_port}"
timeout_s = 5
[ptz]
enabled = true
required = true
port = "{tmp_path / "ttyUSB9"}"
timeout_s = 2
[network]
samples = 2
targets = [{{ name = "centre", host = "127.0.0.1", port = {closed_port()} }}]
"""
    )
    return path


def test_check_with_every_component_failing_speaks_vietnamese(
    tmp_path: Path, silent_pty: str
) -> None:
    done = cli("check", "--config", str(failing_site(tmp_path, silent_pty)))
    assert done.returncode == 2, done.stderr
    out = done.stdout
    for component in COMPONENTS:
        assert f"\n{component} " in out, out
    assert "->" in out  # the hints are printed, and checked
    assert "SỰ CỐ" in out, out
    assert "Traceback" not in done.stderr  # stderr has the log lines, English for engineers
    assert_vietnamese(out, names=(*NAMES, str(tmp_path), silent_pty))


def test_check_with_every_component_failing_in_english(tmp_path: Path, silent_pty: str) -> None:
    done = cli(
        "check", "--config", str(failing_site(tmp_path, silent_pty)), env=vi_env(LANG="en_US.UTF-8")
    )
    assert done.returncode == 2, done.stderr
    out = done.stdout
    assert "site verdict: FAULT" in out, out
    assert "display connector HDMI-A-9: not found" in out
    assert "microphone device 'no-such-microphone': not found; is it plugged in?" in out
    assert "codec cisco-roomos on /dev/pts/" in out and "no answer to 'Echo off' within" in out
    assert "centre_tcp unreachable" in out


@pytest.mark.parametrize("verdict", list(Verdict))
def test_the_table_says_every_status_and_verdict_in_words(verdict: Verdict) -> None:
    results = [
        CheckResult(component="camera", status=status, reason="r", duration_s=0.1, started_at=NOW)
        for status in Status
    ]
    vi = render_table(results, verdict, "vi")
    assert_vietnamese(vi, names=("camera", " r"))
    assert "ĐÁNH GIÁ ĐIỂM CẦU" not in vi and "Đánh giá điểm cầu: " in vi
    en = render_table(results, verdict, "en")
    assert en.splitlines()[0].split() == ["component", "status", "time", "reason"]
    assert [line.split()[1] for line in en.splitlines()[1:6]] == [
        "OK", "WARN", "FAIL", "SKIP", "ERROR"
    ]  # fmt: skip
    assert en.endswith(f"site verdict: {verdict.value.upper()}")
