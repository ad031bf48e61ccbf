"""The technician's CLI paths under LANG=vi_VN.UTF-8 print no English sentence.

Each case runs the real command in a new interpreter and looks for English words in what
it prints. What counts as English: every ASCII word of our catalogue's English texts and
of argparse's, plus a list of common English words, less the ASCII words the Vietnamese
texts use themselves ("do", "to", "tin"...). Proper names, ids, paths, `code`, '--options'
and 'quoted input' are not words of a sentence and are taken out first.

Out of scope here, and excluded field by field where they appear: the reason and hint of a
probe not yet converted to message ids (camera and network are: theirs are checked).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agent.messages import catalogue
from agent.sim.toml_writer import dump_toml
from tests.faults.test_bad_files import AGENT_CASES, AGENT_OK
from tests.fixtures.broker import Mosquitto, agent_config

ROOT = Path(__file__).resolve().parents[1]
COMMON_ENGLISH = """
a an and are as at be but by can cannot could did does for from has have here in is it its
no none not of on or that the there this to was were will with without you your found
error usage required invalid choice arguments argument options show help message exit
running answers start field missing unknown file config settings valid line column got
"""
# Names and acronyms a Vietnamese sentence uses as they are.
_PROPER = {
    "edge-agent", "systemd", "systemctl", "journalctl", "journal", "stderr", "mqtt", "toml",
    "utf", "pid", "ok", "led", "edid",
}  # fmt: skip
_NOT_WORDS = re.compile(
    r"\{[^{}]*\}"  # a catalogue text's parameter: {command}
    r"|`[^`]*`"  # a command to type
    r"|\(\?P<\w+>"  # a regular expression's group, named in the user's own file
    r"|'[^']*'"  # the user's own input, as repr() quotes it
    r"|\S*/\S*"  # a path, a host:port, a URL
    r"|[\w-]+(?:\.[\w-]+)+"  # a file or setting name: agent.example.toml, broker.host
    r"|(?<!\w)--?[A-Za-z][\w-]*"  # an option
    r"|edge-agent"
    r"|\w*[\d_]\w*"  # ids and numbers: hn-01, by_id, 1883
)
_WORD = re.compile(r"[^\W\d_]+")


def ascii_words(texts: list[str]) -> set[str]:
    words: set[str] = set()
    for text in texts:
        words.update(w.lower() for w in _WORD.findall(_NOT_WORDS.sub(" ", text)) if w.isascii())
    return words


def _argparse_msgids() -> list[str]:
    source = Path(sys.modules["argparse"].__file__ or "").read_text(encoding="utf-8")
    return re.findall(r"""(?:_|ngettext)\(\s*['"]([^'"]+)['"]""", source)


def _vocabularies() -> tuple[set[str], set[str]]:
    """Every entry of the catalogue."""
    entries = catalogue().values()
    en = [e[k] for e in entries for k in ("en", "en_one", "en_plural") if k in e]
    vi = [e["vi"] for e in entries]
    english = ascii_words([*en, *_argparse_msgids(), COMMON_ENGLISH])
    vietnamese = ascii_words(vi)
    return english - vietnamese - _PROPER, vietnamese


ENGLISH, VIETNAMESE = _vocabularies()


def english_words(text: str, names: tuple[str, ...] = ()) -> list[str]:
    """The English words in `text`, once each; `names` are proper names and ids it shows."""
    return words_in(text, ENGLISH, names)


def words_in(text: str, vocabulary: set[str], names: tuple[str, ...] = ()) -> list[str]:
    """The words of `vocabulary` in `text`, once each, after names and non-words go."""
    for name in names:
        text = text.replace(name, " ")
    words = _WORD.findall(_NOT_WORDS.sub(" ", text))
    return list(dict.fromkeys(w for w in words if w.isascii() and w.lower() in vocabulary))


def test_the_detector_finds_english_and_passes_vietnamese() -> None:
    assert english_words("usage: edge-agent [-h] COMMAND ...") == ["usage", "COMMAND"]
    assert english_words("edge-agent: config file /x.toml: not found") == [
        "config",
        "file",
        "not",
        "found",
    ]
    assert english_words("status LED: degraded") == ["status", "degraded"]
    vi = "Phần mềm giám sát chưa chạy; chạy `edge-agent status` (không có ai trả lời ở /run/x)"
    assert english_words(vi) == []
    assert english_words("trường 'camera.sourse' không có (gõ nhầm?)") == []
    assert english_words("  camera  Đạt", names=("camera",)) == []


def vi_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANGUAGE")}
    env.pop("EDGE_AGENT_CONFIG", None)
    return env | {"LANG": "vi_VN.UTF-8"} | extra


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        capture_output=True,
        text=True,
        env=vi_env() if env is None else env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def assert_vietnamese(out: str, names: tuple[str, ...] = ()) -> None:
    assert out.strip(), "nothing printed"
    assert "Traceback" not in out
    assert english_words(out, names) == [], out


def site_config(tmp_path: Path) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(
        f'{AGENT_OK}[paths]\nstate_dir = "{tmp_path}"\n'
        f'[schedule]\nlocal_file = "{tmp_path / "schedule.toml"}"\n'
    )
    return path


def test_status_without_a_settings_file(tmp_path: Path) -> None:
    done = cli("status", "--config", str(tmp_path / "agent.toml"))
    assert done.returncode == 3
    assert_vietnamese(done.stderr)


def test_status_when_the_agent_is_not_running(tmp_path: Path) -> None:
    done = cli("status", "--config", str(site_config(tmp_path)))
    assert done.returncode == 3 and "control.sock" in done.stderr
    assert_vietnamese(done.stderr)


@pytest.mark.parametrize("case", sorted(AGENT_CASES))
def test_config_check_of_a_bad_file(case: str, tmp_path: Path) -> None:
    content = AGENT_CASES[case][0]
    path = tmp_path / "agent.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    done = cli("config", "check", "--config", str(path))
    assert done.returncode == 3 and str(path) in done.stderr
    assert_vietnamese(done.stderr)


def test_config_check_of_a_good_file(tmp_path: Path) -> None:
    done = cli("config", "check", "--config", str(site_config(tmp_path)))
    assert done.returncode == 0
    assert_vietnamese(done.stdout, names=("camera", "microphone", "display", "codec", "network"))


@pytest.mark.parametrize(
    "args",
    [
        ("bogus",),
        (),
        ("status", "extra"),
        ("status", "--lang", "fr"),
        ("logs", "--lines", "many"),
        ("led", "--legend", "--prepare"),
        ("status", "--lang"),
    ],
)
def test_argument_errors(args: tuple[str, ...]) -> None:
    done = cli(*args)
    assert done.returncode == 2
    # what the technician typed comes back as typed: not our English
    typed = tuple(a for a in args[1:] if not a.startswith("-"))
    assert_vietnamese(done.stderr, names=(*(f"edge-agent {a}" for a in args[:1]), *typed))


def test_argument_errors_follow_lang_vi_too() -> None:
    done = cli("status", "--lang", "vi", "extra", env=vi_env(LANG="C.UTF-8"))
    assert done.returncode == 2
    assert_vietnamese(done.stderr, names=("edge-agent status", "extra"))


@pytest.mark.parametrize(
    ("args", "env"),
    [(("devices",), {}), (("devices", "--lang", "vi"), {"LANG": "en_US.UTF-8"})],
)
def test_devices(args: tuple[str, ...], env: dict[str, str]) -> None:
    done = cli(*args, env=vi_env(**env))
    assert done.returncode == 0
    # The devices' own names and descriptions are what the machine says.
    inventory = json.loads(cli("devices", "--json").stdout)
    names = tuple(
        str(v) for items in inventory.values() for item in items for v in item.values() if v
    )
    assert_vietnamese(done.stdout, names)


def test_led_legend_and_logs() -> None:
    legend = cli("led", "--legend")
    assert legend.returncode == 0
    assert_vietnamese(legend.stdout)
    logs = cli("logs")
    assert logs.returncode == 3
    assert_vietnamese(logs.stderr)


def status_of_a_running_agent(
    config: dict[str, Any], tmp_path: Path, ready: Callable[[dict[str, Any]], bool]
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """A real daemon with `config` under LANG=vi: once `status --json` is `ready`, what
    `status` prints, and that snapshot."""
    path = tmp_path / "agent.toml"
    path.write_text(dump_toml(config))
    daemon = subprocess.Popen(
        [sys.executable, "-m", "agent", "run", "--config", str(path)],
        env=vi_env(),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            status = cli("status", "--json", "--config", str(path))
            snap = json.loads(status.stdout) if status.stdout.startswith("{") else {}
            if snap.get("verdict") and ready(snap):
                break
            assert time.monotonic() < deadline, status.stderr
            time.sleep(0.2)
        return cli("status", "--config", str(path)), snap
    finally:
        daemon.terminate()
        daemon.wait(15)


def test_status_of_a_running_agent(broker: Mosquitto, tmp_path: Path) -> None:
    config = agent_config(broker, tmp_path / "state", "hn-01", check_interval_s=3600)
    config["site"]["name"] = "UBND xã Phúc Thọ"
    done, snap = status_of_a_running_agent(config, tmp_path, lambda s: s["link"]["connected"])
    assert done.returncode == 0
    text = done.stdout
    assert [r["component"] for r in snap["results"]] == ["network"]
    assert "thời gian phản hồi" in text
    assert "Đánh giá: SẴN SÀNG" in text and "Đèn trạng thái: Sẵn sàng" in text
    assert_vietnamese(text, names=("UBND", "network", "Asia/Ho_Chi_Minh", "UTC"))


# Commands whose help others convert (config, check): their lines
# in the top-level help are left out here, and their own -h is not run (the centre's and
# attendance's are in tests/test_centre_vietnamese.py).
_NOT_HERE = ("check", "config")
_SUB_COMMAND = re.compile(r"^    ([a-z]+)(?=\s{2,}|$)")


@pytest.mark.parametrize(
    "command",
    [
        (),
        ("status",),
        ("logs",),
        ("led",),
        ("devices",),
        ("run",),
        ("profiles",),
        ("profiles", "list"),
        ("profiles", "show"),
        ("profiles", "test"),
        ("sim",),
        ("sim", "up"),
        ("sim", "demo"),
    ],
)
def test_help_of_each_site_command(command: tuple[str, ...]) -> None:
    done = cli(*command, "-h")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # Others' commands, in the list of commands.
    lines = [
        line for line in lines if not ((m := _SUB_COMMAND.match(line)) and m.group(1) in _NOT_HERE)
    ]
    # The sub-commands' names in that list are what one types, not words of a sentence.
    text = "\n".join(_SUB_COMMAND.sub(" ", line) for line in lines)
    assert_vietnamese(text, names=("edge-agent " + " ".join(command), "{en,vi}"))
