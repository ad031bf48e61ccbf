"""Find, read and validate firmware profiles. Every error names the file, the query and the
field, so whoever edits a profile can fix it without reading our code."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agent.errors import ProfileError
from agent.messages import Param, message
from agent.profiles.model import Profile
from agent.validation import pydantic_problem, toml_problem

# Discriminator tags pydantic puts into error locations; they are not fields the author wrote.
_TAGS = {
    "text_lines", "visca", "mdc", "pjlink", "cec",
    "serial", "tcp", "process",
    "values", "min_version", "number", "info",
}  # fmt: skip


def list_profiles(profiles_dir: Path) -> list[str]:
    """Names of the profiles in the directory (file stems), sorted."""
    if not profiles_dir.is_dir():
        return []
    return sorted(p.stem for p in profiles_dir.glob("*.toml"))


def profile_path(profiles_dir: Path, name: str) -> Path:
    return profiles_dir / f"{name}.toml"


def load_profile(profiles_dir: Path, name: str) -> Profile:
    """Load and validate one profile; raise ProfileError naming file, query and field."""
    path = profile_path(profiles_dir, name)
    if "/" in name or not path.is_file():
        known = ", ".join(list_profiles(profiles_dir)) or message("profile.hint.none")
        raise ProfileError(
            message("profile.no_file", name=name, path=str(path)),
            message("profile.hint.profile_name", folder=str(profiles_dir), known=known),
        )
    return parse_profile(path)


def parse_profile(path: Path) -> Profile:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(
            message("profile.cannot_read", path=str(path), error=exc.strerror or str(exc)),
            message("profile.hint.check_file"),
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(
            message("profile.bad_toml", path=str(path), error=toml_problem(exc)),
            message("profile.hint.fix_syntax"),
        ) from None
    except UnicodeDecodeError as exc:
        raise ProfileError(
            message("profile.bad_toml", path=str(path), error=str(exc)),
            message("profile.hint.fix_syntax"),
        ) from None
    except RecursionError:
        # tomllib recurses per nesting level: a few thousand brackets exhaust the stack.
        raise ProfileError(
            message("profile.too_deep", path=str(path)), message("profile.hint.brackets")
        ) from None
    return validate_profile(data, path)


def validate_profile(data: dict[str, Any], path: Path) -> Profile:
    try:
        profile = Profile.model_validate(data)
    except ValidationError as exc:
        lines = [
            message("profile.problem.at", path=str(path), text=_describe(dict(e)))
            for e in exc.errors()
        ]
        raise ProfileError(
            message("profile.invalid", lines=lines), message("profile.hint.fix_fields")
        ) from None
    if profile.name != path.stem:
        raise ProfileError(
            message("profile.name_mismatch", path=str(path), name=profile.name),
            message("profile.hint.rename", name=profile.name, stem=path.stem),
        )
    return profile


def _describe(error: dict[str, Any]) -> Param:
    """One pydantic complaint about a profile, in the words of agent/validation.py (the
    settings file's), placed by query and field."""
    loc = [p for p in error["loc"] if not (isinstance(p, str) and p in _TAGS)]
    kind = error["type"]
    query = None
    if len(loc) >= 2 and loc[0] == "queries":
        query = str(loc[1])
        loc = loc[2:]
    field = _dotted(loc)
    said: Param
    if not field:
        # Cross-field problems from the model validator already name query and field.
        return pydantic_problem(error)
    if kind == "missing":
        said = message("profile.problem.missing", field=field)
    elif kind == "extra_forbidden":
        said = message("profile.problem.unknown_field", field=field)
    else:
        got = error.get("input")
        problem = pydantic_problem(error)
        if isinstance(got, str | int | float | bool):
            said = message("profile.problem.bad_got", field=field, problem=problem, got=repr(got))
        else:
            said = message("profile.problem.bad", field=field, problem=problem)
    return said if query is None else message("profile.problem.in_query", query=query, text=said)


def _dotted(loc: list[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out
