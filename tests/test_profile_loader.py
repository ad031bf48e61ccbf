"""Loading firmware profiles: every shipped one is valid and cites its guide, and an invalid
one is reported by file, query and field."""

import re
from pathlib import Path

import pytest

from agent.config import PathSettings
from agent.errors import ProfileError
from agent.profiles.loader import list_profiles, load_profile

SHIPPED = PathSettings().profiles_dir
EXPECTED = {
    "cisco-roomos", "poly-group", "poly-hdx", "sony-visca", "samsung-mdc", "lg-rs232",
    "pjlink", "hdmi-cec",
}  # fmt: skip

GOOD = """\
name = "{name}"
vendor = "Acme"
models = ["X1"]
source = "Acme X1 RS-232 guide"

[transport]
kind = "serial"
baud = 9600

[family]
kind = "text_lines"
send_ending = "\\r"

[queries.power]
label = "power"
check = "display"
send = "POWER?"
pattern = '^POWER=(?P<power>ON|OFF)$'
rules = [{ kind = "values", field = "power", ok = ["ON"], fail = ["OFF"] }]
"""


def write(tmp_path: Path, text: str, name: str = "acme") -> Path:
    (tmp_path / f"{name}.toml").write_text(text.replace("{name}", name))
    return tmp_path


def error_for(tmp_path: Path, text: str, name: str = "acme") -> str:
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, text, name), name)
    return info.value.message


def test_every_expected_profile_ships():
    assert set(list_profiles(SHIPPED)) >= EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_shipped_profile_is_valid_and_cites_its_guide(name):
    profile = load_profile(SHIPPED, name)
    header = (SHIPPED / f"{name}.toml").read_text().split("\nname =")[0]
    assert re.search(r"^# Source: ", header, re.MULTILINE), "header comment must cite the guide"
    assert profile.source
    assert profile.health_queries(), "a profile must feed at least one check"


def test_a_valid_new_model_needs_only_a_file(tmp_path):
    profile = load_profile(write(tmp_path, GOOD), "acme")
    assert profile.queries["power"].pattern is not None
    assert list_profiles(tmp_path) == ["acme"]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "pattern = '^POWER=(?P<power>ON|OFF)$'",
            "pattern = '^POWER=(?P<power>ON|OFF$'",
            "query 'power': field 'pattern': not a valid regex: missing ), unterminated",
        ),
        ('label = "power"', 'label = "power"\ncolour = 1', "query 'power': field 'colour': unkno"),
        ('check = "display"\n', "", "query 'power': field 'check': required but missing"),
        ('field = "power"', 'field = "powr"', "query 'power': field 'rules[0].field': 'powr'"),
        ('send = "POWER?"', 'send_hex = "01"', "query 'power': field 'send': required"),
        ('send = "POWER?"', 'send = "P {port}?"', "query 'power': field 'send': bad placeholder"),
        ('baud = 9600', 'baud = "fast"', "field 'transport.baud'"),
        ('kind = "text_lines"', 'kind = "smoke_signals"', "field 'family'"),
        ('check = "display"', 'check = "toaster"', "query 'power': field 'check'"),
    ],
    ids=["bad-regex", "unknown-field", "missing-field", "unknown-rule-field", "family-mismatch",
         "bad-placeholder", "bad-type", "unknown-family", "unknown-check"],
)  # fmt: skip
def test_invalid_profile_names_file_query_and_field(tmp_path, old, new, expected):
    assert old in GOOD
    message = error_for(tmp_path, GOOD.replace(old, new))
    assert message.startswith(f"{tmp_path / 'acme.toml'}: ")
    assert expected in message


def test_binary_family_field_needs_an_offset(tmp_path):
    text = GOOD.replace('kind = "text_lines"\nsend_ending = "\\r"', 'kind = "mdc"')
    text = text.replace('send = "POWER?"', 'send_hex = "11"')
    text = text.replace("pattern = '^POWER=(?P<power>ON|OFF)$'", "fields.power = { length = 1 }")
    message = error_for(tmp_path, text)
    assert "query 'power': field 'fields.power.offset': required for binary families" in message


def test_every_problem_is_listed_not_only_the_first(tmp_path):
    text = GOOD.replace("(?P<power>ON|OFF$", "(").replace("baud = 9600", "baud = -1")
    text = text.replace("pattern = '^POWER=(?P<power>ON|OFF)$'", "pattern = '('")
    message = error_for(tmp_path, text)
    assert "field 'transport.baud'" in message
    assert "query 'power': field 'pattern'" in message


def test_syntax_error_and_name_mismatch_and_missing_profile(tmp_path):
    assert "not valid TOML" in error_for(tmp_path, GOOD + "\n[[[", "broken")
    (tmp_path / "other.toml").write_text(GOOD.replace("{name}", "acme"))
    with pytest.raises(ProfileError, match="does not match the file name"):
        load_profile(tmp_path, "other")
    with pytest.raises(ProfileError, match="no file") as info:
        load_profile(tmp_path, "nope")
    assert "broken, other" in info.value.hint  # lists what exists
