"""JSON Schema of every payload, from the pydantic models.

`python -m agent.contract.schemas` rewrites `schemas/*.json`; `--check` exits 1 when the
checked-in files differ from the models (the test suite does the same).

The files are for readers: unknown properties are allowed (`additionalProperties: true`,
where the models, used by the writer, refuse them) and fields added within the version are
not required (docs/mqtt.md, "Evolving the contract").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agent.contract.payloads import PAYLOADS, SCHEMA_PREFIX, _Model

SCHEMA_DIR = Path(__file__).resolve().parent.parent.parent / "schemas"
_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _open(node: Any) -> None:
    """Every closed object (`additionalProperties: false`) opened, in place."""
    if isinstance(node, dict):
        if node.get("additionalProperties") is False:
            node["additionalProperties"] = True
        for value in node.values():
            _open(value)
    elif isinstance(node, list):
        for value in node:
            _open(value)


def _added_fields() -> dict[str, tuple[str, ...]]:
    """Each payload model's name -> its fields added within the version (nested ones too)."""
    out: dict[str, tuple[str, ...]] = {}
    todo: list[type[_Model]] = [_Model]
    while todo:
        cls = todo.pop()
        out[cls.__name__] = cls.added_fields
        todo += cls.__subclasses__()
    return out


def _not_required(node: dict[str, Any], added: tuple[str, ...]) -> None:
    if "required" in node:
        node["required"] = [n for n in node["required"] if n not in added]


def schema_of(kind: str) -> dict[str, Any]:
    model = PAYLOADS[kind]
    body = model.model_json_schema(by_alias=True, mode="serialization")
    _open(body)
    _not_required(body, model.added_fields)
    added = _added_fields()
    for name, sub in body.get("$defs", {}).items():
        _not_required(sub, added.get(name, ()))
    return {"$schema": _DIALECT, "$id": f"{SCHEMA_PREFIX}/{kind}/1", **body}


def render(kind: str) -> str:
    return json.dumps(schema_of(kind), indent=2, ensure_ascii=False) + "\n"


def expected_files() -> dict[str, str]:
    return {f"{kind}.json": render(kind) for kind in PAYLOADS}


def stale_files(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that are missing, different, or no longer generated."""
    expected = expected_files()
    stale = [
        name
        for name, text in expected.items()
        if not (directory / name).is_file() or (directory / name).read_text() != text
    ]
    extra = [p.name for p in directory.glob("*.json") if p.name not in expected]
    return sorted(stale + extra)


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in expected_files().items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.contract.schemas")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if stale")
    parser.add_argument("--out", type=Path, default=SCHEMA_DIR)
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out)
        for name in stale:
            sys.stdout.write(f"stale: {args.out / name}\n")
        return 1 if stale else 0
    for path in write_all(args.out):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
