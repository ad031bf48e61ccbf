"""Settings, schedule and profile files with every kind of mistake: each gives one clear
error naming the file and the field (asserted on the text), and the CLI exits 3.

Files: agent.toml (`edge-agent config check`), centre.toml (`edge-agent centre status`, the
first thing it does is load them), firmware profiles (`edge-agent profiles show`) and the
local schedule file (agent.schedule.store.read_local_schedule, and `edge-agent config
check`, which reads it too). Tests run as root, so chmod 000 does not make a file unreadable:
a directory in its place does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.cli import main
from agent.errors import AgentError
from agent.schedule.store import read_local_schedule

ROOT = Path(__file__).resolve().parents[2]
GARBAGE = b"\x00\xff\xfe\x80\x13\x37 not toml \xc3\x28"

AGENT_OK = """\
[site]
site_id = "hn-01"
name = "UBND xa"
tier = "commune"
"""

# name -> (file text, words the error must contain besides the file's path)
AGENT_CASES: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "wrong_type": (AGENT_OK + '[broker]\nport = "eighteen"\n', ("'broker.port'", "'eighteen'")),
    "unknown_field": (AGENT_OK + "[camera]\nsourse = '/dev/video0'\n",
                      ("unknown field 'camera.sourse'",)),
    "missing_required": ('[site]\nsite_id = "hn-01"\ntier = "commune"\n',
                         ("field 'site.name' is required",)),
    "out_of_range": (AGENT_OK + "[camera]\ntimeout_s = 500\n",
                     ("'camera.timeout_s'", "less than or equal to 120", "500")),
    "bad_syntax": (AGENT_OK + "[broker\nport = 1\n", ("not valid TOML", "line 5")),
    "wrong_enum": (AGENT_OK.replace('"commune"', '"village"'),
                   ("'site.tier'", "'province', 'district' or 'commune'", "'village'")),
    "duplicate_key": (AGENT_OK + "[broker]\nport = 1883\nport = 1884\n",
                      ("not valid TOML", "line 7")),
    "empty": ("", ("field 'site' is required but missing",)),
    "binary": (GARBAGE, ("not valid TOML", "not UTF-8")),
    "nested_too_deep": ("x = " + "[" * 5000 + "]" * 5000 + "\n", ("nested too deeply",)),
    # the daemon crashed binding its control socket there (AF_UNIX path too long)
    "state_dir_too_long": (AGENT_OK + f'[paths]\nstate_dir = "/var/lib/{"x" * 100}"\n',
                           ("'paths.state_dir'", "choose a shorter paths.state_dir")),
}  # fmt: skip

CENTRE_CASES: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "wrong_type": ('report_interval_s = "often"\n', ("'report_interval_s'", "'often'")),
    "unknown_field": ("silent_afer = 3\n", ("unknown field 'silent_afer'",)),
    "missing_required": ("[broker]\ntls_ca = '/x/ca.pem'\ntls_cert = '/x/c.pem'\n",
                         ("'broker'", "tls_cert and tls_key must be given together")),
    "out_of_range": ("silent_after = 0.5\n", ("'silent_after'", "greater than or equal to 1")),
    "bad_syntax": ("history_days = 90\nshare_group = \"centre\n", ("not valid TOML", "line 2")),
    "wrong_enum": ("[broker]\nprotocol = \"4\"\n", ("'broker.protocol'", "'5' or '3.1.1'")),
    "duplicate_key": ("history_days = 90\nhistory_days = 30\n", ("not valid TOML", "line 2")),
    "binary": (GARBAGE, ("not valid TOML", "not UTF-8")),
}  # fmt: skip

PROFILE = (ROOT / "firmware_profiles" / "sony-visca.toml").read_text()
HUGE_REPEAT = 'pattern = "a{9999999999}"'  # OverflowError in re, not re.error
PROFILE_CASES: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "wrong_type": (PROFILE.replace("timeout_s = 1.0", 'timeout_s = "fast"'),
                   ("field 'timeout_s'", "'fast'")),
    "unknown_field": (PROFILE.replace('label = "power"', 'label = "power"\nlable = "x"'),
                      ("query 'power': field 'lable': unknown field",)),
    "missing_required": (PROFILE.replace('vendor = "Sony"\n', ""),
                         ("field 'vendor': required but missing",)),
    "out_of_range": (PROFILE.replace("baud = 9600", "baud = 0"),
                     ("field 'transport.baud'", "greater than 0")),
    "bad_syntax": (PROFILE.replace("[transport]", "[transport"), ("not valid TOML", "line 21")),
    "wrong_enum": (PROFILE.replace('parity = "N"', 'parity = "X"'),
                   ("field 'transport.parity'", "'X'")),
    "duplicate_key": (PROFILE.replace("baud = 9600", "baud = 9600\nbaud = 38400"),
                      ("not valid TOML", "line 24")),
    "empty": ("", ("field 'name': required but missing", "field 'queries': required")),
    "binary": (GARBAGE, ("not valid TOML",)),
    "bad_regex": (PROFILE.replace('label = "version"', 'label = "version"\n' + HUGE_REPEAT),
                  ("query 'version': field 'pattern'", "regex")),
    "wrong_name": (PROFILE.replace('name = "sony-visca"', 'name = "sony"'),
                   ("field 'name': 'sony' does not match the file name",)),
}  # fmt: skip

SCHEDULE_OK = """\
schema_version = "1"

[[entries]]
session_id = "hdnd-1"
start = 2025-03-10T08:00:00
end = 2025-03-10T11:30:00
"""
SCHEDULE_CASES: dict[str, tuple[str | bytes, tuple[str, ...]]] = {
    "wrong_type": (SCHEDULE_OK + 'expected_attendance = "many"\n',
                   ("entries.0.expected_attendance", "valid integer")),
    "unknown_field": (SCHEDULE_OK + 'titel = "x"\n', ("entries.0.titel", "unknown field")),
    "missing_required": (SCHEDULE_OK.replace("end = 2025-03-10T11:30:00\n", ""),
                         ("entries.0.end", "required but missing")),
    "out_of_range": (SCHEDULE_OK.replace("11:30", "07:30"), ("end must be after start",)),
    "bad_syntax": (SCHEDULE_OK.replace("[[entries]]", "[[entries]"), ("not valid TOML", "line 3")),
    "wrong_enum": (SCHEDULE_OK.replace('"1"', '"2"'), ("schema_version", "'2'")),
    "duplicate_key": (SCHEDULE_OK + 'session_id = "x"\n', ("not valid TOML", "line 7")),
    "duplicate_session": (SCHEDULE_OK + SCHEDULE_OK.split("\n", 2)[2],
                          ("session_id 'hdnd-1' appears twice",)),
}  # fmt: skip


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def assert_names(text: str, path: Path, words: tuple[str, ...]) -> None:
    assert str(path) in text, f"the error must name {path}: {text}"
    for word in words:
        assert word in text, f"{word!r} missing from: {text}"
    assert "Traceback" not in text


@pytest.mark.parametrize("case", sorted(AGENT_CASES))
def test_agent_settings_file_mistakes(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, words = AGENT_CASES[case]
    path = write(tmp_path / "agent.toml", content)
    code, text = run_cli(["--config", str(path), "config", "check"], capsys)
    print(f"\n[bad agent.toml: {case}] exit {code}: {text.strip()}")
    assert code == 3
    assert text.startswith("edge-agent: config file ")
    assert_names(text, path, words)


@pytest.mark.parametrize("case", sorted(CENTRE_CASES))
def test_centre_settings_file_mistakes(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, words = CENTRE_CASES[case]
    path = write(tmp_path / "centre.toml", content)
    code, text = run_cli(["centre", "status", "--config", str(path)], capsys)
    print(f"\n[bad centre.toml: {case}] exit {code}: {text.strip()}")
    assert code == 3
    assert_names(text, path, words)


@pytest.mark.parametrize("case", sorted(PROFILE_CASES))
def test_firmware_profile_mistakes(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    content, words = PROFILE_CASES[case]
    path = write(tmp_path / "profiles" / "sony-visca.toml", content)
    argv = ["profiles", "show", "sony-visca", "--profiles-dir", str(path.parent)]
    code, text = run_cli(argv, capsys)
    print(f"\n[bad profile: {case}] exit {code}: {text.strip()[:300]}")
    assert code == 3
    assert_names(text, path, words)


@pytest.mark.parametrize("case", sorted(SCHEDULE_CASES))
def test_schedule_file_mistakes(case: str, tmp_path: Path) -> None:
    content, words = SCHEDULE_CASES[case]
    path = write(tmp_path / "schedule.toml", content)
    with pytest.raises(AgentError) as err:
        read_local_schedule(path, ZoneInfo("Asia/Ho_Chi_Minh"))
    text = str(err.value)
    print(f"\n[bad schedule: {case}] {text}")
    assert_names(text, path, words)
    assert err.value.hint


def test_unreadable_files_are_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Root reads any mode, so a directory stands where each file should be."""
    agent = tmp_path / "agent.toml"
    agent.mkdir()
    code, text = run_cli(["--config", str(agent), "config", "check"], capsys)
    assert code == 3
    assert_names(text, agent, ("is a directory",))

    centre = tmp_path / "centre.toml"
    centre.mkdir()
    code, text = run_cli(["centre", "status", "--config", str(centre)], capsys)
    assert code == 3
    assert_names(text, centre, ("is a directory",))

    profile = tmp_path / "profiles" / "sony-visca.toml"
    profile.mkdir(parents=True)
    argv = ["profiles", "show", "sony-visca", "--profiles-dir", str(profile.parent)]
    code, text = run_cli(argv, capsys)
    assert code == 3
    assert_names(text, profile, ("no file",))

    schedule = tmp_path / "schedule.toml"
    schedule.mkdir()
    with pytest.raises(AgentError) as err:
        read_local_schedule(schedule, ZoneInfo("UTC"))
    assert_names(str(err.value), schedule, ("cannot read", "Is a directory"))


def test_exit_code_of_the_real_command(tmp_path: Path) -> None:
    """The installed entry point (a new interpreter), not only main(): exit 3, one line."""
    path = write(tmp_path / "agent.toml", AGENT_CASES["wrong_enum"][0])
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(path), "config", "check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"edge-agent: config file {path}: field 'site.tier'")
    assert "Traceback" not in proc.stderr


def test_binary_schedule_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "schedule.toml", GARBAGE)
    with pytest.raises(AgentError):
        read_local_schedule(path, ZoneInfo("UTC"))


def test_deeply_nested_schedule_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "schedule.toml", "x = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(AgentError):
        read_local_schedule(path, ZoneInfo("UTC"))


def test_config_check_refuses_a_bad_schedule_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    schedule = write(tmp_path / "schedule.toml", SCHEDULE_CASES["missing_required"][0])
    agent = write(tmp_path / "agent.toml", AGENT_OK + f"[schedule]\nlocal_file = '{schedule}'\n")
    code, text = run_cli(["--config", str(agent), "config", "check"], capsys)
    assert code == 3
    assert_names(text, schedule, ("entries.0.end",))
