"""Both catalogues use the Vietnamese terms fixed in docs/glossary.md, and agree with each other."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GLOSSARY = ROOT / "docs" / "glossary.md"

# Code stays as it is in both languages, so it says nothing about the words: backticked
# commands, placeholders, setting and option names, the product's own commands.
_CODE = re.compile(
    r"`[^`]*`|%\(\w+\)[sdrf]|\{\w+\}|--\w[\w-]*|\w+(?:\.\w+)+|\w*_\w*"
    r"|\bedge-agent\b|\bcentre (?:serve|status|send|report|schedule|keygen|user)\b"
)


@dataclass(frozen=True)
class Term:
    english: str
    label_only: bool  # an ordinary English word too: enforced only where it is the whole text
    vietnamese: str
    avoid: tuple[str, ...]


_PLACEHOLDER = re.compile(r"^[^\W\d_a-z]+(?:-[^\W\d_a-z]+)+$")


def norm(text: str) -> str:
    # A command-line placeholder joins its words with hyphens (THIẾT-BỊ): they are words.
    text = _PLACEHOLDER.sub(lambda m: m.group(0).replace("-", " "), _CODE.sub(" ", text))
    return unicodedata.normalize("NFC", text).casefold()


def bare(text: str) -> str:
    return norm(text).strip(" .:;,!?()")


def has_word(text: str, word: str, plural: bool = False) -> bool:
    suffix = "(?:s|es)?" if plural else ""
    return re.search(rf"(?<!\w){re.escape(word)}{suffix}(?!\w)", text) is not None


def table_rows() -> list[str]:
    lines = GLOSSARY.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.startswith("|")][2:]  # below the heading and its ---


def read_glossary() -> list[Term]:
    terms: list[Term] = []
    for row in table_rows():
        english, vietnamese, _meaning, avoid = (cell.strip() for cell in row.strip("|").split("|"))
        for form in english.split(", "):
            terms.append(
                Term(
                    english=form.rstrip("*").casefold(),
                    label_only=form.endswith("*"),
                    vietnamese=unicodedata.normalize("NFC", vietnamese).casefold(),
                    avoid=tuple(
                        unicodedata.normalize("NFC", word).casefold()
                        for word in avoid.split(", ")
                        if word != "—"
                    ),
                )
            )
    return terms


def page_pairs() -> list[tuple[str, str]]:
    """The page's texts: the catalogue's ids the centre serves it (agent/centre/web/app.py)."""
    from agent.centre.web.app import PAGE_AREAS  # noqa: PLC0415
    from agent.messages import catalogue  # noqa: PLC0415

    entries = [e for i, e in catalogue().items() if i.startswith(PAGE_AREAS)]
    return [(e[en], e["vi"]) for e in entries for en in ("en", "en_one") if en in e]


def complaints(english: str, vietnamese: str, terms: list[Term]) -> list[str]:
    """What is wrong with one translation, against the glossary."""
    out = []
    en, vi = norm(english), norm(vietnamese)
    for term in terms:
        if term.label_only:
            applies = bare(english) == term.english
            uses_term = bare(vietnamese) == term.vietnamese
        else:
            applies = has_word(en, term.english, plural=True)
            uses_term = has_word(vi, term.vietnamese)
        if not applies:
            continue
        if not uses_term:
            out.append(f"{english!r} -> {vietnamese!r}: '{term.english}' is '{term.vietnamese}'")
        out.extend(
            f"{english!r} -> {vietnamese!r}: not '{word}' for '{term.english}'"
            for word in term.avoid
            if has_word(vi, word)
        )
    return out


def test_the_glossary_table_is_read() -> None:
    terms = {t.english: t for t in read_glossary()}
    # The concepts the product shows; the two collisions among them.
    for english in ("site", "centre", "broker", "outbox", "offline", "disconnected", "fault",
                    "error", "ready", "degraded", "silent", "unknown", "never seen", "in the call",
                    "call dropped", "poor media", "check", "self-test", "session", "attendance",
                    "summoned number", "sent", "accepted", "succeeded", "failed", "rejected",
                    "no answer"):  # fmt: skip
        assert english in terms, english
    assert terms["offline"].vietnamese != terms["disconnected"].vietnamese
    assert terms["fault"].vietnamese != terms["error"].vietnamese
    assert terms["failed"].label_only and not terms["site"].label_only
    # One word per concept: no two rows share their Vietnamese term.
    assert len({t.vietnamese for t in terms.values()}) == len(table_rows())


def test_the_check_catches_a_wrong_or_forbidden_word() -> None:
    terms = read_glossary()
    assert complaints("fault", "Lỗi", terms)  # the wrong term (and a forbidden one)
    assert complaints("the site is offline", "điểm cầu mất kết nối", terms)
    assert complaints("failed", "hỏng", terms)  # a label-only term, as the whole text
    assert not complaints("A required device failed", "Một thiết bị bắt buộc gặp sự cố", terms)
    assert not complaints("set broker.protocol", "đặt broker.protocol", terms)  # code stays
    assert not complaints("%(session)s starts", "%(session)s bắt đầu", terms)
    assert not complaints("Next sessions", "Các phiên họp tiếp theo", terms)


def test_the_page_catalogue_follows_the_glossary() -> None:
    terms = read_glossary()
    assert [c for en, vi in page_pairs() for c in complaints(en, vi, terms)] == []


def test_a_label_says_the_same_thing_the_same_way_everywhere() -> None:
    """A word shown alone (a status, a condition, a column) is said one way in the CLI, the
    page and the reports, whichever area's id says it; capitals aside (a table label starts
    with one). Sentences may differ with their context."""
    from agent.i18n import GETTEXT_AREAS  # noqa: PLC0415
    from agent.messages import catalogue  # noqa: PLC0415

    terms = {t.english for t in read_glossary()}
    said: dict[str, dict[str, list[str]]] = {}
    for msg_id, entry in catalogue().items():
        english = entry["en"].strip().casefold()
        if english in terms and msg_id.split(".", 1)[0] not in GETTEXT_AREAS:
            # A placeholder (THIẾT-BỊ) joins its words with a hyphen, as argparse needs.
            vietnamese = entry["vi"].casefold().replace("-", " ")
            said.setdefault(english, {}).setdefault(vietnamese, []).append(msg_id)
    assert len(said) >= 10  # conditions, statuses, verdicts, headings
    assert {en: ways for en, ways in said.items() if len(ways) > 1} == {}


def test_the_message_id_catalogue_follows_the_glossary() -> None:
    from agent.messages import catalogue  # noqa: PLC0415

    terms = read_glossary()
    pairs = [(e[en], e["vi"]) for e in catalogue().values() for en in ("en", "en_one") if en in e]
    assert [c for en, vi in pairs for c in complaints(en, vi, terms)] == []
