"""Losing the database (issue 22): `centre serve` (a real subprocess) on a real PostgreSQL of
its own, stopped in the middle of a load and started again. The centre keeps the batch it could
not store unacknowledged (the broker's persistent session holds the rest), says so once in its
log and on the page's health, and stores everything when the server is back: none lost."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psycopg
import pytest

from agent.centre.web.accounts import Accounts, Role
from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import SimSite
from agent.transport.listener import Listener
from tests.fixtures.broker import ROOT, dump_toml, wait_until
from tests.test_dashboard import PASSWORD, Client

pytestmark = pytest.mark.broker

SITES = 4
BEFORE = 40  # reports per site stored before the server stops
DURING = 30  # reports per site published while it is away
PERIOD_S = 0.01


def start_serve(config: Path, log: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "centre", "serve", "--config", str(config),
         "--http", "127.0.0.1:0", "--log-level", "info"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("a"), text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    for _ in range(2):
        line = proc.stdout.readline()
        if "http://" in line:
            return proc, "http://" + line.split("http://", 1)[1].split()[0]
    proc.kill()
    pytest.fail(log.read_text())


def stored(url: str) -> dict[str, set[int]]:
    have: dict[str, set[int]] = {}
    with psycopg.connect(url) as con:
        for site_id, seq in con.execute("SELECT site_id, seq FROM reports"):
            have.setdefault(site_id, set()).add(int(seq))
    return have


def follow(base: str, client: Client, seen: list[dict[str, Any]], stop: threading.Event) -> None:
    """The page's stream of events: every `centre` (health) event it is sent."""
    req = urllib.request.Request(base.rstrip("/") + "/api/events")
    with client.opener.open(req, timeout=60) as stream:
        event = ""
        for raw in stream:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: ") and event == "centre":
                seen.append(json.loads(line[6:]))
            if stop.is_set():
                return


def test_the_centre_loses_postgresql_under_load_and_loses_no_report(own_postgres, tmp_path):
    url = own_postgres.url(own_postgres.create_database())
    broker = Mosquitto(tmp_path / "broker").start()
    config = tmp_path / "centre.toml"
    config.write_text(dump_toml({
        "broker": broker.broker_settings("centre"), "db_url": url,
        "retained_wait_s": 0.0, "report_interval_s": 60.0,
    }))  # fmt: skip
    accounts = Accounts(url)
    accounts.add("view", PASSWORD, Role.VIEWER)
    accounts.close()
    log = tmp_path / "centre.log"
    centre, base = start_serve(config, log)
    sites = [SimSite(f"o{i}") for i in range(SITES)]
    published: dict[str, set[int]] = {s.site_id: set() for s in sites}
    stop = threading.Event()
    try:
        page = Client(base)
        assert page.login("view")[0] == 200
        health: list[dict[str, Any]] = []
        threading.Thread(target=follow, args=(base, page, health, stop), daemon=True).start()
        with Listener(broker.endpoint(), ["vc/nothing"]) as publisher:

            def publish(count: int) -> None:
                for _ in range(count):
                    for s in sites:
                        topic, payload, retain = s.state()
                        publisher.publish(topic, payload, 1, retain)
                        published[s.site_id].add(json.loads(payload)["seq"])
                    time.sleep(PERIOD_S)

            load = threading.Thread(target=publish, args=(BEFORE,))
            load.start()
            time.sleep(BEFORE * PERIOD_S / 2)
            own_postgres.stop("immediate")  # in the middle of the load: a crash
            stopped = time.monotonic()
            load.join()
            publish(DURING)
            assert wait_until(lambda: "the database is unavailable" in log.read_text(), 15)
            assert wait_until(lambda: any(h.get("database") == "down" for h in health), 10)
            status, data, _ = page.call("GET", "/api/fleet")
            assert status == 503 and data["code"] == "page.error.database_down", data
            time.sleep(max(0.0, 3.0 - (time.monotonic() - stopped)))  # a few retries' worth
            own_postgres.start()
            total = SITES * (BEFORE + DURING)
            assert wait_until(lambda: sum(map(len, stored(url).values())) == total, 30), (
                sum(map(len, stored(url).values())),
                log.read_text()[-2000:],
            )
        assert stored(url) == published  # every report, none lost
        assert wait_until(lambda: health and health[-1].get("database") == "up", 10), health
        text = log.read_text()
        # Once per outage, not at every retry: the ingest, and the page's watch.
        assert text.count("reports stay on the broker, unacknowledged") == 1, text
        assert text.count("showing the last state read") == 1, text
        # The notification queue is polled every second: said once, and once when back.
        assert text.count("notification queue not readable") == 1, text
        assert text.count("the notification queue is readable again after") == 1, text
        # The rules' loop stepped down with the lead, so it may not have tried at all.
        assert text.count("alerts: the database is unavailable") <= 1, text
        assert "the database is back after" in text
        assert "Traceback" not in text
        status, data, _ = page.call("GET", "/api/fleet")
        assert status == 200 and data["centre"]["database"] == "up"
    finally:
        stop.set()
        centre.terminate()
        centre.wait(20)
        broker.stop()


def test_centre_serve_on_postgresql_shows_a_publishing_site_on_the_page(pg_url, tmp_path):
    broker = Mosquitto(tmp_path / "broker").start()
    config = tmp_path / "centre.toml"
    config.write_text(dump_toml({
        "broker": broker.broker_settings("centre"), "db_url": pg_url, "retained_wait_s": 0.0,
    }))  # fmt: skip
    accounts = Accounts(pg_url)
    accounts.add("view", PASSWORD, Role.VIEWER)
    accounts.close()
    log = tmp_path / "centre.log"
    centre, base = start_serve(config, log)
    try:
        site = SimSite("e2e-1")
        page = Client(base)
        assert page.login("view")[0] == 200  # the account in PostgreSQL

        def tiles() -> dict[str, str]:
            status, data, _ = page.call("GET", "/api/fleet")
            assert status == 200, data
            return {t["id"]: t["c"] for t in data["tiles"]}

        with Listener(broker.endpoint(), ["vc/nothing"]) as publisher:
            birth = site.birth()
            for topic, payload, retain in birth:
                publisher.publish(topic, payload, 1, retain)
            assert wait_until(lambda: tiles().get("e2e-1") == "ready", 15), log.read_text()
        assert stored(pg_url) == {"e2e-1": {json.loads(birth[-1][1])["seq"]}}
    finally:
        centre.terminate()
        centre.wait(20)
        broker.stop()
