"""A broken firmware profile file, as `edge-agent profiles test` tells a Vietnamese
technician: every problem field by field, with no English sentence (the real CLI, in a new
interpreter, under LANG=vi_VN.UTF-8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.test_cli_vietnamese import ROOT, assert_vietnamese, cli

SHIPPED = ROOT / "firmware_profiles" / "sony-visca.toml"


def _broken(tmp_path: Path, edits: list[tuple[str, str]]) -> Path:
    text = SHIPPED.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new, 1)
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "sony-visca.toml").write_text(text, encoding="utf-8")
    return folder


def _profiles_test(folder: Path) -> str:
    run = cli("profiles", "test", "sony-visca", "--profiles-dir", str(folder),
              "--port", "socket://127.0.0.1:9")  # fmt: skip
    assert run.returncode != 0
    return run.stdout + run.stderr


def test_field_by_field_problems_are_in_vietnamese(tmp_path: Path) -> None:
    folder = _broken(
        tmp_path,
        [
            ("stopbits = 1\n", "stopbits = 3\nspeed = 1\n"),  # a value, an unknown field
            ('send_hex = "09 00 02"', 'send_hex = "09 0G"'),  # not hex, with the input shown
            ("timeout_s = 1.0", "timeout_s = -1"),  # pydantic's own complaint
        ],
    )
    out = _profiles_test(folder)
    for said in (
        "trường 'transport.stopbits': số bit dừng (stop bits) chỉ là 1, 1.5 hoặc 2",
        "trường 'transport.speed': trường chưa rõ",
        "truy vấn 'version': trường 'send_hex': không phải các byte dạng hex",
        "trường 'timeout_s': phải lớn hơn 0",
    ):
        assert said in out, out
    # Paths, field names and the technician's own input are not sentences.
    assert_vietnamese(out, names=("sony-visca", "ptz", "info"))


@pytest.mark.parametrize(
    ("edits", "said"),
    [
        ([("[family]", "[family")], "không đúng cú pháp TOML"),
        ([('kind = "visca"', 'kind = "cec"')], "họ cec chạy một chương trình"),
        # Checked once every field is right: the whole profile's consistency.
        (
            [('{ kind = "info", field = "model" },', '{ kind = "info", field = "modle" },')],
            "truy vấn 'version': trường 'rules[0].field': truy vấn này không đọc 'modle'",
        ),
    ],
)
def test_a_file_that_cannot_be_a_profile_is_said_in_vietnamese(
    tmp_path: Path, edits: list[tuple[str, str]], said: str
) -> None:
    out = _profiles_test(_broken(tmp_path, edits))
    assert said in out, out
    # The profile's own query and field names are the file's words, not sentences.
    assert_vietnamese(out, names=("sony-visca", "model", "power", "vendor"))
