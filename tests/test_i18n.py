"""Messages in Vietnamese and English: language choice, the .po compiler, the catalogue."""

from __future__ import annotations

import gettext
import io
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent import i18n
from agent.i18n import (
    PoError,
    _,
    compile_mo,
    ngettext,
    parse_po,
    po_text,
    select_language,
    set_language,
)
from agent.messages import catalogue


@pytest.fixture(autouse=True)
def english_afterwards() -> Iterator[None]:
    yield
    set_language("en")


@pytest.mark.parametrize(
    ("cli", "env", "lang"),
    [
        (None, {}, "en"),
        (None, {"LANG": "vi_VN.UTF-8"}, "vi"),
        (None, {"LANG": "vi"}, "vi"),
        (None, {"LANG": "en_US.UTF-8"}, "en"),
        (None, {"LANG": "C.UTF-8"}, "en"),
        (None, {"LC_MESSAGES": "vi_VN", "LANG": "en_US.UTF-8"}, "vi"),
        (None, {"LC_ALL": "en_GB.UTF-8", "LC_MESSAGES": "vi_VN"}, "en"),
        (None, {"LC_ALL": "", "LANG": "vi_VN.UTF-8"}, "vi"),  # empty means unset
        ("en", {"LANG": "vi_VN.UTF-8"}, "en"),
        ("vi", {"LC_ALL": "C"}, "vi"),
        ("VI", {}, "vi"),
    ],
)
def test_select_language(cli: str | None, env: dict[str, str], lang: str) -> None:
    assert select_language(cli, env) == lang


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError, match="fr"):
        select_language("fr", {})


def test_argparse_texts_follow_the_chosen_language() -> None:
    set_language("vi")
    assert _("usage: ") == "cách dùng: "
    assert _("no such message, left in English") == "no such message, left in English"
    assert ngettext("expected %s argument", "expected %s arguments", 3) == "cần %s giá trị"
    assert i18n.current_language() == "vi"
    set_language("en")
    assert _("usage: ") == "usage: "
    assert ngettext("expected %s argument", "expected %s arguments", 3) == "expected %s arguments"


def test_the_po_made_from_the_catalogue_reads_back_whole() -> None:
    """`python -m agent.i18n po vi` (for translators' tools): every id, its English as the
    msgid and the id as the context, translated, none fuzzy."""
    text = po_text("vi")
    messages = parse_po(text, "vi.po")
    assert "charset=UTF-8" in messages[""] and "#, fuzzy" not in text
    assert len(messages) - 1 == len(catalogue())
    for msg_id, entry in catalogue().items():
        key = f"{msg_id}\x04{entry['en']}" + (
            f"\0{entry['en_plural']}" if "en_plural" in entry else ""
        )
        assert messages[key] == entry["vi"], msg_id


SAMPLE_PO = r"""
# a comment
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Plural-Forms: nplurals=1; plural=0;\n"

msgid "tab\there \"quoted\""
msgstr "tab\tở đây \"trích\""

msgid ""
"long "
"line"
msgstr ""
"dòng "
"dài"

#, fuzzy
msgid "unsure"
msgstr "không chắc"

msgid "untranslated"
msgstr ""

msgctxt "led"
msgid "off"
msgstr "tắt"

msgid "%d file"
msgid_plural "%d files"
msgstr[0] "%d tệp"

#~ msgid "obsolete"
#~ msgstr "cũ"
"""


def test_parse_po_handles_the_format() -> None:
    messages = parse_po(SAMPLE_PO)
    assert messages['tab\there "quoted"'] == 'tab\tở đây "trích"'
    assert messages["long line"] == "dòng dài"
    assert messages["led\x04off"] == "tắt"
    assert messages["%d file\0%d files"] == "%d tệp"
    assert "unsure" not in messages and "untranslated" not in messages
    assert "obsolete" not in messages
    catalogue = gettext.GNUTranslations(io.BytesIO(compile_mo(messages)))
    assert catalogue.gettext("long line") == "dòng dài"
    assert catalogue.pgettext("led", "off") == "tắt"
    assert catalogue.ngettext("%d file", "%d files", 5) == "%d tệp"
    assert catalogue.gettext("unsure") == "unsure"


@pytest.mark.parametrize(
    "bad",
    ['msgid "a"\nmsgstr "b', 'msgid "a"\nmsgstr[0] "b"', 'msgid "a"\nbogus "b"', "msgid 42"],
)
def test_parse_po_refuses_broken_files_with_the_line(bad: str) -> None:
    with pytest.raises(PoError, match=r"x\.po:\d"):
        parse_po(bad, "x.po")


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext's msgfmt not installed")
def test_compiler_agrees_with_gnu_msgfmt(tmp_path: Path) -> None:
    for name, text in (("sample", SAMPLE_PO), ("vi", po_text("vi"))):
        po = tmp_path / f"{name}.po"
        po.write_text(text, encoding="utf-8")
        subprocess.run(["msgfmt", "-o", str(tmp_path / f"{name}.mo"), str(po)], check=True)
        with (tmp_path / f"{name}.mo").open("rb") as fh:
            gnu = gettext.GNUTranslations(fh)
        ours = gettext.GNUTranslations(io.BytesIO(compile_mo(parse_po(text))))
        assert ours._catalog == gnu._catalog  # type: ignore[attr-defined]


def test_compile_command_writes_a_catalogue_gettext_finds(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "agent.i18n", "compile", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    mo = tmp_path / "vi" / "LC_MESSAGES" / "edge-agent.mo"
    assert done.stdout.strip() == str(mo)
    found = gettext.translation("edge-agent", localedir=tmp_path, languages=["vi"])
    assert found.gettext("usage: ") == "cách dùng: "
