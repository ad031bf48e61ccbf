"""Short tile names (agent/centre/names.py) on real-looking Vietnamese names."""

from __future__ import annotations

from agent.centre.fleet import SiteRow
from agent.centre.names import MAX_CHARS, short_names


def rows(parent: str | None, *names: str, tier: str = "commune") -> list[SiteRow]:
    return [SiteRow(f"{parent}-{i}", name=n, tier=tier, parent=parent) for i, n in enumerate(names)]


def test_the_prefix_every_sibling_shares_is_dropped_whatever_it_is():
    communes = rows("d1", "UBND xã Hòa Bình", "UBND xã Tân Lập", "UBND xã Yên Phú")
    clinics = rows("d2", "Trạm y tế xã Phú Thành", "Trạm y tế xã Liên Sơn")
    districts = rows("p", "UBND huyện Lạc Sơn", "UBND huyện Kim Bôi", tier="district")
    short = short_names(communes + clinics + districts)
    assert [short[r.site_id] for r in communes] == ["Hòa Bình", "Tân Lập", "Yên Phú"]
    assert [short[r.site_id] for r in clinics] == ["Phú Thành", "Liên Sơn"]
    assert [short[r.site_id] for r in districts] == ["Lạc Sơn", "Kim Bôi"]


def test_a_shared_first_word_of_the_place_itself_is_kept():
    short = short_names(rows("d1", "UBND xã An Bình", "UBND xã An Khánh"))
    assert sorted(short.values()) == ["An Bình", "An Khánh"]


def test_a_town_among_communes_keeps_its_word_abbreviated():
    sites = rows("d1", "UBND xã Hòa Bình", "UBND xã Tân Lập", "UBND thị trấn Vụ Bản",
                 "UBND phường Đồng Tiến", "UBND thành phố Hòa Bình")  # fmt: skip
    assert list(short_names(sites).values()) == [
        "Hòa Bình", "Tân Lập", "TT. Vụ Bản", "P. Đồng Tiến", "TP. Hòa Bình",
    ]  # fmt: skip


def test_a_long_name_keeps_its_last_words_whole_and_fits():
    sites = rows("d1", "UBND xã Quảng Phú Cầu Mới", "UBND xã Đông Hưng Thuận Bắc", "UBND xã Ba")
    short = short_names(sites)
    assert short["d1-0"] == "Q. P. Cầu Mới"
    assert short["d1-1"] == "Đ. H. T. Bắc"
    assert all(len(s) <= MAX_CHARS for s in short.values())
    assert short_names(rows("d", "UBND thị trấn Hương Nhượng"))["d-0"] == "TT. H. Nhượng"


def test_a_lone_site_loses_its_acronym_only_when_too_long():
    short = short_names(rows(None, "UBND tỉnh Hòa Bình", tier="province") + rows("x", "UBND Ba"))
    assert short["None-0"] == "tỉnh Hòa Bình"
    assert short["x-0"] == "UBND Ba"


def test_siblings_never_share_a_short_name():
    sites = rows("d1", "UBND xã Tân Lập", "UBND xã Tân Lập", "UBND xã Quảng Phú Cầu",
                 "UBND xã Quảng Phú Cầu Mới Hai")  # fmt: skip
    short = short_names(sites)
    assert len(set(short.values())) == len(sites)
    assert short["d1-0"] == "Tân Lập (d1-0)" and short["d1-1"] == "Tân Lập (d1-1)"
    # the same place in two districts is no clash: the group title says which
    other = short_names(
        rows("d1", "UBND xã Tân Lập", "UBND xã Ba") + rows("d2", "UBND xã Tân Lập", "UBND xã Hai")
    )
    assert other["d1-0"] == other["d2-0"] == "Tân Lập"


def test_a_site_without_a_name_shows_its_id_and_a_name_is_never_emptied():
    sites = [
        SiteRow("c-1", parent="d"),
        SiteRow("c-2", name="Site c-2", parent="d"),
        SiteRow("c-3", name="UBND", parent="d"),
        SiteRow("c-4", name="UBND", parent="d"),
    ]
    short = short_names(sites)
    assert short["c-1"] == "c-1" and short["c-2"] == "c-2"
    assert short["c-3"] == "UBND (c-3)"
