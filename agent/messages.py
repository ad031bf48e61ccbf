"""Messages as symbolic ids with parameters, rendered in the reader's language.

A probe says what it found as a `Message`: a stable id from agent/locale/messages/, its
parameters, and the English text rendered once when it was made. The English text is what
logs and older readers get (it is also the result's `reason`/`hint` string); a reader that
knows the id renders it in its own language with `render`, whatever language the writer ran
in. A parameter may itself be a message, or a list of messages (joined by the entry's `sep`,
"; " unless said), so a reason made of several findings is still translatable.

The catalogue: agent/locale/messages/<area>.toml (its README says the format), one table per
id, `en` and `vi` as Python format strings whose fields are the parameters' names (format
specs allowed: "{seconds:g}"), and an optional `sep`. Pure: the files are read once, no other
I/O.
"""

from __future__ import annotations

import logging
import math
import string
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

log = logging.getLogger(__name__)

CATALOGUE_DIR = Path(__file__).resolve().parent / "locale" / "messages"
ID_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
DEFAULT_SEP = "; "


class Message(BaseModel):
    """One translatable sentence: what to say (id), with what (params), and the English."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN, description="Symbolic id in the message catalogue.")
    params: dict[str, bool | int | float | str | Message | list[Message]] = Field(
        default_factory=dict, description="Values for the id's format fields."
    )
    text: str = Field(
        "",
        description="The English text, rendered when the message was made; empty in a "
        "message that is another's parameter (the outer text says it all).",
    )

    @field_validator("params")
    @classmethod
    def _finite(cls, params: dict[str, Any]) -> dict[str, Any]:
        # JSON has no NaN or infinity: pydantic would write null, which a reader refuses,
        # and the whole report carrying the message would be lost. Say them as text.
        return {
            k: repr(v) if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in params.items()
        }


Param = bool | int | float | str | Message | list[Message]


class CatalogueError(ValueError):
    """A catalogue file that breaks the rules of agent/locale/messages/README.md."""


def catalogue_files() -> list[Path]:
    return sorted(CATALOGUE_DIR.glob("*.toml"))


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """id -> {"en": ..., "vi": ..., "sep"?: ...}, from every area's TOML tables (nested by
    the dots). An id outside its file's area, or in two files, is refused: each id must have
    one obvious home."""
    out: dict[str, dict[str, str]] = {}

    def walk(path: Path, prefix: str, table: Mapping[str, Any]) -> None:
        texts = {k: v for k, v in table.items() if isinstance(v, str)}
        if texts:
            if prefix.split(".", maxsplit=1)[0] != path.stem:
                raise CatalogueError(f"{path.name}: id {prefix} belongs in another file")
            if prefix in out:
                raise CatalogueError(f"{path.name}: id {prefix} is defined twice")
            out[prefix] = texts
        for key, value in table.items():
            if isinstance(value, Mapping):
                walk(path, f"{prefix}.{key}" if prefix else key, value)

    for path in catalogue_files():
        with path.open("rb") as f:
            walk(path, "", tomllib.load(f))
    return out


def fields(template: str) -> set[str]:
    """The parameter names a format string uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


# What a message from elsewhere (another release, a damaged payload) can fail with.
_RENDER_ERRORS = (KeyError, ValueError, IndexError, TypeError, AttributeError, RecursionError)


def _strict(msg: Message, lang: str) -> str:
    """`msg` in `lang` from the catalogue, nested messages too; raises when it cannot."""
    entry = catalogue()[msg.id]
    sep = entry.get("sep", DEFAULT_SEP)

    def value(v: Param) -> Any:
        if isinstance(v, Message):
            return _strict(v, lang)
        if isinstance(v, list):
            return sep.join(_strict(m, lang) for m in v)
        return v

    # English says "1 session" but "2 sessions": an entry may give the singular as `en_one`.
    one = f"{lang}_one"
    template = entry[one] if one in entry and msg.params.get("count") == 1 else entry[lang]
    return template.format(**{k: value(v) for k, v in msg.params.items()})


def _inner(value: Param) -> Param:
    """A parameter without the English texts of its messages (the outer one has them)."""
    if isinstance(value, Message):
        return value.model_copy(update={"text": ""})
    if isinstance(value, list):
        return [m.model_copy(update={"text": ""}) for m in value]
    return value


def message(msg_id: str, **params: Param) -> Message:
    """A message with its English text rendered now. An id missing from the catalogue (a
    bug the catalogue test catches) still gives a message: its text names the id."""
    msg = Message(id=msg_id, params={k: _inner(v) for k, v in params.items()})
    try:
        text = _strict(msg, "en")
    except _RENDER_ERRORS as exc:
        log.error("message %s cannot be rendered in English: %r", msg_id, exc)
        text = f"{msg_id} {params}" if params else msg_id
    return msg.model_copy(update={"text": text})


def render(msg: Message, lang: str) -> str:
    """`msg` in `lang`; its English text when the id (or a nested one), the language or a
    parameter is missing (a newer site's id, a damaged payload): never an exception."""
    if lang == "en" and msg.text:
        return msg.text
    try:
        return _strict(msg, lang)
    except _RENDER_ERRORS:
        return msg.text


def render_or(msg: Message | None, text: str, lang: str) -> str:
    """The message in `lang` when there is one, else `text` (an older writer's English)."""
    return text if msg is None else render(msg, lang)


def dump_message(msg: Message | None) -> str | None:
    """A message as JSON for storage; None stays None."""
    return None if msg is None else msg.model_dump_json()


def load_message(text: str | None) -> Message | None:
    """A stored message back; None when there is none or it cannot be read (the reader then
    shows the English text stored beside it)."""
    if not text:
        return None
    try:
        return Message.model_validate_json(text)
    except ValueError:
        log.warning("unreadable stored message ignored: %.80s", text)
        return None
