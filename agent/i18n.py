"""Messages in the reader's language, Vietnamese or English.

The one catalogue is agent/locale/messages/*.toml: every sentence by stable symbolic id, with
its English and Vietnamese (agent/messages.py reads it; the folder's README gives the rules).
Our code says `t("status.not_running", path=...)` to print in the process language, or makes
a `Message` (agent/messages.py) when the text crosses a boundary (a check result, an error, a
command's outcome) and each reader renders it in its own language.

gettext remains for text we do not write: the standard library's argparse asks gettext for
its usage lines and argument errors by their English text. The gettext catalogue is built
in memory from the TOML entries (English text -> Vietnamese), so there is no .po or .mo to
keep in step; `python -m agent.i18n po vi` writes a .po for translators' tools and
`python -m agent.i18n compile DIR` .mo files (the tests compare our compiler with GNU
msgfmt).

Language: `--lang vi|en` wins; otherwise the first set of LC_ALL, LC_MESSAGES, LANG (POSIX
precedence) starting with "vi" means Vietnamese; anything else means English.
"""

from __future__ import annotations

import argparse
import ast
import gettext
import io
import os
import struct
import sys
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Literal

from agent.errors import AgentError
from agent.messages import Param, catalogue, message, render, render_or

DOMAIN = "edge-agent"
_LOCALE_VARS = ("LC_ALL", "LC_MESSAGES", "LANG")
_MO_MAGIC = 0x950412DE

Lang = Literal["en", "vi"]
LANGUAGES: tuple[Lang, ...] = ("en", "vi")


def select_language(cli_lang: str | None, environ: Mapping[str, str] | None = None) -> Lang:
    """--lang wins; else LC_ALL, LC_MESSAGES, LANG (the first that is set) starting "vi"."""
    if cli_lang:
        lang = cli_lang.strip().lower()
        if lang not in LANGUAGES:
            raise ValueError(f"language {cli_lang!r}: choose one of {', '.join(LANGUAGES)}")
        return lang
    env = os.environ if environ is None else environ
    for var in _LOCALE_VARS:
        value = env.get(var, "")
        if value:
            return "vi" if value.lower().startswith("vi") else "en"
    return "en"


class PoError(ValueError):
    """A .po file we cannot compile; says the line."""


class _PoParser:
    """Line by line; an entry is stored when the next one starts (or at the end)."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.messages: dict[str, str] = {}
        self.entry: dict[str, str] = {}
        self.plurals: dict[int, str] = {}
        self.fuzzy = False
        self.section: str | None = None

    def flush(self) -> None:
        entry = self.entry
        if "msgid" in entry:
            key = entry["msgid"]
            if "msgid_plural" in entry:
                key += "\0" + entry["msgid_plural"]
                value = "\0".join(self.plurals[i] for i in sorted(self.plurals))
            else:
                value = entry.get("msgstr", "")
            if "msgctxt" in entry:
                key = entry["msgctxt"] + "\x04" + key
            # The header (msgid "") is kept even when fuzzy: it carries the charset.
            if value.strip("\0") and (not self.fuzzy or key == ""):
                self.messages[key] = value
        self.entry = {}
        self.plurals = {}
        self.fuzzy = False
        self.section = None

    def _in_msgstr(self) -> bool:
        return self.section is not None and self.section.startswith("msgstr")

    def line(self, lineno: int, line: str) -> None:
        if line.startswith("#,") and "fuzzy" in line:
            if self._in_msgstr():
                self.flush()
            self.fuzzy = True
            return
        if not line or line.startswith("#"):
            return
        keyword, _, rest = line.partition(" ")
        if line.startswith('"'):
            rest = line
        elif keyword.startswith("msgstr["):
            if self.section is None or not self.section.startswith(("msgstr", "msgid_plural")):
                raise PoError(f"{self.source}:{lineno}: {keyword} without msgid_plural")
            self.section = keyword
            self.plurals[int(keyword[7:-1])] = ""
        elif keyword in ("msgctxt", "msgid", "msgid_plural", "msgstr"):
            if keyword in ("msgctxt", "msgid") and self._in_msgstr():
                self.flush()
            self.section = keyword
            self.entry[keyword] = ""
        else:
            raise PoError(f"{self.source}:{lineno}: unexpected {line[:40]!r}")
        try:
            value = ast.literal_eval(rest.strip())
        except (ValueError, SyntaxError) as exc:
            raise PoError(f"{self.source}:{lineno}: bad string {rest.strip()[:40]!r}") from exc
        if not isinstance(value, str) or self.section is None:
            raise PoError(f"{self.source}:{lineno}: a quoted string must follow a keyword")
        if self.section.startswith("msgstr["):
            self.plurals[int(self.section[7:-1])] += value
        else:
            self.entry[self.section] += value


def parse_po(text: str, source: str = "<po>") -> dict[str, str]:
    """msgid -> msgstr, keyed the way a .mo stores them.

    Handles multi-line strings, escapes, msgctxt (context + EOT + msgid) and plurals
    (msgid NUL msgid_plural -> forms joined by NUL). Fuzzy and untranslated entries are left
    out, as msgfmt does, so they fall back to English.
    """
    parser = _PoParser(source)
    for lineno, raw in enumerate(text.splitlines(), 1):
        parser.line(lineno, raw.strip())
    parser.flush()
    return parser.messages


def compile_mo(messages: Mapping[str, str]) -> bytes:
    """The GNU .mo layout: header, two (length, offset) tables, then NUL-ended strings."""
    keys = sorted(messages)
    ids = b""
    strs = b""
    offsets: list[tuple[int, int, int, int]] = []
    for key in keys:
        k, v = key.encode(), messages[key].encode()
        offsets.append((len(ids), len(k), len(strs), len(v)))
        ids += k + b"\0"
        strs += v + b"\0"
    count = len(keys)
    ids_start = 7 * 4 + 16 * count
    strs_start = ids_start + len(ids)
    table_ids: list[int] = []
    table_strs: list[int] = []
    for id_off, id_len, str_off, str_len in offsets:
        table_ids += [id_len, ids_start + id_off]
        table_strs += [str_len, strs_start + str_off]
    header = struct.pack("<7I", _MO_MAGIC, 0, count, 7 * 4, 7 * 4 + 8 * count, 0, 0)
    tables = struct.pack(f"<{4 * count}I", *table_ids, *table_strs)
    return header + tables + ids + strs


# The areas whose entries are looked up by their English text: texts of a library we do not
# write, which asks gettext for them. Only these reach gettext, so two of our ids that share
# an English word ("check" as a column, "check" as a cause) can each keep their own
# Vietnamese without one replacing the other.
GETTEXT_AREAS = ("argparse",)


def gettext_messages(lang: Lang) -> dict[str, str]:
    """English text -> `lang`, keyed as a .mo stores them (a plural's two English forms
    joined by NUL), from the catalogue's gettext areas; with the header gettext wants."""
    out = {"": "Content-Type: text/plain; charset=UTF-8\nPlural-Forms: nplurals=1; plural=0;\n"}
    for msg_id, entry in catalogue().items():
        if msg_id.split(".", 1)[0] not in GETTEXT_AREAS:
            continue
        key = entry["en"] + ("\0" + entry["en_plural"] if "en_plural" in entry else "")
        out[key] = entry[lang]
    return out


@cache
def translations(lang: Lang) -> gettext.NullTranslations:
    """The gettext catalogue for `lang`; English (the msgids) for English."""
    if lang == "en":
        return gettext.NullTranslations()
    return gettext.GNUTranslations(io.BytesIO(compile_mo(gettext_messages(lang))))


_current: gettext.NullTranslations = gettext.NullTranslations()
_current_lang: Lang = "en"


def set_language(lang: Lang) -> None:
    """Choose the language of every later _() (one per process: the CLI sets it once).

    argparse's own texts (usage, "unrecognized arguments", ...) follow it too: argparse
    looks its messages up through the module-level names it imported from gettext, and our
    catalogue holds translations of those msgids; pointing them at ours is how its usage and
    argument errors reach the technician in the same language as the rest."""
    global _current, _current_lang  # noqa: PLW0603 - gettext's model: one language per process
    _current = translations(lang)
    _current_lang = lang
    argparse._ = _  # type: ignore[attr-defined]
    argparse.ngettext = ngettext  # type: ignore[attr-defined]


def current_language() -> Lang:
    return _current_lang


def t(msg_id: str, **params: Param) -> str:
    """Catalogue entry `msg_id` in the process language, its fields filled from `params`."""
    return render(message(msg_id, **params), _current_lang)


def say(msg_id: str, lang: Lang, **params: Param) -> str:
    """Catalogue entry `msg_id` in `lang`: t() for a renderer told its reader's language."""
    return render(message(msg_id, **params), lang)


def error_text(exc: AgentError) -> str:
    """An error and its fix in the process language (English for an untranslated one): how
    every command line, ours and the `python -m` tools', says what went wrong."""
    text = render_or(exc.msg, exc.message, _current_lang)
    hint = render_or(exc.hint_msg, exc.hint, _current_lang)
    return t("cli.error_hint", message=text, hint=hint) if hint else t("cli.error", message=text)


def _(message: str) -> str:
    return _current.gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _current.ngettext(singular, plural, n)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.i18n")
    sub = parser.add_subparsers(dest="action", required=True)
    comp = sub.add_parser("compile", help="write <DIR>/vi/LC_MESSAGES/edge-agent.mo")
    comp.add_argument("outdir", type=Path)
    po = sub.add_parser("po", help="print the catalogue of LANG as a gettext .po file")
    po.add_argument("lang", choices=[lang for lang in LANGUAGES if lang != "en"])
    args = parser.parse_args(argv)
    if args.action == "po":
        sys.stdout.write(po_text(args.lang))
        return 0
    out = args.outdir / "vi" / "LC_MESSAGES" / f"{DOMAIN}.mo"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(compile_mo(gettext_messages("vi")))
    sys.stdout.write(f"{out}\n")
    return 0


def _po_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def po_text(lang: Lang) -> str:
    """The symbolic catalogue as a .po file: the id as msgctxt, the English as msgid."""
    lines = [
        f"# edge-agent messages, {lang}. Made from agent/locale/messages/*.toml: edit those.",
        'msgid ""',
        'msgstr "Content-Type: text/plain; charset=UTF-8\\n"',
        "",
    ]
    for msg_id, entry in sorted(catalogue().items()):
        lines += [f"msgctxt {_po_string(msg_id)}", f"msgid {_po_string(entry['en'])}"]
        if "en_plural" in entry:
            lines += [f"msgid_plural {_po_string(entry['en_plural'])}"]
            lines += [f"msgstr[0] {_po_string(entry[lang])}", ""]
        else:
            lines += [f"msgstr {_po_string(entry[lang])}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
