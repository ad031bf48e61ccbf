"""Messages as symbolic ids with parameters, rendered in the reader's language.

A probe says what it found as a `Message`: a stable id from agent/locale/messages.toml, its
parameters, and the English text rendered once when it was made. The English text is what
logs and older readers get (it is also the result's `reason`/`hint` string); a reader that
knows the id renders it in its own language with `render`, whatever language the writer ran
in. A parameter may itself be a message, or a list of messages (joined by the entry's `sep`,
"; " unless said), so a reason made of several findings is still translatable.

The catalogue: one table per id, `en` and `vi` as Python format strings whose fields are the
parameters' names (format specs allowed: "{seconds:g}"), and an optional `sep`. Pure: the
file is read once, no other I/O.
"""

from __future__ import annotations

import logging
import string
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

CATALOGUE_PATH = Path(__file__).resolve().parent / "locale" / "messages.toml"
ID_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
DEFAULT_SEP = "; "


class Message(BaseModel):
    """One translatable sentence: what to say (id), with what (params), and the English."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN, description="Symbolic id in the message catalogue.")
    params: dict[str, bool | int | float | str | Message | list[Message]] = Field(
        default_factory=dict, description="Values for the id's format fields."
    )
    text: str = Field(description="The English text, rendered when the message was made.")


Param = bool | int | float | str | Message | list[Message]


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """id -> {"en": ..., "vi": ..., "sep"?: ...}, from the TOML tables (nested by the dots)."""
    with CATALOGUE_PATH.open("rb") as f:
        data = tomllib.load(f)
    out: dict[str, dict[str, str]] = {}

    def walk(prefix: str, table: Mapping[str, Any]) -> None:
        texts = {k: v for k, v in table.items() if isinstance(v, str)}
        if texts:
            out[prefix] = texts
        for key, value in table.items():
            if isinstance(value, Mapping):
                walk(f"{prefix}.{key}" if prefix else key, value)

    walk("", data)
    return out


def fields(template: str) -> set[str]:
    """The parameter names a format string uses."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _format(entry: Mapping[str, str], lang: str, params: Mapping[str, Param]) -> str:
    sep = entry.get("sep", DEFAULT_SEP)

    def value(v: Param) -> Any:
        if isinstance(v, Message):
            return render(v, lang)
        if isinstance(v, list):
            return sep.join(render(m, lang) for m in v)
        return v

    return entry[lang].format(**{k: value(v) for k, v in params.items()})


def message(msg_id: str, **params: Param) -> Message:
    """A message with its English text rendered now. An id missing from the catalogue (a
    bug the catalogue test catches) still gives a message: its text names the id."""
    entry = catalogue().get(msg_id)
    try:
        if entry is None:
            raise KeyError(msg_id)
        text = _format(entry, "en", params)
    except (KeyError, ValueError, IndexError, TypeError) as exc:
        log.error("message %s cannot be rendered in English: %r", msg_id, exc)
        text = f"{msg_id} {params}" if params else msg_id
    return Message(id=msg_id, params=params, text=text)


def render(msg: Message, lang: str) -> str:
    """`msg` in `lang`; its English text when the id, the language or a parameter is
    missing (a newer site's id, a damaged payload): never an exception."""
    if lang == "en":
        return msg.text
    entry = catalogue().get(msg.id)
    if entry is None or lang not in entry:
        return msg.text
    try:
        return _format(entry, lang, msg.params)
    except (KeyError, ValueError, IndexError, TypeError, AttributeError):
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
