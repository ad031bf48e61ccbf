"""The centre's page in Vietnamese shows no English: a real Chromium, a real mosquitto, the
real ingest and web server, simulated sites in every condition and a real agent to command.

After a failed and a rate-limited login, the login, the wall, a site's detail and commands'
outcomes (the detail's replies and the command log), every visible text of the page is
collected (body innerText, the tab title, and the placeholder, aria-label and title
attributes) and scanned for English words, as tests/test_cli_vietnamese does for the CLI; the
English vocabulary here is the English of the texts the centre serves the page (page.* and
fleet.* in agent/locale/messages/) plus common words, less the words their Vietnamese uses.

Excluded, and only these: the elements marked `data-from-site` (a component's reason and
hint, a command reply's reason or output, as the site sent them: an older site's English)
and, in a tile's tooltip, the same texts (listed in the tile's `data-site-text`). Site ids,
user names, component names and metric keys (`fps=25`) are names, not words of a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.centre.ingest import Ingest
from agent.centre.settings import CentreSettings
from agent.centre.web.accounts import Accounts, Role
from agent.centre.web.app import PAGE_AREAS
from agent.centre.web.server import Dashboard
from agent.checks.model import Status
from agent.messages import catalogue
from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import SimSite
from agent.transport.listener import Listener
from tests.commands_kit import KEY_ID, CommandAgent, commands_config
from tests.fixtures.browser import CHROMIUM, LAUNCH_ARGS
from tests.test_cli_vietnamese import COMMON_ENGLISH, ascii_words, words_in
from tests.test_dashboard import PASSWORD, write_key
from tests.test_dashboard_e2e import wait_tile, wall_sites

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]
# Names the Vietnamese page uses as they are.
_PROPER = {"codec", "ok"}
_PLACEHOLDER = re.compile(r"\{\w+\}")


def _vocabulary() -> set[str]:
    entries = [e for i, e in catalogue().items() if i.startswith(PAGE_AREAS)]
    # the {placeholders} are no words of either side
    en = [_PLACEHOLDER.sub(" ", e[k]) for e in entries for k in ("en", "en_one") if k in e]
    vi = [_PLACEHOLDER.sub(" ", e["vi"]) for e in entries]
    return ascii_words([*en, COMMON_ENGLISH]) - ascii_words(vi) - _PROPER


ENGLISH = _vocabulary()
SITES = ("p-hanoi", "d-dongda", "c-langha", "c-kimlien", "c-off", "c-quiet", "c-new", "c-cmd")
USERS = ("op", "view")
COMPONENTS = ("camera", "microphone", "display", "network")


def english_on_page(text: str, names: tuple[str, ...]) -> list[str]:
    return words_in(text, ENGLISH, names)


def test_the_detector_reads_the_page_vocabulary() -> None:
    assert english_on_page("Login failed: wrong name or password", ()) == [
        "Login", "failed", "wrong", "name", "or", "password",
    ]  # fmt: skip
    assert english_on_page("c-kimlien offline; last heard never", ("c-kimlien",)) == [
        "offline", "last", "heard", "never",
    ]  # fmt: skip
    assert english_on_page("Đăng nhập không thành công: sai tên tài khoản hoặc mật khẩu", ()) == []
    assert english_on_page("camera không đạt · fps=25 rms_db=-30.5", ("camera",)) == []


# Every visible text: innerText, the tab title, and the attributes a user reads; minus the
# site-sourced texts (reason, hint) the page marks.
_COLLECT = """() => {
  const out = [document.title];
  const skipped = [];
  for (const e of document.querySelectorAll('[data-from-site]')) {
    skipped.push(e.innerText);
    e.dataset.savedText = e.textContent;
    e.textContent = '';
  }
  out.push(document.body.innerText);
  for (const e of document.querySelectorAll('[data-from-site]')) {
    e.textContent = e.dataset.savedText;
  }
  for (const e of document.querySelectorAll('[placeholder], [aria-label], [title]')) {
    if (e.closest('[hidden]')) continue;
    let title = e.getAttribute('title') || '';
    for (const s of JSON.parse(e.dataset.siteText || '[]')) if (s) title = title.split(s).join(' ');
    out.push(e.getAttribute('placeholder') || '', e.getAttribute('aria-label') || '', title);
  }
  return {text: out.join('\\n'), skipped};
}"""


@pytest.fixture(scope="module")
def page_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dashboard, Any]]:
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    tmp = tmp_path_factory.mktemp("dash-vi")
    broker = Mosquitto(tmp / "broker").start()
    key = write_key(tmp / "centre.key")
    settings = CentreSettings.model_validate({
        "broker": broker.broker_settings("centre"), "db_path": str(tmp / "centre.sqlite"),
        "report_interval_s": 30.0, "retained_wait_s": 0.3, "command_key": str(tmp / "centre.key"),
        "key_id": KEY_ID, "silent_after": 1.0,
    })  # fmt: skip
    accounts = Accounts(settings.db_path)
    for user in USERS:
        accounts.add(user, PASSWORD, Role.OPERATOR if user == "op" else Role.VIEWER)
    accounts.close()
    ingest = Ingest(settings).start()
    dash = Dashboard(settings, "127.0.0.1:0").start()
    publisher = Listener(broker.endpoint(), ["vc/nothing"]).start()
    sims = wall_sites() | {
        "c-off": SimSite("c-off", parent="d-dongda"),
        "c-quiet": SimSite("c-quiet", parent="d-dongda", heartbeat_s=1.0),
        "c-new": SimSite("c-new", parent="d-dongda"),
    }
    sims["c-langha"].statuses["microphone"] = Status.WARN
    for sid, s in sims.items():
        births = s.birth() if sid != "c-new" else s.birth()[:2]  # no check result yet
        if sid == "c-off":
            births.append(s.availability("offline", "clean shutdown"))
        for topic, payload, retain in births:
            publisher.publish(topic, payload, 1, retain)
    topic, payload, retain = sims["c-kimlien"].attendance("hop-2026-11", 23)
    publisher.publish(topic, payload, 1, retain)
    topic, payload, retain = sims["c-kimlien"].checks()
    publisher.publish(topic, payload, 1, retain)
    commanded = CommandAgent(commands_config(broker, tmp / "cmd", key, site_id="c-cmd")).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
            yield dash, browser
            browser.close()
    finally:
        commanded.stop()
        publisher.stop()
        dash.stop()
        ingest.stop()
        broker.stop()


def test_the_page_in_vietnamese_shows_no_english(page_env: tuple[Dashboard, Any]) -> None:
    dash, browser = page_env
    context = browser.new_context(locale="vi-VN", viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(dash.url)
    page.wait_for_selector("#login:not([hidden])")
    names = (*(f"Site {s}" for s in SITES), *SITES, *USERS, "hop-2026-11", *COMPONENTS)
    seen: list[str] = []

    def scan(where: str) -> None:
        got = page.evaluate(_COLLECT)
        seen.append(got["text"])
        found = english_on_page(got["text"], names)
        assert found == [], f"English on the page ({where}): {found}\n{got['text']}"

    scan("login")
    page.fill("#login-name", "nobody")
    page.fill("#login-password", "wrong password")
    page.click("#login-submit")
    page.wait_for_selector("#login-error:not(:empty)")
    scan("failed login")
    assert "sai tên tài khoản hoặc mật khẩu" in seen[-1]
    for _ in range(10):  # the limiter's cap for one name from one address, and one more
        page.fill("#login-name", "nobody")
        page.fill("#login-password", "wrong password")
        page.evaluate("document.getElementById('login-error').textContent = ''")
        page.click("#login-submit")
        page.wait_for_selector("#login-error:not(:empty)")
        if "thử lại sau" in page.inner_text("#login-error"):
            break
    scan("rate-limited login")
    assert "thử lại sau" in seen[-1]
    page.fill("#login-name", "op")
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#app:not([hidden])")
    for site, cond in (("p-hanoi", "ready"), ("c-langha", "degraded"), ("c-kimlien", "fault"),
                       ("c-off", "offline"), ("c-quiet", "silent"), ("c-new", "unknown"),
                       ("c-cmd", "ready")):  # fmt: skip
        wait_tile(page, site, cond, 20)
    page.wait_for_selector("#live:not(.off)")
    scan("the wall")
    for site in ("c-kimlien", "c-off", "c-quiet", "c-new"):
        page.locator(f'.tile[data-id="{site}"]').click()
        page.wait_for_selector(f"#detail h2:has-text('{site}')")
        page.wait_for_selector("#detail h3")
        scan(f"detail of {site}")
    page.locator('.tile[data-id="c-cmd"]').click()
    page.wait_for_selector("#detail h2:has-text('c-cmd')")
    page.click('#detail .detail-actions [data-action="run-checks"]')
    page.wait_for_selector('#reply-log li[data-site="c-cmd"][data-status="succeeded"]')
    page.wait_for_selector('#detail .detail-replies li[data-status="succeeded"]')
    page.wait_for_selector("#detail table.components [data-from-site]")
    scan("a command's outcome")
    page.click('#detail .detail-actions [data-action="identify"]')
    page.wait_for_selector('#reply-log li[data-site="c-cmd"]:not([data-status="sent"]) >> nth=1')
    page.wait_for_function("document.querySelectorAll('#detail .detail-replies li').length >= 4")
    scan("the command log")
    # the scan read the parts it must: problems, the command log, the components
    text = "\n".join(seen)
    for shown in (
        "Vấn đề",
        "mất liên lạc",
        "ngừng báo cáo",
        "thành công",
        "Đăng nhập",
        "Phản hồi lệnh",
        "Nhận diện",
        "đã gửi",
        "Trung tâm giám sát điểm cầu",
    ):
        assert shown in text
    context.close()
