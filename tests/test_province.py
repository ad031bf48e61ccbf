"""The simulated province's generator (agent/sim/province.py): the shape the wall screen is
judged on (726 sites, one hall, districts, communes that all begin "UBND xã"), valid ids, a
roster file the import reads, and the same province from the same seed."""

from __future__ import annotations

import csv
import io
import re
from collections import Counter

from agent.sim.province import (
    DISTRICTS,
    ROLE_COUNTS,
    SUMMONED,
    TOTAL_SITES,
    Role,
    ascii_slug,
    generate,
    roster_csv,
)

SITE_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")  # the agent's rule (agent/config.py)


def test_one_hall_its_districts_and_their_communes_726_in_all():
    sites = generate()
    assert len(sites) == TOTAL_SITES == 726
    tiers = Counter(s.tier for s in sites)
    assert tiers == {"province": 1, "district": len(DISTRICTS), "commune": 726 - 1 - 14}
    ids = {s.site_id: s for s in sites}
    assert len(ids) == len(sites)
    hall = sites[0]
    assert hall.tier == "province" and hall.parent is None
    for s in sites[1:]:
        parent = ids[s.parent or ""]
        assert parent.tier == {"district": "province", "commune": "district"}[s.tier]
    # every district has communes, a city fewer than a rural district
    per = Counter(s.parent for s in sites if s.tier == "commune")
    assert min(per.values()) >= 20 and max(per.values()) <= 80


def test_names_are_vietnamese_offices_and_ids_are_the_agents_ascii():
    sites = generate()
    for s in sites:
        assert SITE_ID.fullmatch(s.site_id), s.site_id
        assert s.name.startswith("UBND "), s.name
    districts = [s.name for s in sites if s.tier == "district"]
    assert "UBND huyện Ba Vì" in districts and "UBND thị xã Sơn Tây" in districts
    assert "UBND thành phố Hà Đông" in districts
    communes = [s.name for s in sites if s.tier == "commune"]
    offices = Counter(" ".join(n.split()[1:-2]) for n in communes)
    assert set(offices) == {"xã", "phường", "thị trấn"}
    assert offices["xã"] > len(communes) / 2  # most tiles begin alike: the wall's problem
    assert "UBND thị trấn Ba Vì" in communes  # a rural district's seat
    assert sum(n != n.encode("ascii", "ignore").decode() for n in communes) > len(communes) / 2
    # a commune's place name once in the province: a search finds one site
    places = [" ".join(n.split()[-2:]) for n in communes]
    assert len(set(map(ascii_slug, places))) == len(places)


def test_summoned_numbers_by_tier():
    for s in generate():
        low, high = SUMMONED[s.tier]
        assert low <= s.summoned <= high


def test_the_faults_are_a_handful_and_the_rest_is_ready():
    sites = generate()
    roles = Counter(s.role for s in sites)
    assert {r: roles[r] for r in ROLE_COUNTS} == ROLE_COUNTS
    assert roles[Role.READY] == len(sites) - sum(ROLE_COUNTS.values())
    assert sites[0].role is Role.AGENT  # the hall runs a real agent
    assert all(s.tier == "commune" for s in sites[1:] if s.role is not Role.READY)


def test_the_same_seed_gives_the_same_province_another_seed_another():
    assert generate(7) == generate(7)
    assert [s.name for s in generate(7)] != [s.name for s in generate(8)]
    assert [s.role for s in generate(7)] != [s.role for s in generate(8)]


def test_the_roster_file_has_the_import_columns_and_every_site():
    sites = generate()
    text = roster_csv(sites)
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == ["id", "name", "tier", "parent", "summoned"]
    assert len(rows) == len(sites)
    assert rows[0] == {"id": "hatay", "name": "UBND tỉnh Hà Tây", "tier": "province",
                       "parent": "", "summoned": str(sites[0].summoned)}  # fmt: skip
    assert {r["id"] for r in rows} == {s.site_id for s in sites}
