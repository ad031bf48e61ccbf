"""The wall page when a region is cut off: three real mosquittos (tests/test_bridges.py), the
real ingest and web server, the page in headless Chromium. A regional broker killed -9 → a
banner names the region, its sites' tiles and problem rows say `region unreachable` (the
region's name in the reason), the other region's site stays ready; back → the banner goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.centre.web.accounts import Accounts, Role
from agent.centre.web.server import Dashboard
from tests.fixtures.browser import CHROMIUM, LAUNCH_ARGS
from tests.test_bridges import born_ready, bridged, conditions, send  # noqa: F401 - a fixture
from tests.test_dashboard import PASSWORD
from tests.test_dashboard_e2e import signed_in_page

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


def test_the_page_names_the_region_cut_off(bridged, artifacts) -> None:  # noqa: F811
    store, ingest = bridged["store"], bridged["ingest"]
    r1 = bridged["regions"]["r001"]
    accounts = Accounts(ingest.settings.db_path)
    accounts.add("view", PASSWORD, Role.VIEWER)
    accounts.close()
    dash = Dashboard(ingest.settings, "127.0.0.1:0", with_broker=False).start()
    sites = born_ready(bridged)
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=LAUNCH_ARGS)  # fmt: skip
            page = signed_in_page(browser, dash.url, "view", size=(1920, 1080), timeout_ms=15_000)
            for sid in sites:
                page.wait_for_selector(f'.tile[data-id="{sid}"][data-c="ready"]', state="attached")
            assert page.locator("#region-banner").is_hidden()
            r1.broker.kill()
            page.wait_for_selector("#region-banner:not([hidden])", timeout=10_000)
            assert "r001" in page.locator("#region-banner").inner_text()
            assert "r002" not in page.locator("#region-banner").inner_text()
            for sid in ("a1", "a2"):
                page.wait_for_selector(f'.tile[data-id="{sid}"][data-c="unreachable"]',
                                       state="attached")  # fmt: skip
                row = page.locator(f'.problem[data-id="{sid}"]')
                assert row.get_attribute("data-kind") == "unreachable"
                assert "region r001" in row.inner_text()
            assert page.locator('.tile[data-id="b1"][data-c="ready"]').count() == 1
            page.screenshot(path=str(artifacts / "bridges-region-cut.png"))
            r1.broker.start()
            with r1.publisher() as p1:
                send(p1, sites["a1"].state(), sites["a2"].state())
                page.wait_for_selector("#region-banner", state="hidden", timeout=20_000)
            assert set(conditions(store).values()) == {"ready"}
            browser.close()
    finally:
        dash.stop()
