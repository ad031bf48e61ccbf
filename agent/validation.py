"""What tomllib and pydantic say about a bad file or payload, as messages.

Shared by the settings (agent/config.py), the schedule (agent/schedule/) and the validators
in them. The libraries' English texts live in tomllib.toml and pydantic.toml, whose `en` is
the library's own text (pydantic's template, filled from the error's context): an error
found there becomes a message by that id, so it is rendered in the reader's language like
the sentence around it. A text not there stays in the library's English.

A validator of ours refuses a value with `Invalid(message(...))`: pydantic keeps its English
in the error as usual, and `pydantic_problem()` finds the message again.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from functools import cache
from typing import Any

from agent.messages import Message, Param, catalogue, message, render


class Invalid(ValueError):
    """A validator's refusal, as a message; its English is the ValueError's text."""

    def __init__(self, msg: Message) -> None:
        super().__init__(msg.text)
        self.msg = msg


_TOML_WHERE = re.compile(
    r"^(?P<what>.*) \(at (?:line (?P<line>\d+), column (?P<col>\d+)|end of document)\)$"
)
_OR = " or "  # pydantic's own "or" in "'a', 'b' or 'c'"


@cache
def _ids_by_english(area: str) -> dict[str, str]:
    """A library's English text -> its id, for the entries under `area`."""
    return {e["en"]: i for i, e in catalogue().items() if i.startswith(area)}


def _library(msg_id: str, **params: Param) -> Message:
    """A library's text by an id found in the catalogue, as a parameter of ours (the outer
    message carries the English)."""
    return Message(id=msg_id, params=params)


def toml_problem(exc: tomllib.TOMLDecodeError) -> Param:
    """tomllib's complaint and where, in words a reader's language has."""
    match = _TOML_WHERE.match(str(exc))
    if match is None:
        return str(exc)
    what = match["what"]
    known = _ids_by_english("tomllib.")
    problem: Param = _library(known[what]) if what in known else what
    if match["line"] is None:
        return message("config.toml_at_end", problem=problem)
    return message(
        "config.toml_at", problem=problem, line=int(match["line"]), column=int(match["col"])
    )


def _value(value: Any) -> Param:
    """A context value; one of the library's own phrases (why a date did not parse) by id."""
    if not isinstance(value, bool | int | float | str):
        value = str(value)
    known = _ids_by_english("pydantic.detail.")
    return _library(known[value]) if isinstance(value, str) and value in known else value


def pydantic_problem(error: Mapping[str, Any]) -> Param:
    """One pydantic error (an item of ValidationError.errors()) without its location."""
    context = dict(error.get("ctx") or {})
    refusal = context.get("error")
    if isinstance(refusal, Invalid):
        return refusal.msg
    msg_id = f"pydantic.{error['type']}"
    entry = catalogue().get(msg_id)
    if entry is None:
        return str(error["msg"])
    params: dict[str, Param] = {k: _value(v) for k, v in context.items()}
    expected = params.get("expected")
    if isinstance(expected, str) and _OR in expected:
        head, _, last = expected.rpartition(_OR)
        params["expected"] = _library("pydantic.or_choices", head=head, last=last)
    for size in ("min_length", "max_length"):  # "1 character", "2 characters"
        if size in params and "count" not in params:
            params["count"] = params[size]
    found = _library(msg_id, **params)
    # A context this pydantic names otherwise renders as nothing: keep its own text then.
    return found if render(found, "en") else str(error["msg"])
