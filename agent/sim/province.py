"""A simulated province, pure: one provincial hall, its districts and their communes, wards and
towns, with Vietnamese names, summoned numbers per tier, and what each site does in the demo
(ready, fault, degraded, offline, silent, never seen, or a real agent). Deterministic from a
seed, so a screenshot, a test and a newcomer's first look all see the same province.

The names sound real on purpose: every commune's site is "UBND xã ...", which is exactly what
the wall screen must cope with (tiles that all begin alike). Districts are those of the former
Hà Tây province; the communes are made from common Vietnamese place-name syllables.
"""

from __future__ import annotations

import csv
import io
import random
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

PROVINCE_ID = "hatay"
PROVINCE_NAME = "UBND tỉnh Hà Tây"
TOTAL_SITES = 726

# (id, kind, name): kind is the office's word, "huyện", "thị xã" or "thành phố".
DISTRICTS: tuple[tuple[str, str, str], ...] = (
    ("hadong", "thành phố", "Hà Đông"),
    ("sontay", "thị xã", "Sơn Tây"),
    ("bavi", "huyện", "Ba Vì"),
    ("phuctho", "huyện", "Phúc Thọ"),
    ("danphuong", "huyện", "Đan Phượng"),
    ("hoaiduc", "huyện", "Hoài Đức"),
    ("quocoai", "huyện", "Quốc Oai"),
    ("thachthat", "huyện", "Thạch Thất"),
    ("chuongmy", "huyện", "Chương Mỹ"),
    ("thanhoai", "huyện", "Thanh Oai"),
    ("thuongtin", "huyện", "Thường Tín"),
    ("phuxuyen", "huyện", "Phú Xuyên"),
    ("unghoa", "huyện", "Ứng Hòa"),
    ("myduc", "huyện", "Mỹ Đức"),
)

_FIRST = (
    "Tân", "Đông", "Tây", "Nam", "Bắc", "Phú", "Phúc", "Thạch", "Hòa", "An", "Vĩnh", "Minh",
    "Thanh", "Hồng", "Hương", "Kim", "Đại", "Xuân", "Thụy", "Cẩm", "Liên", "Hợp", "Đồng",
    "Trung", "Quang", "Lam", "Sơn", "Tiên", "Phương", "Cao", "Vạn", "Yên", "Thượng", "Hạ",
    "Hữu", "Khánh", "Long", "Ngọc", "Bình", "Châu", "Mỹ", "Quảng", "Thái", "Tam", "Văn",
    "Viên", "Lê", "Cổ",
)  # fmt: skip
_SECOND = (
    "Lập", "Hòa", "Phong", "Thịnh", "Lợi", "Tiến", "Sơn", "Đức", "Xá", "Mỹ", "Khê", "Lâm",
    "Hưng", "Thành", "Bình", "Phú", "Thuận", "An", "Lộc", "Phương", "Quang", "Trung", "Tân",
    "Đồng", "Vinh", "Hải", "Yên", "Hà", "Châu", "Cường", "Nghĩa", "Tín", "Lạc", "Thọ",
    "Dương", "Hội", "Khánh", "Liệt", "Tảo", "Tường",
)  # fmt: skip

# People summoned to a session, per tier: (low, high).
SUMMONED = {"province": (60, 60), "district": (30, 45), "commune": (12, 30)}


class Role(StrEnum):
    """What a site does in the demo."""

    READY = "ready"
    FAULT = "fault"  # a required device fails (the camera)
    DEGRADED = "degraded"  # a device warns (the microphone)
    OFFLINE = "offline"  # connected once, then the line dropped (the broker sent its will)
    SILENT = "silent"  # connected, promised a short heartbeat, then said nothing more
    NEVER_SEEN = "never_seen"  # on the roster, never connected
    AGENT = "agent"  # a real `edge-agent run` process


# How many sites of each role besides READY; AGENT sites are the province hall and a few
# communes, so the real agents sit at both ends of the tree.
ROLE_COUNTS = {
    Role.AGENT: 3,
    Role.FAULT: 5,
    Role.DEGRADED: 4,
    Role.OFFLINE: 4,
    Role.SILENT: 3,
    Role.NEVER_SEEN: 4,
}


@dataclass(frozen=True)
class ProvinceSite:
    site_id: str
    name: str
    tier: str
    parent: str | None
    summoned: int
    role: Role = Role.READY


def ascii_slug(text: str) -> str:
    """ "Thạch Thất" -> "thachthat": site ids are ASCII (the agent's rule)."""
    flat = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in flat if c.isascii() and c.isalnum()).lower()


def _communes(rng: random.Random, count: int, taken: set[str]) -> list[str]:
    """`count` two-syllable place names whose ASCII form is not yet in `taken` (unique
    across the province, so a search finds one commune, not two, and the ids differ)."""
    out: list[str] = []
    while len(out) < count:
        first, second = rng.choice(_FIRST), rng.choice(_SECOND)
        name = f"{first} {second}"
        if first == second or ascii_slug(name) in taken:
            continue
        taken.add(ascii_slug(name))
        out.append(name)
    return out


def _office(district_kind: str, rng: random.Random, first: bool) -> str:
    """The local office's word: wards in a city, wards and communes in a town, communes and
    one town (its seat) in a rural district."""
    if district_kind == "thành phố":
        return "phường" if rng.random() < 0.8 else "xã"
    if district_kind == "thị xã":
        return "phường" if rng.random() < 0.5 else "xã"
    return "thị trấn" if first else "xã"


def generate(seed: int = 18, total: int = TOTAL_SITES) -> list[ProvinceSite]:
    """The province's sites, the hall first, then each district followed by its communes."""
    rng = random.Random(seed)
    n_communes = total - 1 - len(DISTRICTS)
    if n_communes < len(DISTRICTS):
        raise ValueError(f"{total} sites cannot hold {len(DISTRICTS)} districts with communes")
    # Spread the communes over the districts, unevenly as real ones are (a city has fewer).
    weights = [0.6 if kind != "huyện" else rng.uniform(0.8, 1.3) for _, kind, _ in DISTRICTS]
    shares = [int(n_communes * w / sum(weights)) for w in weights]
    for i in range(n_communes - sum(shares)):
        shares[i % len(shares)] += 1
    taken = {slug for slug, _, _ in DISTRICTS}

    def summoned(tier: str) -> int:
        low, high = SUMMONED[tier]
        return rng.randint(low, high)

    sites = [ProvinceSite(PROVINCE_ID, PROVINCE_NAME, "province", None, summoned("province"))]
    for (slug, kind, name), share in zip(DISTRICTS, shares, strict=True):
        district_id = f"{PROVINCE_ID}-{slug}"
        sites.append(
            ProvinceSite(district_id, f"UBND {kind} {name}", "district", PROVINCE_ID,
                         summoned("district"))
        )  # fmt: skip
        names = _communes(rng, share, taken)
        if kind == "huyện":
            names[0] = name  # the district's seat: "thị trấn Ba Vì"
        for i, commune in enumerate(names):
            office = _office(kind, rng, first=i == 0)
            sites.append(
                ProvinceSite(f"{slug}-{ascii_slug(commune)}", f"UBND {office} {commune}",
                             "commune", district_id, summoned("commune"))
            )  # fmt: skip
    return _assign_roles(sites, rng)


def _assign_roles(sites: list[ProvinceSite], rng: random.Random) -> list[ProvinceSite]:
    communes = [i for i, s in enumerate(sites) if s.tier == "commune"]
    picked = rng.sample(communes, sum(ROLE_COUNTS.values()) - 1)
    roles: dict[int, Role] = {0: Role.AGENT}  # the province hall runs a real agent
    for role, count in ROLE_COUNTS.items():
        for _ in range(count - (role is Role.AGENT)):
            roles[picked.pop()] = role
    return [
        ProvinceSite(s.site_id, s.name, s.tier, s.parent, s.summoned, roles.get(i, Role.READY))
        for i, s in enumerate(sites)
    ]


def roster_csv(sites: list[ProvinceSite]) -> str:
    """The roster file `edge-agent centre sites import` reads: id,name,tier,parent,summoned."""
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "name", "tier", "parent", "summoned"])
    for s in sites:
        writer.writerow([s.site_id, s.name, s.tier, s.parent or "", s.summoned])
    return buf.getvalue()
