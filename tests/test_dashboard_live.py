"""The site detail's live session on the page, in a real headless Chromium: a real agent (a
child process) with the Cisco codec on a pty emulator in a call and an MCU target, a session
in its schedule, a real mosquitto, the centre's ingest and web server. The detail shows the
verdict and since, the far end, each media channel's loss, jitter, rate and resolution, the
line to the MCU and the session's events, in English and in Vietnamese; the far end hangs up
-> the open detail says dropped and lists the transition."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.centre.ingest import Ingest
from agent.centre.settings import CentreSettings
from agent.centre.web.accounts import Accounts, Role
from agent.centre.web.server import Dashboard
from agent.messages import catalogue
from agent.sim.broker import Mosquitto
from agent.sim.serial_device import PtyDevice
from agent.sim.site import TcpStandIn
from agent.transport.listener import Listener
from tests.fixtures.broker import AgentProcess, agent_config
from tests.fixtures.browser import CHROMIUM
from tests.test_dashboard import PASSWORD
from tests.test_dashboard_e2e import signed_in_page, wait_tile
from tests.test_live_e2e import ADDRESS, held_call

pytestmark = [
    pytest.mark.broker,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed"),
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dashboard, PtyDevice]]:
    tmp = tmp_path_factory.mktemp("dash-live")
    broker = Mosquitto(tmp / "broker").start()
    settings = CentreSettings.model_validate({
        "broker": broker.broker_settings("centre"), "db_path": str(tmp / "centre.sqlite"),
        "report_interval_s": 30.0, "retained_wait_s": 0.3,
    })  # fmt: skip
    accounts = Accounts(settings.db_path)
    accounts.add("view", PASSWORD, Role.VIEWER)
    accounts.close()
    ingest = Ingest(settings).start()
    dash = Dashboard(settings, "127.0.0.1:0").start()
    codec = PtyDevice(held_call(), scenario="rejoin").start()
    mcu = TcpStandIn()
    config = agent_config(broker, tmp / "state", "c-live", check_interval_s=3600.0)
    config["codec"] = {"enabled": True, "port": codec.port, "password": "secret"}
    config["network"]["targets"].append(
        {"name": "mcu-tinh", "host": "127.0.0.1", "port": mcu.port, "role": "mcu"}
    )
    # `live` with fresh figures every second (the default is 60 s): the open detail's refresh
    # has something new to show without any change of verdict
    config["session"] = {"poll_s": 0.5, "republish_s": 1}
    now = datetime.now(UTC)
    entry = {
        "session_id": "hop-19",
        "title": "Họp trực tuyến",
        "start": (now - timedelta(minutes=5)).isoformat(),
        "end": (now + timedelta(hours=1)).isoformat(),
        "conference_address": ADDRESS,
    }
    publisher = Listener(broker.endpoint(), ["vc/nothing"]).start()
    body = json.dumps({"schema_version": "1", "entries": [entry]}).encode()
    publisher.publish("vc/c-live/schedule", body, retain=True)
    agent = AgentProcess(config, tmp).start()
    try:
        yield dash, codec
    finally:
        agent.terminate()
        publisher.stop()
        codec.stop()
        mcu.stop()
        dash.stop()
        ingest.stop()
        broker.stop()


def _text(lang: str, msg_id: str) -> str:
    return catalogue()[msg_id][lang]


def _cells(page: Any, table: str) -> list[list[str]]:
    rows = page.locator(f"#detail table.{table} tr").all()
    return [[c.inner_text() for c in r.locator("td").all()] for r in rows[1:]]


@pytest.mark.parametrize("lang", ["en", "vi"])
def test_the_detail_shows_the_live_figures_in_the_page_language(
    browser: Any, site: tuple[Dashboard, PtyDevice], lang: str
) -> None:
    dash, _codec = site
    page = signed_in_page(browser, dash.url, "view", lang=lang)
    page.wait_for_selector("#app:not([hidden])")
    page.wait_for_selector('.tile[data-id="c-live"]', state="attached", timeout=20_000)
    page.locator('.tile[data-id="c-live"]').click()
    page.wait_for_selector('#detail .live-now [data-live="in_call"]', timeout=20_000)
    # the media table comes with the first `live` that carries figures
    page.wait_for_selector("#detail table.live-media", timeout=20_000)
    detail = page.locator("#detail-body").inner_text()
    assert _text(lang, "page.detail.live").format(session="Họp trực tuyến") in detail
    assert _text(lang, "page.detail.live.far_end").format(far_end=ADDRESS) in detail
    heads = page.locator("#detail table.live-media th").all_inner_texts()
    assert heads == [_text(lang, f"page.detail.live.{k}")
                     for k in ("channel", "loss", "jitter", "rate", "resolution")]  # fmt: skip
    media = _cells(page, "live-media")
    # the emulator's call (CE MediaChannels): 64 kbps audio each way, 1920 kbps video
    video_in = _text(lang, "live.channel.video_in")
    row = next(r for r in media if r[0] == video_in)
    assert row[1] == "0" and row[2] == "4" and row[4] == "1920x1080"
    assert row[3].replace(".", "").replace(",", "") == "1920"  # 1,920 / 1.920 by locale
    assert len(media) == 4
    (path,) = _cells(page, "live-path")
    assert path[0] == "mcu-tinh" and path[1] == "0"
    assert float(path[2].replace(",", ".")) >= 0  # a round trip measured
    events = page.locator("#detail .live-events li").all_inner_texts()
    start = _text(lang, "page.detail.live.start")
    assert any(f"{start} \u2192 {_text(lang, 'fleet.live.in_call')}" in e for e in events)
    # every label from the catalogue: no id shown raw
    assert "page.detail" not in detail and "video in" not in detail
    page.close()


def test_the_open_detail_refreshes_its_figures_without_a_change_of_verdict(
    browser: Any, site: tuple[Dashboard, PtyDevice]
) -> None:
    """Figures alone move no tile (the centre pushes changes of verdict), so the open detail
    asks again by itself while the site is in its session."""
    dash, _codec = site
    page = signed_in_page(browser, dash.url, "view", lang="en")
    page.wait_for_selector("#app:not([hidden])")
    page.evaluate("window.__dash.liveDetailMs = 500")  # the page's default: 15 s
    page.wait_for_selector('.tile[data-id="c-live"]', state="attached", timeout=20_000)
    page.locator('.tile[data-id="c-live"]').click()
    page.wait_for_selector("#detail table.live-media", timeout=20_000)
    heading = "#detail h3.live-media-at"
    first = page.locator(heading).inner_text()
    page.wait_for_function(
        "([sel, was]) => document.querySelector(sel)?.textContent !== was",
        arg=[heading, first],
        timeout=10_000,
    )
    page.close()


# Last: the codec stays out of the call afterwards.
def test_the_open_detail_follows_a_drop(browser: Any, site: tuple[Dashboard, PtyDevice]) -> None:
    dash, codec = site
    page = signed_in_page(browser, dash.url, "view", lang="en")
    page.wait_for_selector("#app:not([hidden])")
    wait_tile(page, "c-live", "ready", 20)
    page.locator('.tile[data-id="c-live"]').click()
    page.wait_for_selector('#detail .live-now [data-live="in_call"]', timeout=20_000)
    codec.jump("dropped")
    page.wait_for_selector('#detail .live-now [data-live="dropped"]', timeout=15_000)
    page.wait_for_selector('#detail .live-events li[data-after="dropped"]', timeout=5_000)
    first = page.locator("#detail .live-events li").first.inner_text()
    assert "in the call \u2192 call dropped" in first  # newest first
    page.close()
