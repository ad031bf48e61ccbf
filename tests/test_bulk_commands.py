"""Bulk commands from the page finish honestly: every site answers or is marked no_answer at
the command's deadline (a late reply still replaces it), a self-test that found a fault is a
fault and not "succeeded", and a restarted centre still marks the commands it had in flight.
Real mosquitto, real agents; the silent sites are ids with no agent behind them."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.centre.ingest import Ingest
from agent.centre.settings import CentreSettings
from agent.centre.web import commands
from agent.centre.web.accounts import Accounts, Role
from agent.centre.web.commands import Commander
from agent.centre.web.server import Dashboard
from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import SimSite
from agent.transport.listener import Listener
from tests.commands_kit import KEY_ID, CommandAgent, commands_config
from tests.fixtures.broker import wait_until
from tests.fixtures.browser import CHROMIUM, LAUNCH_ARGS
from tests.test_dashboard import PASSWORD, write_key
from tests.test_dashboard_e2e import signed_in_page

pytestmark = pytest.mark.broker

VALIDITY_S = 2.0  # short, so the deadline (validity + grace) comes within the test
GRACE_S = 1.0
DEADLINE_S = VALIDITY_S + GRACE_S
FAULT = "rgb(239, 108, 0)"  # --fault in app.css, as on the tiles


class Events:
    """What the commander pushes to the page."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def __call__(self, kind: str, data: dict[str, Any]) -> None:
        assert kind == "reply"
        with self.lock:
            self.items.append(data)

    def of(self, site: str, status: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.items if e["site_id"] == site and e["status"] == status]

    def last(self) -> dict[str, Any]:
        with self.lock:
            return self.items[-1] if self.items else {"tally": {"waiting": None}}


def centre_settings(broker: Mosquitto, tmp: Path) -> CentreSettings:
    return CentreSettings.model_validate({
        "broker": broker.broker_settings("centre"), "db_path": str(tmp / "centre.sqlite"),
        "retained_wait_s": 0.3, "command_key": str(tmp / "centre.key"), "key_id": KEY_ID,
    })  # fmt: skip


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def late_reply(
    broker: Mosquitto, site: str, command_id: str, verdict: str, status: str = "succeeded"
) -> None:
    """The reply a site sends once it is back (its agent's outbox kept it)."""
    publisher = Listener(broker.endpoint(), ["vc/nothing"]).start()
    try:
        body = {"command_id": command_id, "site_id": site, "status": status,
                "reason": "", "output": {"verdict": verdict, "results": []}}  # fmt: skip
        publisher.publish(f"vc/{site}/cmd/reply", json.dumps(body).encode(), 1, False)
        time.sleep(0.3)
    finally:
        publisher.stop()


@pytest.fixture
def agents(broker: Mosquitto, tmp_path: Path) -> Iterator[dict[str, CommandAgent]]:
    """Two real agents: one ready, one whose network check fails (a fault)."""
    key = write_key(tmp_path / "centre.key")
    ok = commands_config(broker, tmp_path / "ok", key, site_id="c-ok")
    bad = commands_config(broker, tmp_path / "bad", key, site_id="c-bad")
    bad["network"]["targets"] = [{"name": "gateway", "host": "127.0.0.1", "port": closed_port()}]
    running = {"c-ok": CommandAgent(ok).start(), "c-bad": CommandAgent(bad).start()}
    yield running
    for a in running.values():
        a.stop()


def test_a_bulk_run_checks_counts_verdicts_and_marks_the_silent_sites_no_answer(
    broker, tmp_path, agents
):
    events = Events()
    commander = Commander(centre_settings(broker, tmp_path), events,
                          validity_s=VALIDITY_S, grace_s=GRACE_S).start()  # fmt: skip
    try:
        assert commander.connected.wait(10)
        time.sleep(1.0)  # the agents' command subscriptions
        sites = ["c-ok", "c-bad", "c-gone1", "c-gone2"]
        t0 = time.monotonic()
        cid = commander.submit("op", "run-checks", sites)
        assert wait_until(lambda: events.last()["tally"]["waiting"] == 0, 30)
        took = time.monotonic() - t0
        assert events.last()["tally"] == {
            "sent": 4, "answered": 2, "outcomes": {"ready": 1, "fault": 1},
            "no_answer": 2, "waiting": 0,
        }  # fmt: skip
        # the silent ones at the deadline, not before; the others by their replies
        for site in ("c-gone1", "c-gone2"):
            (marked,) = events.of(site, "no_answer")
            assert marked["after_s"] >= DEADLINE_S
            assert marked["command_id"] == cid
        assert took < DEADLINE_S + 5
        (fault,) = events.of("c-bad", "succeeded")
        assert fault["verdict"] == "fault"
        assert events.of("c-ok", "succeeded")[0]["verdict"] == "ready"
        # and the stored log says the same (the site's detail reads it)
        assert commander.log.recent("c-gone1")[0]["status"] == "no_answer"
        assert commander.log.recent("c-bad")[0]["verdict"] == "fault"
        # a late reply still lands and replaces the no_answer
        late_reply(broker, "c-gone1", cid, "degraded")
        assert wait_until(lambda: bool(events.of("c-gone1", "succeeded")), 10)
        assert events.last()["tally"]["outcomes"] == {"ready": 1, "fault": 1, "degraded": 1}
        assert events.last()["tally"]["no_answer"] == 1
        stored = commander.log.sent(cid)
        assert stored is not None
        assert stored.tally() == events.last()["tally"]
        # a reply naming a site the command did not go to is not taken
        late_reply(broker, "c-other", cid, "ready")
        assert not events.of("c-other", "succeeded")
        # nor a status only the centre gives (a site cannot mark itself, or another, unasked)
        before = len(events.items)
        late_reply(broker, "c-gone2", cid, "ready", status="sent")
        late_reply(broker, "c-ok", cid, "ready", status="no_answer")
        assert len(events.items) == before
        assert commander.log.sent(cid).tally() == stored.tally()  # type: ignore[union-attr]
    finally:
        commander.stop()
    print(f"\n4 sites, 2 silent: all settled after {took:.2f} s (deadline {DEADLINE_S:g} s)")


def test_a_restarted_centre_marks_the_commands_it_had_in_flight(broker, tmp_path):
    write_key(tmp_path / "centre.key")
    settings = centre_settings(broker, tmp_path)
    first = Commander(settings, Events(), validity_s=VALIDITY_S, grace_s=GRACE_S).start()
    assert first.connected.wait(10)
    cid = first.submit("op", "identify", ["c-gone1", "c-gone2"])
    assert wait_until(lambda: len(first.log.recent("c-gone2")) == 1, 5)  # sent, then down
    first.stop()
    events = Events()
    second = Commander(settings, events, validity_s=VALIDITY_S, grace_s=GRACE_S).start()
    try:
        assert wait_until(lambda: len(events.items) == 2, DEADLINE_S + 10)
        assert {e["site_id"] for e in events.items} == {"c-gone1", "c-gone2"}
        assert {e["status"] for e in events.items} == {"no_answer"}
        assert events.last()["command_id"] == cid
        assert events.last()["tally"] == {"sent": 2, "answered": 0, "outcomes": {},
                                          "no_answer": 2, "waiting": 0}  # fmt: skip
        assert second.log.recent("c-gone1")[0]["status"] == "no_answer"
        # marked once: a third start finds nothing left to mark
        assert second.log.waiting() == []
        # and a late reply to the previous run's command still lands
        late_reply(broker, "c-gone2", cid, "ready")
        assert wait_until(lambda: bool(events.of("c-gone2", "succeeded")), 10)
        assert events.last()["tally"]["no_answer"] == 1
    finally:
        second.stop()


# ---- the page -------------------------------------------------------------------------------


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")
def test_select_all_shown_then_a_bulk_send_settles_with_counts_and_colours(
    broker, tmp_path, monkeypatch, artifacts
):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    monkeypatch.setattr(commands, "VALIDITY_S", VALIDITY_S)
    monkeypatch.setattr(commands, "GRACE_S", GRACE_S)
    write_key(tmp_path / "centre.key")
    settings = centre_settings(broker, tmp_path)
    accounts = Accounts(settings.db_path)
    accounts.add("op", PASSWORD, Role.OPERATOR)
    accounts.close()
    ingest = Ingest(settings).start()
    dash = Dashboard(settings, "127.0.0.1:0").start()
    publisher = Listener(broker.endpoint(), ["vc/nothing"]).start()
    sims = [SimSite("d-x", tier="district")] + [
        SimSite(f"c-{name}", parent="d-x") for name in ("an", "binh", "anh", "cuong")
    ]
    # past the per-send limit with the filters cleared
    many = [SimSite(f"z-{i:03d}", parent="d-x") for i in range(commands.MAX_SITES - 4)]
    for s in sims + many:
        for topic, payload, retain in s.birth():
            publisher.publish(topic, payload, 1, retain)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=LAUNCH_ARGS)  # fmt: skip
            page = signed_in_page(browser, dash.url, "op", size=(1920, 1080))
            for s in sims:
                page.wait_for_selector(f'.tile[data-id="{s.site_id}"]', state="attached")
            page.check("#select-mode")
            page.locator('.tile[data-id="d-x"]').click()  # selected before: dropped
            page.fill("#f-text", "c-an")
            page.wait_for_selector('.tile[data-id="c-binh"]', state="hidden")
            page.click("#select-shown")
            selected = page.eval_on_selector_all(".tile.sel", "els => els.map(e => e.dataset.id)")
            assert sorted(selected) == ["c-an", "c-anh"]
            assert page.locator("#selected").inner_text().startswith("2")
            page.once("dialog", lambda d: d.accept())
            page.click('#actions [data-action="run-checks"]')
            line = "#bulk-log li"
            page.wait_for_selector(f'{line}[data-waiting="0"]', timeout=(DEADLINE_S + 10) * 1000)
            assert (
                page.locator(line)
                .text_content()
                .endswith("Run checks: 2 sent: 0 answered (—), 2 no answer  [op]")
            )
            assert page.locator('#reply-log li[data-status="no_answer"]').count() == 2
            assert "no answer" in page.locator('#reply-log li[data-site="c-an"]').first.inner_text()
            # one site answers late, with a fault: the line says fault, in the tiles' colour
            command_id = page.locator(line).get_attribute("data-command")
            late_reply(broker, "c-an", command_id, "fault")
            entry = page.locator('#reply-log li[data-site="c-an"][data-status="succeeded"]')
            entry.wait_for()
            assert "succeeded" not in entry.inner_text()
            assert "verdict fault" in entry.inner_text()
            assert entry.evaluate("e => getComputedStyle(e).color") == FAULT
            badge = entry.locator('[data-outcome="fault"]')
            assert badge.evaluate("e => getComputedStyle(e).backgroundColor") == FAULT
            assert (
                page.locator(line)
                .text_content()
                .endswith("Run checks: 2 sent: 1 answered (1 fault), 1 no answer  [op]")
            )
            shot = artifacts / "bulk-commands.png"
            page.screenshot(path=str(shot))
            print(f"\nscreenshot: {shot}")
            # "select all shown" stops at the per-send limit, and says so
            page.wait_for_selector(f'.tile[data-id="{many[-1].site_id}"]', state="attached")
            page.fill("#f-text", "")
            page.wait_for_selector('.tile[data-id="c-binh"]', state="visible")
            page.click("#select-shown")
            total = len(sims) + len(many)
            assert page.locator(".tile.sel").count() == commands.MAX_SITES
            assert page.locator("#selected").inner_text() == f"{commands.MAX_SITES} selected"
            assert page.locator("#toast").inner_text() == (
                f"{total} sites shown: the first {commands.MAX_SITES} selected"
                f" (at most {commands.MAX_SITES} at once)"
            )
            browser.close()
    finally:
        publisher.stop()
        dash.stop()
        ingest.stop()
