"""The page's alerts, incidents and contacts in a real Chromium against the real web server
and SQLite stores (filled directly, as the alert engine would): an alert shown with its
Vietnamese reason and acknowledged by a click, stored with the operator's name; a viewer and
a wall screen get no button; a contact added through the form lands in the directory, a bad
one is refused in Vietnamese; and the panels, in Vietnamese, show no English."""

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
    Notification,
    NotificationEvent,
    Severity,
)
from agent.centre.alerts.queue import NotificationQueue
from agent.centre.alerts.store import AlertStore
from agent.centre.settings import CentreSettings
from agent.centre.store import Store
from agent.centre.web.accounts import Accounts, Role
from agent.centre.web.server import Dashboard
from agent.messages import message, render
from tests.fixtures.broker import wait_until
from tests.fixtures.browser import CHROMIUM
from tests.test_dashboard import PASSWORD, feed
from tests.test_dashboard_e2e import signed_in_page, wall_sites
from tests.test_dashboard_vietnamese import _COLLECT, english_on_page

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")

REASON = message(
    "alerts.check_failed", site="Site c-kimlien", minutes=15, session="hop-12",
    components="camera",
)  # fmt: skip
KEY = "check-t15:c-kimlien"
TECH = Contact(
    id="tech-dongda", name="Trần Thị Bình", districts=("d-dongda",),
    channels=(Channel(kind=ChannelKind.EMAIL, address="binh@vnpt.vn"),),
)  # fmt: skip


def wall_centre(tmp: Path, *roles: tuple[str, Role]) -> CentreSettings:
    """A centre's store with the wall's sites born and these accounts (password PASSWORD)."""
    settings = CentreSettings.model_validate(
        {"db_path": str(tmp / "centre.sqlite"), "report_interval_s": 30.0}
    )
    store = Store(settings.db_path)
    for s in wall_sites().values():
        feed(store, *s.birth())
    store.close()
    accounts = Accounts(settings.db_path)
    for name, role in roles:
        accounts.add(name, PASSWORD, role)
    accounts.close()
    return settings


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    settings = wall_centre(
        tmp_path_factory.mktemp("dash-alerts"), ("op", Role.OPERATOR), ("view", Role.VIEWER)
    )
    alerts, directory = AlertStore(settings.db_path), ContactStore(settings.db_path)
    now = time.time()
    alerts.raised(Alert(
        key=KEY, rule="check-t15", kind=AlertKind.CHECK_FAILED, severity=Severity.CRITICAL,
        site_id="c-kimlien", district="d-dongda", since=now - 300, fired_at=now - 180,
        reason=REASON,
    ))  # fmt: skip
    alerts.raised(Alert(
        key="down-t15:c-langha", rule="down-t15", kind=AlertKind.SITE_DOWN,
        severity=Severity.WARNING, site_id="c-langha", district="d-dongda", since=now - 7200,
        fired_at=now - 7000, reason=message("alerts.site_down", site="Site c-langha",
                                            condition=message("fleet.condition.offline"),
                                            session="hop-11"),
    ))  # fmt: skip
    alerts.ack("down-t15:c-langha", "op", now - 6000)
    alerts.resolved("down-t15:c-langha", now - 3000)
    directory.put(TECH)
    alerts.close()
    directory.close()
    queue = NotificationQueue(settings.db_path)
    queue.enqueue([Notification(
        key="k1", contact_id="tech-dongda", language="vi", event=NotificationEvent.RAISED,
        channel=Channel(kind=ChannelKind.WEBHOOK, address="http://127.0.0.1:9/hook"),
        alerts=(), created_at=now,
    )])  # fmt: skip
    queue.close()
    dashboard = Dashboard(settings, "127.0.0.1:0", with_broker=False).start()
    yield dashboard
    dashboard.stop()


NAMES = ("Site c-kimlien", "Site c-langha", "Site d-dongda", "Site p-hanoi", "c-kimlien",
         "c-langha", "d-dongda", "p-hanoi", "hop-12", "hop-11", "camera", "op", "view",
         TECH.name, "binh@vnpt.vn", "tech-dongda", "Nguyễn Văn An", "an@vnpt.vn", "tech-an",
         "http://127.0.0.1:9/hook")  # fmt: skip


def no_english(page: Any, where: str) -> str:
    got = page.evaluate(_COLLECT)
    found = english_on_page(got["text"], NAMES)
    assert found == [], f"English on the page ({where}): {found}\n{got['text']}"
    return str(got["text"])


def alert_row(page: Any, key: str) -> Any:
    return page.locator(f'#alert-list li[data-key="{key}"]')


def test_an_alert_in_vietnamese_is_acknowledged_by_a_click(browser, dash, artifacts):
    page = signed_in_page(browser, dash.url, "op", lang="vi")
    page.wait_for_selector(f'#alert-list li[data-key="{KEY}"]')
    row = alert_row(page, KEY)
    assert row.locator(".areason").inner_text() == render(REASON, "vi")
    assert row.locator(".sev").inner_text() == "nghiêm trọng"
    assert TECH.name in row.locator(".atold").inner_text()
    assert page.inner_text("#alert-count") == "1 cảnh báo"
    # the problem list marks the site an alert fires for, and only it
    page.wait_for_selector('#problem-list li.alerting[data-id="c-kimlien"]')
    assert page.locator("#problem-list li.alerting").count() == 1
    text = no_english(page, "the alerts panel")
    page.screenshot(path=str(artifacts / "dashboard-alerts.png"))
    assert "Cảnh báo" in text and "đã báo cho" in text
    row.locator("button.ack").click()
    page.wait_for_selector(f'#alert-list li[data-key="{KEY}"] .aacked[data-acked-by="op"]')
    assert page.locator(f'#alert-list li[data-key="{KEY}"] button.ack').count() == 0
    store = AlertStore(dash.settings.db_path)
    assert store.alert(KEY).acked_by == "op"  # type: ignore[union-attr]
    store.close()
    # incidents: the one closed with its duration, time to repair per district and tier
    page.click("#open-incidents")
    page.wait_for_selector("#desk table.incidents tr.incident")
    assert page.locator("#desk table.incidents tr.incident").count() == 2
    # opened 7000 s ago, closed 3000 s ago
    assert "1 giờ 6 phút" in page.inner_text("#desk table.stats-district")
    no_english(page, "incidents")
    page.screenshot(path=str(artifacts / "dashboard-incidents.png"))
    page.close()


def test_a_viewer_reads_the_alerts_without_a_button_or_the_directory(browser, dash):
    page = signed_in_page(browser, dash.url, "view", lang="vi")
    page.wait_for_selector(f'#alert-list li[data-key="{KEY}"]')
    assert page.locator("#alert-list button.ack").count() == 0
    assert page.locator("#open-contacts").is_hidden()
    page.close()


def test_a_contact_added_through_the_form_is_in_the_directory(browser, dash, artifacts):
    page = signed_in_page(browser, dash.url, "op", lang="vi")
    page.wait_for_selector("#app:not([hidden])")
    page.click("#open-contacts")
    page.wait_for_selector('#desk tr.contact[data-id="tech-dongda"]')
    assert "Thông báo đang chờ gửi: 1" in page.inner_text("#backlog")
    page.click("#contact-add")
    page.fill("#cf-id", "tech-an")
    page.fill("#cf-name", "Nguyễn Văn An")
    page.fill("#cf-districts", "d-dongda")
    page.check('#contact-form input[name="tier"][value="commune"]')
    page.fill("#cf-email", "an at vnpt")
    page.click("#contact-save")
    page.wait_for_selector("#contact-error:not(:empty)")
    error = page.inner_text("#contact-error")
    assert "an at vnpt" in error and "thư điện tử" in error, error
    no_english(page, "a refused contact")
    directory = ContactStore(dash.settings.db_path)
    assert directory.get("tech-an") is None
    page.fill("#cf-email", "an@vnpt.vn")
    page.fill("#cf-quiet", "22-6")
    page.click("#contact-save")
    page.wait_for_selector('#desk tr.contact[data-id="tech-an"]')
    stored = directory.get("tech-an")
    assert stored is not None and stored.name == "Nguyễn Văn An"
    assert stored.districts == ("d-dongda",) and stored.tiers == ("commune",)
    assert stored.quiet is not None and (stored.quiet.start, stored.quiet.end) == (22, 6)
    no_english(page, "the contacts")
    page.screenshot(path=str(artifacts / "dashboard-contacts.png"))
    page.locator('#desk tr.contact[data-id="tech-an"] button.toggle').click()
    wait_until(lambda: not directory.get("tech-an").enabled, 5)  # type: ignore[union-attr]
    page.once("dialog", lambda d: d.accept())
    page.locator('#desk tr.contact[data-id="tech-an"] button.remove').click()
    wait_until(lambda: directory.get("tech-an") is None, 5)
    directory.close()
    page.close()
