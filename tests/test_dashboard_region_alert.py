"""A region's alert (`region_down`: site id `region:r001`, no district, tier `region`) on the
page in a real Chromium against the real web server and SQLite stores, filled as the engine
would: the alerts panel names the region in the reader's language and offers no site detail
(there is no site to open: a click asks the server for nothing), it is acknowledged by a
click, and the incidents panel lists it with the tier `region` in words, all in Vietnamese
without English and without a script error."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.centre.alerts.contacts import ContactStore
from agent.centre.alerts.model import (
    Alert,
    AlertKind,
    Channel,
    ChannelKind,
    Contact,
    Severity,
)
from agent.centre.alerts.store import AlertStore
from agent.centre.web.accounts import Role
from agent.centre.web.server import Dashboard
from agent.messages import message, render
from tests.fixtures.browser import CHROMIUM
from tests.test_dashboard_alerts_e2e import wall_centre
from tests.test_dashboard_e2e import signed_in_page
from tests.test_dashboard_vietnamese import _COLLECT, english_on_page

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")

KEY = "region-down:region:r001"
REASON = message("alerts.region_down", region="r001", sites=212)
DESK = Contact(
    id="desk", name="Trực ban tỉnh", level=2,
    channels=(Channel(kind=ChannelKind.EMAIL, address="desk@vnpt.vn"),),
)  # fmt: skip
TECH = Contact(
    id="tech-dongda", name="Trần Thị Bình", districts=("d-dongda",),
    channels=(Channel(kind=ChannelKind.EMAIL, address="binh@vnpt.vn"),),
)  # fmt: skip
NAMES = ("r001", "op", DESK.name, TECH.name, "Site c-kimlien", "Site c-langha",
         "Site d-dongda", "Site p-hanoi", "c-kimlien", "c-langha", "d-dongda",
         "p-hanoi")  # fmt: skip


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    settings = wall_centre(tmp_path_factory.mktemp("dash-region"), ("op", Role.OPERATOR))
    alerts, directory = AlertStore(settings.db_path), ContactStore(settings.db_path)
    now = time.time()
    alerts.raised(Alert(
        key=KEY, rule="region-down", kind=AlertKind.REGION_DOWN, severity=Severity.CRITICAL,
        site_id="region:r001", site_name="r001", district="", tier="region", since=now - 600,
        fired_at=now - 540, reason=REASON,
    ))  # fmt: skip
    directory.put(DESK)
    directory.put(TECH)
    alerts.close()
    directory.close()
    dashboard = Dashboard(settings, "127.0.0.1:0", with_broker=False).start()
    yield dashboard
    dashboard.stop()


def test_a_region_alert_names_the_region_offers_no_site_and_is_acknowledged(
    browser: Any, dash: Dashboard, artifacts: Path
) -> None:
    page = signed_in_page(browser, dash.url, "op", lang="vi")
    errors: list[str] = []
    asked: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("request", lambda r: asked.append(r.url))
    row = page.locator(f'#alert-list li[data-key="{KEY}"]')
    row.wait_for()
    assert row.locator(".aregion").inner_text() == "vùng r001"
    assert row.locator(".aname").count() == 0  # nothing to open
    assert row.locator(".areason").inner_text() == render(REASON, "vi")
    # told: the desk (critical, no district), not the district's technician
    assert row.locator(".atold").inner_text().endswith(DESK.name)
    assert TECH.name not in row.locator(".atold").inner_text()
    # no tile or problem row is marked for it: it is no site's
    assert page.locator("#problem-list li.alerting").count() == 0
    got = page.evaluate(_COLLECT)
    assert english_on_page(got["text"], NAMES) == [], got["text"]
    page.screenshot(path=str(artifacts / "dashboard-region-alert.png"))

    row.locator(".aregion").click()
    row.locator(".aregion").press("Enter")
    page.wait_for_timeout(300)
    assert page.locator("#detail").is_hidden()
    assert [u for u in asked if "region" in u] == []  # no site detail asked for (a 404)

    row.locator("button.ack").click()
    page.wait_for_selector(f'#alert-list li[data-key="{KEY}"] .aacked[data-acked-by="op"]')
    assert "vùng r001" in page.inner_text("body")  # the toast names the region too

    page.click("#open-incidents")
    inc = page.locator("#desk table.incidents tr.incident")
    inc.first.wait_for()
    assert inc.count() == 1
    assert "vùng r001" in inc.first.inner_text()
    assert "máy chủ MQTT vùng mất kết nối" in inc.first.inner_text()
    assert "vùng" in page.inner_text("#desk table.stats-tier")
    got = page.evaluate(_COLLECT)
    assert english_on_page(got["text"], NAMES) == [], got["text"]
    page.screenshot(path=str(artifacts / "dashboard-region-incidents.png"))
    assert errors == []
    page.close()
