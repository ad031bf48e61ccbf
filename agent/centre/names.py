"""Short tile names, pure: what a wall screen can show of 726 names that all begin alike.

The rule, per group of siblings (the sites under one parent):

1. Drop the leading words every sibling shares ("UBND xã ", "Trạm y tế xã "): found in the
   names themselves, not from a list, so a province that names its rooms differently works.
   The shared part ends at an office word (lower case, or an acronym), never inside the
   place's own capitalised name ("... xã An Bình", "... xã An Khánh" keep "An").
2. Then drop the lower-case leading word most siblings still begin with (two at least, more
   than any other: "xã" among "xã A", "xã B", "thị trấn C"): the others keep theirs, so a
   town reads differently from a commune.
3. Shorten the administrative words that remain to the abbreviations Vietnamese offices use
   ("Thị trấn" -> "TT.", "Phường" -> "P.").
4. Still longer than a tile holds (MAX_CHARS): a leading acronym ("UBND") goes, then the
   leading words become initials, the last two kept whole ("Quảng Phú Cầu Mới" -> "Q. P. Cầu
   Mới"), else the last one ("TT. Hương Nhượng" -> "TT. H. Nhượng"): the end of a place name
   is what tells siblings apart when the start is shared.
5. Never two siblings alike: a clash falls back to the stripped name, then adds the site id.

A name is never shortened to nothing; a site without a name shows its id. The full name is in
the site's detail.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Protocol

MAX_CHARS = 13  # what a wall tile shows at 11 px (about 74 px wide; the page squeezes a bit)

# Administrative words as offices abbreviate them; matched case-insensitively on whole words.
ABBREVIATIONS: tuple[tuple[str, str], ...] = (
    ("ủy ban nhân dân", "UBND"),
    ("uỷ ban nhân dân", "UBND"),
    ("thành phố", "TP."),
    ("thị trấn", "TT."),
    ("thị xã", "TX."),
    ("phường", "P."),
    ("trạm y tế", "TYT"),
)


class Named(Protocol):
    @property
    def site_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def parent(self) -> str | None: ...


def _words(name: str) -> list[str]:
    return name.split()


def _common_lead(names: list[list[str]]) -> int:
    """How many leading words all of `names` share (case-insensitively), leaving each at least
    one word."""
    if len(names) < 2:
        return 0
    n = 0
    shortest = min(len(w) for w in names)
    while n < shortest - 1 and len({w[n].casefold() for w in names}) == 1:
        n += 1
    # "Trạm y tế xã An Bình", "... An Khánh": the shared "An" is the place's, not the office's
    while n and _proper(names[0][n - 1]):
        n -= 1
    return n


def _abbreviate(words: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(words):
        for phrase, short in ABBREVIATIONS:
            parts = phrase.split()
            if (
                i + len(parts) < len(words)
                and [w.casefold() for w in words[i : i + len(parts)]] == parts
            ):
                out.append(short)
                i += len(parts)
                break
        else:
            out.append(words[i])
            i += 1
    return out


def _fit(words: list[str]) -> str:
    # an office's acronym ("UBND") says least of all: it goes first
    while len(" ".join(words)) > MAX_CHARS and len(words) > 2 and _acronym(words[0]):
        words = words[1:]
    words = list(words)
    for keep in (2, 1):  # the last two words whole if that fits, else the last one
        i = 0
        while len(" ".join(words)) > MAX_CHARS and i < len(words) - keep:
            if not words[i].endswith(".") and words[i].isalpha():
                words[i] = words[i][0] + "."
            i += 1
    return " ".join(words)


def _proper(word: str) -> bool:
    """A capitalised word of a place's name (not an acronym, not a lower-case office word)."""
    return word[:1].isupper() and not _acronym(word)


def _acronym(word: str) -> bool:
    return word.isalpha() and word.isupper() and len(word) > 1


def _label(site_id: str, name: str) -> str | None:
    name = " ".join(name.split())
    return name if name and name != f"Site {site_id}" else None


def _group_short(members: list[tuple[str, str]]) -> dict[str, str]:
    """Short names for one group of siblings: (site id, full name) each."""
    words = {sid: _words(name) for sid, name in members}
    lead = _common_lead(list(words.values()))
    stripped = {sid: w[lead:] for sid, w in words.items()}
    firsts = Counter(w[0] for w in stripped.values() if len(w) > 1 and not _proper(w[0]))
    top = firsts.most_common(2)
    if top and top[0][1] >= 2 and (len(top) == 1 or top[0][1] > top[1][1]):
        word = top[0][0]
        stripped = {sid: w[1:] if len(w) > 1 and w[0] == word else w for sid, w in stripped.items()}
    short = {sid: _fit(_abbreviate(w)) for sid, w in stripped.items()}
    clashes = Counter(short.values())
    short = {sid: " ".join(stripped[sid]) if clashes[s] > 1 else s for sid, s in short.items()}
    clashes = Counter(short.values())
    return {sid: f"{s} ({sid})" if clashes[s] > 1 else s for sid, s in short.items()}


def short_names(rows: Iterable[Named]) -> dict[str, str]:
    """Each site's tile name, by site id; siblings (same parent) never share one."""
    groups: dict[str | None, list[tuple[str, str]]] = {}
    out: dict[str, str] = {}
    for row in rows:
        label = _label(row.site_id, row.name)
        if label is None:
            out[row.site_id] = row.site_id
        else:
            groups.setdefault(row.parent, []).append((row.site_id, label))
    for members in groups.values():
        out.update(_group_short(members))
    return out
