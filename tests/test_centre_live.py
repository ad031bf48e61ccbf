"""The centre during a session, through a real mosquitto and the real ingest: a site's `live`
state (dropped, then back in the call) reaches `centre status` and /api/fleet with its since
time; its `live/event` transitions are stored; one media point per site and minute; a site
the session expects that sends nothing counts as not joined; and the wall's problem list in a
real Chromium shows a dropped site and a poor one, with reason, since and colour, and the
header counts them (the time from publishing to the page is printed)."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.centre import fleet
from agent.centre.ingest import Ingest
from agent.centre.settings import CentreSettings
from agent.centre.store import Store
from agent.centre.web.accounts import Accounts, Role
from agent.centre.web.server import Dashboard
from agent.checks.live import CallState, LiveVerdict, MediaStats, PathStats
from agent.cli import main
from agent.contract.payloads import LiveEventPayload, LivePayload, SessionRef
from agent.contract.topics import topic_for
from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import Message, SimSite
from tests.fixtures.broker import dump_toml, wait_until
from tests.fixtures.browser import CHROMIUM, LAUNCH_ARGS
from tests.test_centre import centre_config, publisher  # noqa: F401 - a fixture
from tests.test_dashboard import PASSWORD, Client
from tests.test_dashboard_e2e import signed_in_page

NOW = datetime.now(UTC)
SESSION = SessionRef(
    session_id="hop-19", title="Họp giao ban", start=NOW - timedelta(minutes=5),
    end=NOW + timedelta(hours=2),
)  # fmt: skip


def live(
    site: SimSite,
    verdict: LiveVerdict,
    since: datetime,
    *,
    reason: str = "",
    loss: float = 0.0,
    ts: datetime | None = None,
    historical: bool = False,
    session: SessionRef | None = SESSION,
    media: tuple[MediaStats, ...] | None = None,
) -> Message:
    in_call = verdict is not LiveVerdict.DROPPED
    media = media or (MediaStats(kind="video", direction="in", loss_pct=loss, jitter_ms=12.0),)
    payload = LivePayload(
        site_id=site.site_id, seq=site._next(), boot=site.boot, ts=ts or datetime.now(UTC),
        historical=historical, verdict=verdict, since=since, reason=reason, session=session,
        call=CallState(in_call=in_call, media=media if in_call else ()),
        path=(PathStats(target="mcu.example", loss_pct=loss, rtt_ms=40.0),),
    )  # fmt: skip
    return topic_for("vc", site.site_id, "live"), payload.to_bytes(), True


def event(site: SimSite, before: LiveVerdict | None, after: LiveVerdict) -> Message:
    payload = LiveEventPayload(
        site_id=site.site_id, seq=site._next(), boot=site.boot, ts=datetime.now(UTC),
        session=SESSION, before=before, after=after, reason=f"{before} -> {after}",
    )  # fmt: skip
    return topic_for("vc", site.site_id, "live_event"), payload.to_bytes(), False


@pytest.fixture
def centre(broker: Mosquitto, tmp_path: Path) -> Iterator[tuple[Ingest, Dashboard]]:
    cfg = centre_config(broker, tmp_path, silent_after=30.0)
    (tmp_path / "centre.toml").write_text(dump_toml(cfg))
    settings = CentreSettings.model_validate(cfg)
    ingest = Ingest(settings).start()
    accounts = Accounts(settings.db_path)
    accounts.add("view", PASSWORD, Role.VIEWER)
    accounts.close()
    dash = Dashboard(settings, "127.0.0.1:0", with_broker=False).start()
    yield ingest, dash
    dash.stop()
    ingest.stop()


def status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    main(["centre", "status", "--config", str(tmp_path / "centre.toml"), "--json"])
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


def status_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    main(["centre", "status", "--config", str(tmp_path / "centre.toml")])
    return capsys.readouterr().out


def live_of(data: dict[str, Any], site_id: str) -> dict[str, Any] | None:
    return next((s for s in data["live"]["sites"] if s["site_id"] == site_id), None)


def tile(client: Client, site_id: str) -> dict[str, Any]:
    _, snap, _ = client.call("GET", "/api/fleet")
    # {} until the page's watch has read the site
    return next((t for t in snap["tiles"] if t["id"] == site_id), {})


def test_a_dropped_site_shows_dropped_with_since_then_recovers(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    centre: tuple[Ingest, Dashboard],
    publisher: Callable[..., None],  # noqa: F811
) -> None:
    ingest, dash = centre
    c1, c2 = SimSite("c1", parent="d1"), SimSite("c2", parent="d1")
    publisher(*c1.birth(), *c2.birth())
    joined = NOW - timedelta(minutes=4)
    publisher(live(c1, LiveVerdict.IN_CALL, joined), event(c1, None, LiveVerdict.IN_CALL))
    # c2 is expected (its summoned number) but sends no live state: not joined
    assert wait_until(lambda: (status(tmp_path, capsys).get("live") or {}).get("counts", {})
                      .get("in_call") == 1, 10)  # fmt: skip
    data = status(tmp_path, capsys)
    assert data["live"]["session_id"] == "hop-19"
    assert data["live"]["counts"] == {
        "in_call": 1, "poor": 0, "dropped": 0, "unknown": 0, "not_joined": 1,
    }  # fmt: skip
    assert data["live"]["by_parent"]["commune under d1"]["not_joined"] == 1
    assert live_of(data, "c2")["state"] == "not_joined"
    assert live_of(data, "c2")["since"] == pytest.approx(SESSION.start.timestamp())

    client = Client(dash.url)
    assert client.login("view")[0] == 200
    assert wait_until(lambda: (tile(client, "c1").get("live") or {}).get("v") == "in_call", 10)
    dropped_at = datetime.now(UTC).replace(microsecond=0)
    sent = time.monotonic()
    publisher(live(c1, LiveVerdict.DROPPED, dropped_at, reason="codec left the call"))
    assert wait_until(lambda: (tile(client, "c1").get("live") or {}).get("v") == "dropped", 10)
    with capsys.disabled():
        print(f"\nlive dropped -> /api/fleet: {(time.monotonic() - sent) * 1000:.0f} ms")
    t = tile(client, "c1")
    assert t["live"]["since"] == dropped_at.timestamp()
    assert t["live"]["reason_by_lang"]["en"] == "codec left the call"
    assert t["c"] == "ready"  # the agent is fine: its codec is not in the call
    _, snap, _ = client.call("GET", "/api/fleet")
    assert snap["counters"]["live"]["counts"]["dropped"] == 1

    data = status(tmp_path, capsys)
    assert data["live"]["counts"]["dropped"] == 1
    assert live_of(data, "c1") == {
        "site_id": "c1", "name": "Site c1", "tier": "commune", "parent": "d1",
        "state": "dropped", "since": dropped_at.timestamp(), "reason": "codec left the call",
    }  # fmt: skip
    text = status_text(tmp_path, capsys)
    assert "session Họp giao ban, live:" in text
    assert f"c1 (Site c1) CALL DROPPED since {dropped_at:%Y-%m-%d %H:%M:%S}Z" in text

    back = datetime.now(UTC)
    publisher(
        event(c1, LiveVerdict.IN_CALL, LiveVerdict.DROPPED),
        live(c1, LiveVerdict.IN_CALL, back),
        event(c1, LiveVerdict.DROPPED, LiveVerdict.IN_CALL),
    )
    assert wait_until(lambda: (tile(client, "c1").get("live") or {}).get("v") == "in_call", 10)
    data = status(tmp_path, capsys)
    assert data["live"]["counts"]["in_call"] == 1
    assert data["live"]["counts"]["dropped"] == 0
    assert live_of(data, "c1") is None

    store = Store(ingest.settings.db_path)
    try:
        events = [(e.before, e.after) for e in store.live_events("hop-19", "c1")]
    finally:
        store.close()
    assert events == [(None, "in_call"), ("in_call", "dropped"), ("dropped", "in_call")]

    # the session over: no live picture, and the tile carries none
    publisher(live(c1, LiveVerdict.IN_CALL, back, session=None))
    assert wait_until(lambda: tile(client, "c1").get("live", 0) is None, 10)
    assert status(tmp_path, capsys)["live"] is None


def test_one_media_point_per_site_and_minute_the_newest_of_it(tmp_path: Path) -> None:
    from tests.test_dashboard import feed  # noqa: PLC0415

    store = Store(tmp_path / "centre.sqlite")
    c1 = SimSite("c1")
    minute = datetime.now(UTC).replace(second=0, microsecond=0)
    at = [minute - timedelta(minutes=2, seconds=-s) for s in (5, 30, 55)]  # one minute
    at += [minute - timedelta(minutes=1, seconds=-10)]
    feed(store, *c1.birth())
    for i, ts in enumerate(at):
        feed(store, live(c1, LiveVerdict.POOR, NOW, loss=float(i), ts=ts))
    # drained late from the outbox: an older point, not the current state
    feed(store, live(c1, LiveVerdict.IN_CALL, NOW, loss=9.0, ts=at[1] + timedelta(seconds=1),
                     historical=True))  # fmt: skip
    points = store.live_media("hop-19", "c1")
    assert [m for m, _ in points] == [int(at[0].timestamp() // 60), int(at[3].timestamp() // 60)]
    assert [p["media"][0]["loss_pct"] for _, p in points] == [2.0, 3.0]
    assert points[0][1]["path"][0]["rtt_ms"] == 40.0
    row = store.sites(time.time(), 60.0, 30.0, {"c1"})[0].live
    assert row is not None and row.verdict == "poor"  # the historical one did not win
    store.close()


def test_a_database_from_before_live_gets_its_tables_and_keeps_its_sites(tmp_path: Path) -> None:
    path = tmp_path / "centre.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE sites (site_id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '',"
               " tier TEXT NOT NULL DEFAULT 'commune', parent TEXT, expected INTEGER,"
               " agent_version TEXT, check_interval_s REAL, availability TEXT,"
               " avail_boot INTEGER, avail_ts REAL, avail_reason TEXT NOT NULL DEFAULT '',"
               " last_seen REAL, verdict TEXT, state_seq INTEGER, state_ts REAL,"
               " state_cause TEXT, state_retained INTEGER NOT NULL DEFAULT 0, pending INTEGER,"
               " next_seq INTEGER, dropped_base INTEGER, dropped_last INTEGER,"
               " condition TEXT)")  # fmt: skip
    db.execute("INSERT INTO sites (site_id, name) VALUES ('old', 'Old site')")
    db.commit()
    db.close()
    from tests.test_dashboard import feed  # noqa: PLC0415

    store = Store(path)
    old = SimSite("old")
    feed(store, live(old, LiveVerdict.DROPPED, NOW, reason="gone"))
    rows = {r.site_id: r for r in store.sites(time.time(), 60.0, 30.0)}
    assert rows["old"].name == "Old site"
    assert rows["old"].live is not None and rows["old"].live.verdict == "dropped"
    store.close()


def test_the_wall_lists_a_dropped_site_with_its_reason_and_the_header_counts_it(
    centre: tuple[Ingest, Dashboard],
    publisher: Callable[..., None],  # noqa: F811
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium; CI installs it)")
    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    _, dash = centre
    c1, c2, c3 = (SimSite(f"c{i}", parent="d1") for i in (1, 2, 3))
    publisher(*c1.birth(), *c2.birth(), *c3.birth())
    publisher(live(c1, LiveVerdict.IN_CALL, NOW), live(c2, LiveVerdict.IN_CALL, NOW))
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        page = signed_in_page(
            browser, dash.url, "view", size=(1920, 1080), timeout_ms=15_000, lang="en"
        )
        page.wait_for_function("() => window.__dash.tiles >= 3")
        header = "#session-live [data-live='{}'] b"
        page.wait_for_function(
            "() => document.querySelector(\"#session-live [data-live='in_call'] b\")"
            "?.textContent === '2'"
        )
        assert page.text_content(header.format("not_joined")) == "1"  # c3
        dropped_at = datetime.now(UTC) - timedelta(seconds=90)
        sent = time.monotonic()
        publisher(live(c1, LiveVerdict.DROPPED, dropped_at, reason="codec left the call"),
                  live(c2, LiveVerdict.POOR, NOW, reason="video loss 12 %", loss=12.0))  # fmt: skip
        row = page.wait_for_selector("#problem-list .problem[data-id='c1'][data-kind='dropped']")
        took = time.monotonic() - sent
        print(f"\nlive dropped published -> the wall's problem list: {took * 1000:.0f} ms")
        assert row is not None
        assert "codec left the call" in (row.text_content() or "")
        assert "call dropped · 1 min ago" in (row.text_content() or "")
        swatch = row.query_selector(".swatch")
        assert swatch is not None
        colour = swatch.evaluate("e => getComputedStyle(e).backgroundColor")
        assert colour == "rgb(255, 23, 68)"  # --dropped
        page.wait_for_selector("#problem-list .problem[data-id='c2'][data-kind='poor']")
        kinds = page.eval_on_selector_all(
            "#problem-list .problem", "els => els.map(e => e.dataset.kind)"
        )
        assert kinds[:2] == ["dropped", "poor"]  # what the operator acts on first
        page.wait_for_function(
            "() => document.querySelector(\"#session-live [data-live='dropped'] b\")"
            "?.textContent === '1'"
        )
        assert page.text_content(header.format("in_call")) == "0"
        # back in the call: it leaves the list
        publisher(live(c1, LiveVerdict.IN_CALL, datetime.now(UTC)))
        page.wait_for_selector("#problem-list .problem[data-id='c1']", state="detached")
        # A Poly codec counts lost packets and gives no percentage: the detail says the count.
        poly = (MediaStats(kind="audio", direction="in", lost_packets=40, jitter_ms=5.0),)
        publisher(live(c2, LiveVerdict.POOR, NOW, reason="audio in lost 40", media=poly))
        reason = "#problem-list .problem[data-id='c2']"
        page.wait_for_function(
            f'() => document.querySelector("{reason}")?.textContent.includes("audio in lost 40")'
        )
        page.click('.tile[data-id="c2"]')
        cell = page.wait_for_selector("#detail table.live-media tr:nth-child(2) td:nth-child(2)")
        assert cell is not None and cell.text_content() == "40 packets"
        browser.close()


def _row(site_id: str, live_row: fleet.LiveRow | None, **kw: Any) -> fleet.SiteRow:
    now = time.time()
    values: dict[str, Any] = {"availability": "online", "last_seen": now, "verdict": "ready"}
    return fleet.SiteRow(site_id, parent="d1", summoned=20, live=live_row, **(values | kw))


def test_the_live_picture_judges_unheard_agents_unknown_and_picks_the_most_watched_session():
    now = time.time()
    a = fleet.LiveRow("s-a", "A", now - 60, now + 600, "in_call", now - 50)
    b = fleet.LiveRow("s-b", "B", now - 60, now + 600, "dropped", now - 5, reason="gone")
    over = fleet.LiveRow("s-a", "A", now - 900, now - 1, "in_call", now - 800)
    sites = [
        _row("c1", a),
        _row("c2", a, availability="offline"),  # its last live state is not current
        _row("c3", b),  # watching another session: not this picture's
        _row("c4", over),  # its session is over
        fleet.SiteRow("x", summoned=None),  # neither summoned nor on the roster: not expected
    ]
    pic = fleet.live_picture(sites, now, 3.0)
    assert pic is not None and pic.session_id == "s-a"
    assert pic.counts == {"in_call": 1, "poor": 0, "dropped": 0, "unknown": 1, "not_joined": 2}
    assert [(s.site_id, s.state) for s in pic.sites] == [
        ("c2", "unknown"), ("c3", "not_joined"), ("c4", "not_joined"),
    ]  # fmt: skip
    assert fleet.live_picture([_row("c4", over)], now, 3.0) is None
    text = fleet.render(fleet.fleet_view(sites, now, 3.0, "vi"), "vi")
    assert "phiên họp A, đang diễn ra:" in text
    assert "c2 (?) CHƯA RÕ từ" in text and "c3 (?) CHƯA VÀO CUỘC GỌI từ" in text


def test_a_live_report_with_absurd_figures_is_refused_and_the_next_one_stored(
    tmp_path: Path,
    centre: tuple[Ingest, Dashboard],
    publisher: Callable[..., None],  # noqa: F811
) -> None:
    ingest, _ = centre
    c1 = SimSite("c1")
    publisher(*c1.birth())
    topic, raw, _ = live(c1, LiveVerdict.POOR, NOW, loss=5.0)
    bad = json.loads(raw)
    bad["path"][0]["loss_pct"] = 400  # an absurd number: the model refuses it
    publisher((topic, json.dumps(bad).encode(), True), (topic, b"\xff not json", True))
    publisher(live(c1, LiveVerdict.DROPPED, NOW))
    assert wait_until(lambda: ingest.rejected >= 2 and ingest._writer.is_alive(), 10)

    def stored() -> str | None:
        store = Store(ingest.settings.db_path)
        try:
            # The birth may not be written yet when the rejections are counted: no row, no verdict.
            rows = store.sites(time.time(), 60.0, 30.0, {"c1"})
        finally:
            store.close()
        row = rows[0].live if rows else None
        return row.verdict if row else None

    assert wait_until(lambda: stored() == "dropped", 10)
