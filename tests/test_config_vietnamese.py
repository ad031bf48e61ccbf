"""`edge-agent config check` and `check`'s help under LANG=vi_VN.UTF-8: no English sentence.

The real command in a new interpreter, as a technician runs it, on each kind of bad schedule
file, on settings our own validators refuse, and on a good file (with LANG=C for the English,
whose meaning must not change). The detector is tests/test_cli_vietnamese.py's.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.components import COMPONENTS
from agent.config import Settings
from tests.faults.test_bad_files import AGENT_OK, GARBAGE, SCHEDULE_CASES, SCHEDULE_OK, write
from tests.test_cli_vietnamese import assert_vietnamese, cli, vi_env

# The schedule files `config check` reads besides the settings: every kind of mistake.
SCHEDULE_FILES: dict[str, str | bytes] = {
    **{case: content for case, (content, _) in SCHEDULE_CASES.items()},
    "binary": GARBAGE,
    "nested_too_deep": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "no_offset_field": SCHEDULE_OK.replace("2025-03-10T08:00:00", '"soon"'),
}
# Settings our own validators refuse (not pydantic's type checks).
REFUSED = {
    "tls_pair": "[broker]\ntls_ca = '/x/ca.pem'\ntls_cert = '/x/c.pem'\n",
    "key_source": "[[commands.keys]]\nkey_id = 'k1'\n",
    "lead_times": "[schedule]\nlead_minutes = [15, 15]\n",
    "region": "[attendance]\nexclude = [{ rect = [0.5, 0.5, 0.2, 0.9] }]\n",
}


def _config_check(
    tmp_path: Path, settings: str = AGENT_OK, schedule: str | bytes | None = None, **env: str
) -> tuple[int, str, str]:
    local = tmp_path / "schedule.toml"
    if schedule is not None:
        write(local, schedule)
    path = write(tmp_path / "agent.toml", f"{settings}\n[schedule]\nlocal_file = '{local}'\n")
    if "[schedule]" in settings:  # the case sets [schedule] itself
        path = write(tmp_path / "agent.toml", settings)
    done = cli("config", "check", "--config", str(path), env=vi_env(**env))
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("case", sorted(SCHEDULE_FILES))
def test_config_check_of_a_bad_schedule_file(case: str, tmp_path: Path) -> None:
    code, _, err = _config_check(tmp_path, schedule=SCHEDULE_FILES[case])
    assert code == 3 and str(tmp_path / "schedule.toml") in err
    assert "tệp lịch họp" in err
    assert_vietnamese(err)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_config_check_of_settings_our_validators_refuse(case: str, tmp_path: Path) -> None:
    code, _, err = _config_check(tmp_path, AGENT_OK + REFUSED[case])
    assert code == 3 and "tệp cấu hình" in err
    assert_vietnamese(err)


def test_an_unknown_environment_variable(tmp_path: Path) -> None:
    code, _, err = _config_check(tmp_path, EDGE_AGENT_BROKR__HOST="x")
    assert code == 3 and "EDGE_AGENT_BROKR__HOST" in err
    # The sections and fields it lists are the settings' own names.
    assert_vietnamese(err, names=("EDGE_AGENT_BROKR__HOST", *Settings.model_fields))


def test_a_good_file_with_one_session_in_both_languages(tmp_path: Path) -> None:
    code, out, _ = _config_check(tmp_path, schedule=SCHEDULE_OK)
    assert code == 0
    assert "1 phiên họp" in out and "điểm cầu hn-01 (xã)" in out
    assert_vietnamese(out, names=("camera", "microphone", "display", "codec", "network"))
    code, out, _ = _config_check(tmp_path, schedule=SCHEDULE_OK, LANG="C")
    assert code == 0
    assert "OK - site hn-01 (commune), broker 127.0.0.1:1883" in out
    assert out.endswith(f"{tmp_path / 'schedule.toml'}: OK - 1 session\n")


@pytest.mark.parametrize("args", [("check", "-h"), ("config", "-h"), ("config", "check", "-h")])
def test_help(args: tuple[str, ...]) -> None:
    done = cli(*args)
    assert done.returncode == 0
    # --config's help is the top-level parser's, converted with it.
    text = done.stdout.split("\n  --config")[0]
    assert_vietnamese(text, names=("edge-agent config", "check", *COMPONENTS))  # names
