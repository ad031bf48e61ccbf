"""Fuzz: the firmware profile loader, from TOML text to the profile model.

Every case is written to `<name>.toml` and read by agent.profiles.loader.parse_profile, the
path `edge-agent profiles test` and every profiled probe take. Inputs: the shipped profiles
with byte edits, the shipped profiles as data with one value swapped for a hostile one (wrong
types, huge numbers, deep nesting, unicode, NULs, bad regexes) or a key removed or added,
written back as TOML; raw bytes; arbitrary TOML documents. Only ProfileError may come out.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from agent.errors import ProfileError
from agent.profiles.loader import parse_profile
from agent.profiles.model import Profile
from tests.faults.fuzzkit import (
    CASES,
    SCALARS,
    Tally,
    mutated,
    replaced,
    run_fuzz,
    toml_document,
)

PROFILES_DIR = Path(__file__).resolve().parents[2] / "firmware_profiles"
SOURCES = {p.stem: p.read_bytes() for p in sorted(PROFILES_DIR.glob("*.toml"))}
DATA = {name: tomllib.loads(text.decode()) for name, text in SOURCES.items()}
NAMES = st.sampled_from(sorted(SOURCES))
SOURCE_BYTES = {name: mutated(st.just(text)) for name, text in SOURCES.items()}
SOURCE_DATA = {name: replaced(st.just(doc)) for name, doc in DATA.items()}
KINDS = st.sampled_from(["bytes", "data", "nasty", "raw", "toml", "deep"])
FIELDS = st.sampled_from(["pattern", "until", "send", "send_hex", "label"])
DEPTHS = st.sampled_from([100, 3000, 20_000])
RAW = st.binary(max_size=300)
DOCS = st.dictionaries(st.text(max_size=8), SCALARS | st.lists(SCALARS, max_size=3), max_size=4)
INDEX = st.integers(0, 1000)
# Strings a profile's regex and hex fields must survive.
NASTY_VALUES = st.sampled_from(
    ["(", "(?P<x>", "[z-a]", "a{99999999999}", "(" * 5000 + ")" * 5000, "zz", "0x", "\\", "%s"]
)


def _as_toml(doc: Any) -> str:
    if not isinstance(doc, dict):
        doc = {"value": doc}
    try:
        return toml_document(doc)
    except RecursionError:
        return 'name = "x"\nvalue = ' + "[" * 100_000 + "]" * 100_000 + "\n"


@st.composite
def text_cases(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(NAMES)
    kind = draw(KINDS)
    if kind == "bytes":
        return name, draw(SOURCE_BYTES[name])
    if kind == "data":
        return name, _as_toml(draw(SOURCE_DATA[name])).encode("utf-8", "surrogatepass")
    if kind == "nasty":
        # A regex or hex field of one query replaced by a hostile string.
        doc = tomllib.loads(SOURCES[name].decode())
        queries = sorted(doc["queries"])
        query = queries[draw(INDEX) % len(queries)]
        field = draw(FIELDS)
        doc["queries"][query][field] = draw(NASTY_VALUES)
        return name, _as_toml(doc).encode()
    if kind == "raw":
        return name, draw(RAW)
    if kind == "deep":
        depth = draw(DEPTHS)
        return name, f'name = "{name}"\nx = {"[" * depth}{"]" * depth}\n'.encode()
    doc = draw(DOCS)
    return name, _as_toml(doc).encode("utf-8", "surrogatepass")


def test_profile_loader_never_crashes(tmp_path: Path) -> None:
    tally = Tally()

    def case(named: tuple[str, bytes]) -> None:
        name, data = named
        path = tmp_path / f"{name}.toml"
        path.write_bytes(data)
        try:
            profile = parse_profile(path)
        except ProfileError as exc:
            assert str(path) in exc.message, f"the error must name the file: {exc.message}"
            assert exc.hint
            what = "toml" if "not valid TOML" in exc.message else "field"
            tally.add(f"refused:{what}")
            return
        assert isinstance(profile, Profile)
        assert profile.name == name
        tally.add("loaded")

    run_fuzz(text_cases(), case)
    tally.report("profiles")
    assert tally.total >= CASES
    assert tally.counts["loaded"] > 0
    assert tally.counts["refused:toml"] > 0
    assert tally.counts["refused:field"] > 0
