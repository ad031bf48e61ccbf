"""Enough TOML for settings files written by the simulator and the tests (the standard
library reads TOML but does not write it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def dump_toml(data: dict[str, Any]) -> str:
    """Top-level scalars, [sections] of scalars and arrays, and [[section.name]] tables."""
    lines = [f"{k} = {toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for section, body in data.items():
        if not isinstance(body, dict):
            continue
        lines.append(f"\n[{section}]")
        tables = {k: v for k, v in body.items() if _is_table_array(v)}
        lines += [f"{k} = {toml_value(v)}" for k, v in body.items() if k not in tables]
        for name, items in tables.items():
            for item in items:
                lines.append(f"\n[[{section}.{name}]]")
                lines += [f"{k} = {toml_value(v)}" for k, v in item.items()]
    return "\n".join(lines) + "\n"
