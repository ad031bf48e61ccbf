"""The wall view with a province's 726 sites, in a real headless Chromium against the real web
server and store: every tile on one 1920x1080 screen, each with a readable short name, grouped
under its district's name with counts; the problem list beside it in severity and tier order;
counters that filter; search without diacritics that matches district names; and a 1366x768
screen where every tile is reachable by scrolling.

Screenshots are kept in the `artifacts` folder (tests/conftest.py: $TEST_ARTIFACTS_DIR, else
.run/artifacts).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from agent.centre import fleet
from agent.centre.store import Store
from agent.centre.web import views
from agent.centre.web.accounts import Accounts, Role
from agent.centre.web.server import Dashboard
from agent.checks.model import Status
from agent.sim.fleet_site import Message, SimSite
from tests.test_dashboard import PASSWORD, feed, settings_for
from tests.test_dashboard_e2e import signed_in_page

DISTRICTS = [
    "Lạc Sơn", "Kim Bôi", "Tân Lạc", "Mai Châu", "Cao Phong", "Lương Sơn", "Yên Thủy",
    "Lạc Thủy", "Đà Bắc", "Kỳ Sơn", "Quang Tiến", "Phú Minh", "Đồng Tâm", "Hòa Bình",
]  # fmt: skip
COMMUNES = [
    "Hòa Bình", "Tân Lập", "Yên Phú", "Phú Thành", "Liên Sơn", "An Bình", "An Khánh",
    "Bình Thanh", "Bảo Hiệu", "Chí Đạo", "Cuối Hạ", "Đa Phúc", "Đông Lai", "Gia Mô",
    "Hợp Thịnh", "Hương Nhượng", "Kim Truy", "Lỗ Sơn", "Mãn Đức", "Mỹ Hòa", "Nam Thượng",
    "Ngọc Lâu", "Nhân Nghĩa", "Phong Phú", "Quy Mỹ", "Quyết Thắng", "Sào Báy", "Suối Hoa",
    "Thượng Cốc", "Tân Mỹ", "Thanh Nông", "Tiền Phong", "Trung Bì", "Tú Sơn", "Văn Sơn",
    "Vũ Bình", "Xuất Hóa", "Yên Lạc", "Yên Nghiệp", "Đoàn Kết", "Địch Giáo", "Đú Sáng",
    "Bắc Phong", "Cao Dương", "Hữu Lợi", "Kim Lập", "Lạc Lương", "Ngổ Luông", "Quang Huy",
    "Thịnh Minh", "Xuân Thủy", "Quảng Phú Cầu Mới",
]  # fmt: skip
SITES = 726


def province() -> dict[str, tuple[SimSite, str]]:
    """1 province, 14 districts (one a city), 711 communes (a town in each district)."""
    out = {"p": (SimSite("p", tier="province"), "UBND tỉnh Hòa Bình")}
    for d, dname in enumerate(DISTRICTS):
        did = f"d{d:02d}"
        office = "UBND thành phố" if d == len(DISTRICTS) - 1 else "UBND huyện"
        out[did] = (SimSite(did, tier="district", parent="p"), f"{office} {dname}")
    n = SITES - len(out)
    for i in range(n):
        d = i % len(DISTRICTS)
        k = i // len(DISTRICTS)
        cid = f"c{d:02d}-{k:02d}"
        name = COMMUNES[(k + d) % len(COMMUNES)]
        office = "UBND thị trấn" if k == 3 else "UBND xã"
        out[cid] = (SimSite(cid, parent=f"d{d:02d}"), f"{office} {name}")
    return out


def named(message: Message, name: str) -> Message:
    topic, raw, retain = message
    data = json.loads(raw)
    data["site"]["name"] = name
    return topic, json.dumps(data).encode(), retain


FAULTS = ("p", "d03", "c05-07")  # province, district, commune: the list's order
OFFLINE = ("c02-01", "d07")
DEGRADED = ("c09-02",)


@pytest.fixture(scope="module")
def centre(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    tmp = tmp_path_factory.mktemp("wall")
    settings = settings_for(tmp, report_interval_s=30.0)
    store = Store(settings.db_path)
    sites = province()
    for sid in FAULTS:
        sites[sid][0].statuses["camera"] = Status.FAIL
    for sid in DEGRADED:
        sites[sid][0].statuses["microphone"] = Status.WARN
    for sim, name in sites.values():
        availability, meta, state = sim.birth()
        feed(store, availability, named(meta, name), state)
    for sid in OFFLINE:
        feed(store, sites[sid][0].availability("offline", "connection lost (will)"))
    # a session at the fault site: its count ends next to the summoned number (the labels)
    for count in (8, 17, 22, 24):
        feed(store, sites["c05-07"][0].attendance("hop-12", count))
    feed(store, sites["c05-07"][0].checks())  # its metrics, for the detail
    store.close()
    accounts = Accounts(settings.db_path)
    accounts.add("view", PASSWORD, Role.VIEWER)
    accounts.close()
    dash = Dashboard(settings, "127.0.0.1:0", with_broker=False).start()
    yield dash
    dash.stop()


def open_wall(browser: Any, centre: Dashboard, width: int, height: int, lang: str = "en") -> Any:
    page = signed_in_page(
        browser, centre.url, "view", size=(width, height), timeout_ms=15_000, lang=lang
    )
    page.wait_for_function(f"() => window.__dash.tiles >= {SITES}")
    page.wait_for_function("() => document.querySelectorAll('#problem-list .problem').length > 0")
    page.wait_for_timeout(300)  # the resize-fit settles
    return page


BOARD = """(() => { const b = document.getElementById('board');
  return {height: b.scrollHeight, view_height: b.clientHeight,
          width: b.scrollWidth, view_width: b.clientWidth}; })()"""


def visible_ids(page: Any) -> set[str]:
    return set(
        page.eval_on_selector_all(".tile:not([hidden])", "els => els.map(e => e.dataset.id)")
    )


# ---- the tile JSON ---------------------------------------------------------------------------


def test_a_tile_says_its_short_name_and_its_group_by_name():
    now = time.time()
    rows = [
        fleet.SiteRow("d1", name="UBND huyện Lạc Sơn", tier="district", parent="p"),
        fleet.SiteRow("c1", name="UBND xã Hòa Bình", parent="d1"),
        fleet.SiteRow("c2", name="UBND thị trấn Vụ Bản", parent="d1"),
        fleet.SiteRow("c3", name="UBND xã Tân Lập", parent="d1"),
        fleet.SiteRow("x", name="UBND xã Ba", parent="gone"),
    ]
    tiles = views.tiles(rows, now, 3.0)
    assert tiles["c1"]["short"] == "Hòa Bình" and tiles["c2"]["short"] == "TT. Vụ Bản"
    assert tiles["c1"]["name"] == "UBND xã Hòa Bình"  # the full name for the detail
    assert (tiles["c1"]["group"], tiles["c1"]["group_name"]) == ("d1", "UBND huyện Lạc Sơn")
    assert (tiles["x"]["group"], tiles["x"]["group_name"]) == ("gone", "gone")  # no such site
    assert tiles["d1"]["group_name"] == "p"
    assert tiles["c1"]["since"] is None and tiles["c1"]["summoned"] is None
    # a part of the fleet re-read (a few changed sites) keeps the whole fleet's labels
    labels = views.labels(rows)
    part = views.tiles([rows[1]], now, 3.0, labels)
    assert part["c1"] == tiles["c1"]


# ---- the page --------------------------------------------------------------------------------


def test_726_sites_fit_one_1920x1080_screen_readable_and_grouped(browser, centre, artifacts):
    page = open_wall(browser, centre, 1920, 1080)
    page.screenshot(path=str(artifacts / "wall-1920x1080.png"))
    doc = page.evaluate("[document.documentElement.scrollHeight, window.innerHeight]")
    assert doc[0] <= doc[1], f"the page scrolls: {doc}"
    box = page.evaluate(BOARD)
    assert box["height"] <= box["view_height"], f"the tiles scroll: {box}"
    assert box["width"] <= box["view_width"], f"the tiles scroll sideways: {box}"
    # every tile inside the screen, none cut by its neighbour
    bottoms = page.eval_on_selector_all(
        ".tile", "els => els.map(e => e.getBoundingClientRect().bottom)"
    )
    assert len(bottoms) == SITES and max(bottoms) <= 1080
    # the name without the prefix every commune shares, whole
    assert page.locator('.tile[data-id="c00-00"]').inner_text() == "Hòa Bình"
    cut = page.eval_on_selector_all(
        ".tile", "els => els.filter(e => e.scrollWidth > e.clientWidth).map(e => e.innerText)"
    )
    assert not cut, f"{len(cut)} names cut: {sorted(set(cut))}"
    assert page.locator('.tile[data-id="c00-03"]').inner_text().startswith("TT. ")
    # grouped under the district's name, with counts
    titles = page.locator(".group h2").all_inner_texts()
    assert titles[0].startswith("province")
    assert titles[1].startswith("UBND tỉnh Hòa Bình") and "14 sites" in titles[1]
    lac_son = next(t for t in titles if t.startswith("UBND huyện Lạc Sơn"))
    assert "51 sites" in lac_son
    assert not any("under" in t for t in titles)
    page.close()


def test_the_problem_list_orders_by_severity_then_tier_and_says_why(browser, centre):
    page = open_wall(browser, centre, 1920, 1080)
    rows = page.eval_on_selector_all(
        "#problem-list .problem", "els => els.map(e => [e.dataset.id, e.dataset.kind, e.innerText])"
    )
    assert [(r[0], r[1]) for r in rows] == [
        ("p", "fault"), ("d03", "fault"), ("c05-07", "fault"),
        ("d07", "offline"), ("c02-01", "offline"), ("c09-02", "degraded"),
    ]  # fmt: skip
    assert "camera" in rows[0][2] and "simulated fail" in rows[0][2]
    assert "connection lost" in rows[4][2]
    assert page.locator("#problem-count").inner_text() == "6"
    # the same colour as the tiles and the counter of that condition
    colour = "e => getComputedStyle(e).backgroundColor"
    fault = page.locator('.tile[data-id="p"]').evaluate(colour)
    assert page.locator('#problem-list .problem[data-id="p"] .swatch').evaluate(colour) == fault
    assert page.locator('#counts [data-c="fault"]').evaluate(colour) == fault
    assert page.locator("#legend .c-fault").evaluate(colour) == fault
    # clicking an entry opens the site's detail, with its full name
    page.click('#problem-list .problem[data-id="c05-07"]')
    page.wait_for_selector("#detail h2:has-text('c05-07')")
    assert "UBND xã" in page.locator("#detail h2").inner_text()
    page.close()


def test_counters_filter_when_clicked(browser, centre):
    page = open_wall(browser, centre, 1920, 1080)
    fault = page.locator('#counts [data-c="fault"]')
    assert fault.get_attribute("aria-pressed") == "false"
    fault.click()
    assert fault.get_attribute("aria-pressed") == "true"
    assert visible_ids(page) == set(FAULTS)
    page.locator('#counts [data-c="offline"]').click()
    assert visible_ids(page) == set(FAULTS) | set(OFFLINE)
    assert len(page.locator("#problem-list .problem").all()) == 5
    fault.click()
    page.locator('#counts [data-c="offline"]').click()
    assert len(visible_ids(page)) == SITES
    page.close()


def test_search_ignores_diacritics_and_matches_district_names(browser, centre):
    page = open_wall(browser, centre, 1920, 1080)
    page.fill("#f-text", "hoa binh")
    page.wait_for_function(
        f"() => document.querySelectorAll('.tile:not([hidden])').length < {SITES}"
    )
    shown = visible_ids(page)
    assert "c00-00" in shown  # UBND xã Hòa Bình
    assert "p" in shown  # UBND tỉnh Hòa Bình
    # the city's communes, by their district's name
    assert {f"c13-{k:02d}" for k in range(50)} <= shown
    page.fill("#f-text", "lac son")
    page.wait_for_function("() => !document.querySelector('.tile[data-id=\"p\"]:not([hidden])')")
    assert visible_ids(page) == {"d00"} | {f"c00-{k:02d}" for k in range(51)}
    page.fill("#f-text", "DOAN KET")  # Đoàn Kết: đ as d, any case
    page.wait_for_function("() => !document.querySelector('.tile[data-id=\"d00\"]:not([hidden])')")
    assert visible_ids(page) and all(
        "Đoàn Kết" in page.locator(f'.tile[data-id="{sid}"]').inner_text()
        for sid in visible_ids(page)
    )
    page.close()


def test_1366x768_scrolls_to_every_tile_with_the_problem_list_in_view(browser, centre, artifacts):
    page = open_wall(browser, centre, 1366, 768, lang="vi")
    page.screenshot(path=str(artifacts / "wall-1366x768-vi.png"))
    problems = page.locator("#problems").bounding_box()
    assert problems["x"] + problems["width"] <= 1366 and problems["y"] < 768
    assert page.locator('#problem-list .problem[data-id="p"]').is_visible()
    assert "sự cố" in page.locator("#problem-list").inner_text()
    assert "giây trước" in page.locator('#problem-list .problem[data-id="d07"]').inner_text()
    cut = page.eval_on_selector_all(
        "#problem-list .pname", "els => els.filter(e => e.scrollWidth > e.clientWidth).length"
    )
    assert cut == 0, "a name cut in the problem list"
    board = page.evaluate(BOARD)
    assert board["height"] > board["view_height"]  # it scrolls, and only down
    assert board["width"] <= board["view_width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    for sel in (".tile >> nth=0", ".tile >> nth=-1", '.tile[data-id="c05-07"]'):
        tile = page.locator(sel)
        tile.scroll_into_view_if_needed()
        box = tile.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= 768
        assert box["x"] >= 0 and box["x"] + box["width"] <= 1366 - 300  # left of the list
    page.screenshot(path=str(artifacts / "wall-1366x768-scrolled.png"))
    page.close()


def test_the_detail_shows_every_metric_and_chart_labels_apart(browser, centre, artifacts):
    page = open_wall(browser, centre, 1366, 768)
    page.click('.tile[data-id="c05-07"]')
    page.wait_for_selector("#detail table.components")
    assert "fps=25" in page.locator("#detail table.components").inner_text()
    cut = page.eval_on_selector_all(
        "#detail td, #detail td .m",
        "els => els.filter(e => e.scrollWidth > e.clientWidth + 1).length",
    )
    assert cut == 0
    # the chart's labels: none overlaps another
    labels = page.eval_on_selector_all(
        "#detail svg.chart text",
        """els => els.map(e => {
        const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""",
    )
    assert len(labels) == 4  # expected, the latest count, the first and last time
    chart = page.locator("#detail svg.chart").bounding_box()
    for left, top, right, bottom in labels:
        assert chart["x"] <= left and right <= chart["x"] + chart["width"], "a label outside"
        assert chart["y"] <= top and bottom <= chart["y"] + chart["height"], "a label outside"
    for i, a in enumerate(labels):
        for b in labels[i + 1 :]:
            apart = a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
            assert apart, f"labels overlap: {a} {b}"
    assert page.evaluate("(() => { const d = document.getElementById('detail');"
                         " return d.scrollWidth <= d.clientWidth; })()")  # fmt: skip
    page.screenshot(path=str(artifacts / "detail-1366x768.png"))
    page.close()


def test_a_change_while_open_joins_the_list_in_order_and_recounts_its_group(browser, centre):
    page = open_wall(browser, centre, 1920, 1080)
    sim = SimSite("c04-09", parent="d04", seq=10)  # Cao Phong's commune, ready until now
    sim.statuses["display"] = Status.FAIL
    store = Store(centre.settings.db_path)
    try:
        feed(store, sim.state("check"))
        page.wait_for_selector('#problem-list .problem[data-id="c04-09"]', timeout=10_000)
        kinds = page.eval_on_selector_all(
            "#problem-list .problem", "els => els.map(e => e.dataset.id)"
        )
        # among the faults, after the province's and the district's; the order among commune
        # faults is newest first once tiles carry `since` (the condition events), else by name
        assert kinds[:2] == ["p", "d03"] and set(kinds[2:4]) == {"c04-09", "c05-07"}
        title = page.locator(".group", has_text="UBND huyện Cao Phong").locator("h2")
        assert title.locator(".chip.c-fault").inner_text() == "1"
        sim.statuses["display"] = Status.OK
        feed(store, sim.state("check"))
        page.wait_for_selector('#problem-list .problem[data-id="c04-09"]', state="detached")
        assert title.locator(".chip").count() == 0
    finally:
        store.close()
        page.close()
