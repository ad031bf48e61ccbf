"""Shared pieces of the fuzz targets: deterministic settings, hostile JSON values, byte
mutations of valid inputs, an inline-table TOML writer, and the outcome tally.

Every target runs 10,000 derandomized cases with no example database, so a run is repeatable
and leaves no .hypothesis directory behind.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CASES = 10_000
HYPOTHESIS_HOME = Path(tempfile.gettempdir()) / "edge-agent-hypothesis"
FUZZ = settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)

# Values that break naive code: huge and tiny numbers, NaN, control characters, NULs,
# lone surrogates (not encodable as UTF-8), right-to-left and combining marks, long text.
HOSTILE_TEXT = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "a\x00b",
        "\ud800",
        "\u202e\u0301",
        "ü" * 3,
        "🎥",
        "\r\n",
        "$(reboot)",
        "../../etc/passwd",
        "%s%n",
        "x" * 70,
    ]
) | st.just(70_000).map(lambda n: "x" * n)
HOSTILE_NUMBERS = st.sampled_from(
    [0, -1, 1, 2**31, 2**63, 2**64, -(2**63) - 1, 10**400, 1e308, -1e308, 1e-320, 0.5]
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HOSTILE_NUMBERS,
    st.floats(allow_nan=False),
    st.text(max_size=20),
    HOSTILE_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def deep(depth: int, kind: str = "list") -> Any:
    """A value nested `depth` times (a list of lists..., or a dict of dicts...)."""
    value: Any = 0
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


DEEP = st.builds(deep, st.sampled_from([50, 500, 5000]), st.sampled_from(["list", "dict"]))
# As text: deeper than the JSON parser's recursion limit, without building the object.
DEEP_JSON = st.sampled_from([("[", 100_000, ""), ('{"a":', 100_000, ""), ("[", 3000, "]")]).map(
    lambda spec: spec[0] * spec[1] + spec[2] * spec[1]
)


_HOSTILE = st.one_of(JSON_VALUES, DEEP)


def dumps(value: Any) -> bytes:
    """JSON bytes of a value that may hold NaN, big ints, lone surrogates and deep nesting."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (RecursionError, ValueError):
        text = "null"
    return text.encode("utf-8", "surrogatepass")


# Strategies built once: making new ones inside a draw costs more than the case itself.
_INDEX = st.integers(0, 2**20)
_EDITS = st.integers(1, 4)
_OPS = st.sampled_from(["flip", "insert", "delete", "truncate", "dup", "byte"])
_BIT = st.integers(0, 7)
_SPAN = st.integers(1, 16)
_BYTES = st.sampled_from([0, 0x22, 0x5C, 0x7B, 0x7D, 0x5B, 0x80, 0xFF])
_INSERTS = st.sampled_from([b"\x00", b'"', b"\\", b"{", b"]", b",", b"\xff", b"9" * 30])


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[bytes]) -> bytes:
    """A valid input with a few byte-level edits: flips, inserts, deletes, cuts, splices."""
    data = bytearray(draw(seeds))
    for _ in range(draw(_EDITS)):
        op = draw(_OPS)
        pos = draw(_INDEX) % max(1, len(data))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(_BIT)
        elif op == "byte" and data:
            data[pos] = draw(_BYTES)
        elif op == "insert":
            data[pos:pos] = draw(_INSERTS)
        elif op == "delete" and data:
            del data[pos : pos + draw(_SPAN) // 2 + 1]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(_SPAN)]
    return bytes(data)


_REPLACE_OPS = st.sampled_from(["replace", "replace", "remove", "add"])
_KEYS = st.text(max_size=10)


@st.composite
def replaced(draw: st.DrawFn, seeds: st.SearchStrategy[dict[str, Any]]) -> Any:
    """A valid JSON object with one value (at any depth) swapped for a hostile one, or one
    key removed or added: wrong types, huge numbers, deep nesting, unicode, NULs."""
    doc = json.loads(json.dumps(draw(seeds)))
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, [*path, i])

    walk(doc, [])
    candidates = paths[1:] or paths
    path = candidates[draw(_INDEX) % len(candidates)]
    op = draw(_REPLACE_OPS)
    parent: Any = doc
    for part in path[:-1]:
        parent = parent[part]
    if not path:
        return draw(_HOSTILE)
    key = path[-1]
    if op == "remove" and isinstance(parent, dict):
        del parent[key]
    elif op == "add" and isinstance(parent, dict):
        parent[draw(_KEYS)] = draw(JSON_VALUES)
    else:
        parent[key] = draw(_HOSTILE)
    return doc


def replaced_json(seeds: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[bytes]:
    return replaced(seeds).map(dumps)


def toml_key(key: str) -> str:
    return json.dumps(key)


def toml_value(value: Any) -> str:
    """TOML for any JSON-like value, nested through inline tables and arrays. JSON's string
    escapes are TOML's basic-string escapes; a lone surrogate makes invalid TOML (also a case)."""
    if value is None:
        return '""'  # TOML has no null
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(type(value))


def toml_document(data: dict[str, Any]) -> str:
    return "\n".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in data.items()) + "\n"


class Tally:
    """Outcome counts of a fuzz target, and its wall time."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.started = time.monotonic()

    def add(self, outcome: str) -> None:
        self.counts[outcome] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def report(self, name: str) -> str:
        took = time.monotonic() - self.started
        body = json.dumps(dict(sorted(self.counts.items(), key=lambda kv: -kv[1])))
        line = f"\n[fuzz {name}] {self.total} cases in {took:.1f} s: {body}"
        print(line)
        return line


def run_fuzz(strategy: st.SearchStrategy[Any], case: Callable[[Any], None]) -> None:
    """Run `case` on CASES derandomized examples of `strategy`."""
    from hypothesis import given  # noqa: PLC0415
    from hypothesis.configuration import set_hypothesis_home_dir  # noqa: PLC0415

    @FUZZ
    @given(strategy)
    def target(value: Any) -> None:
        case(value)

    # Hypothesis caches source constants under ./.hypothesis even with database=None: keep
    # that cache outside the tree (and kept between runs: rebuilding it costs seconds).
    set_hypothesis_home_dir(HYPOTHESIS_HOME)
    try:
        target()
    finally:
        set_hypothesis_home_dir(None)


@st.composite
def big_numbers(draw: st.DrawFn, seeds: st.SearchStrategy[dict[str, Any]]) -> bytes:
    """A valid JSON object with one of its numbers (at any depth) made huge, negative or
    fractional: the edges of int64, of float, and of every `ge=0`."""
    doc = json.loads(json.dumps(draw(seeds)))
    slots: list[tuple[Any, Any]] = []

    def walk(node: Any) -> None:
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            if isinstance(v, int | float) and not isinstance(v, bool):
                slots.append((node, k))
            elif isinstance(v, dict | list):
                walk(v)

    walk(doc)
    if slots:
        node, key = slots[draw(_INDEX) % len(slots)]
        node[key] = draw(HOSTILE_NUMBERS)
    return dumps(doc)
