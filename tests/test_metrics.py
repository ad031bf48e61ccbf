"""/metrics on the dashboard's real listener (uvicorn on 127.0.0.1), its exposition parsed
with prometheus_client's own parser: known figures from a store filled with real payloads
(sites, live states, attendance, alerts, incidents, notifications) and from the ingest's
counters; and the optional bearer token (401 without it, whatever cookie comes along)."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.centre.alerts.model import (
    Alert,
    AlertKind,
    Channel,
    ChannelKind,
    Notification,
    NotificationEvent,
    Severity,
)
from agent.centre.alerts.queue import NotificationQueue
from agent.centre.alerts.store import AlertStore
from agent.centre.metrics import INGEST, LAG_BUCKETS
from agent.centre.store import Incoming, Store
from agent.centre.web.accounts import Accounts, Role
from agent.centre.web.server import Dashboard
from agent.checks.live import LiveVerdict
from agent.checks.model import Status
from agent.messages import message
from agent.sim.fleet_site import SimSite
from tests.test_centre_live import live
from tests.test_dashboard import PASSWORD, Client, _payload, feed, settings_for

TOKEN = "scrape-me-7f3a"


def _alert(site: str, kind: AlertKind, severity: Severity) -> Alert:
    now = time.time()
    return Alert(
        key=f"r-{kind.value}:{site}", rule=f"r-{kind.value}", kind=kind, severity=severity,
        site_id=site, since=now - 60, fired_at=now, reason=message("notify.kind.site_down"),
    )  # fmt: skip


def _note(key: str) -> Notification:
    return Notification(
        key=key, contact_id="tech", channel=Channel(kind=ChannelKind.WEBHOOK,
        address="http://127.0.0.1:9/hook"), language="vi", event=NotificationEvent.RAISED,
        alerts=(_alert("c1", AlertKind.SITE_DOWN, Severity.WARNING),), created_at=time.time(),
    )  # fmt: skip


def fill(db: Path) -> None:
    """Five sites (one of a tier no roster uses), two in a running session, attendance,
    three alerts (one resolved), two open incidents (one acknowledged), three notifications
    (one pending, one sent, one given up)."""
    sites = {
        "p1": SimSite("p1", tier="province"),  # 25 summoned unless said
        "c1": SimSite("c1", parent="d1", expected=30),
        "c2": SimSite("c2", parent="d1", expected=30),
        "c3": SimSite("c3", parent="d1", expected=10),
        "x1": SimSite("x1", tier="hamlet"),
    }
    sites["c2"].statuses["camera"] = Status.FAIL
    store = Store(db)
    for s in sites.values():
        feed(store, *s.birth())
    feed(store, sites["c3"].availability("offline", "connection lost (will)"))
    feed(store, sites["c1"].attendance("s-1", 20), sites["c2"].attendance("s-1", 25))
    since = datetime.now(UTC) - timedelta(minutes=1)
    feed(store, live(sites["c1"], LiveVerdict.IN_CALL, since))
    feed(store, live(sites["c2"], LiveVerdict.DROPPED, since, reason="codec left the call"))
    store.close()

    alerts = AlertStore(db)
    alerts.raised(_alert("c3", AlertKind.SITE_DOWN, Severity.CRITICAL))
    alerts.raised(_alert("c2", AlertKind.CALL_DROPPED, Severity.WARNING))
    alerts.raised(_alert("c1", AlertKind.MEDIA_POOR, Severity.WARNING))
    alerts.resolved(f"r-{AlertKind.MEDIA_POOR.value}:c1", time.time())
    alerts.ack(f"r-{AlertKind.CALL_DROPPED.value}:c2", "anh", time.time())
    alerts.close()
    queue = NotificationQueue(db)
    queue.enqueue([_note("n1"), _note("n2"), _note("n3")])
    ids = {n.key: n.id for n in queue.due(time.time() + 1)}
    queue.sent(ids["n2"], time.time())
    queue.failed(ids["n3"], "connection refused")
    queue.close()


def scrape(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, Any]:
    req = urllib.request.Request(url + "metrics", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), err.headers


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:  # fmt: skip
    return found[(name, frozenset(labels.items()))]


@pytest.fixture
def dash(tmp_path: Path, request: pytest.FixtureRequest) -> Any:
    settings = settings_for(tmp_path, **getattr(request, "param", {}))
    fill(settings.db_path)
    accounts = Accounts(settings.db_path)
    accounts.add("op", PASSWORD, Role.OPERATOR)
    accounts.close()
    d = Dashboard(settings, "127.0.0.1:0", with_broker=False).start()
    yield d
    d.stop()


def test_the_exposition_says_what_the_store_holds(dash: Dashboard) -> None:
    # The ingest's counters: a live report 0.3 s late, a replayed one (not a lag), a refusal.
    site = SimSite("c9")
    made = datetime.now(UTC)
    fresh = Incoming(_payload(site.state()), False, time.time())
    replay = Incoming(_payload(site.state(historical=True)), False, time.time())
    before = INGEST.figures()
    INGEST.stored([fresh, replay], made.timestamp() + 0.3)
    INGEST.rejected()

    status, text, headers = scrape(dash.url)
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    found = samples(text)

    sites = {
        (cond, tier): value(found, "edge_agent_sites", condition=cond, tier=tier)
        for cond in ("ready", "degraded", "fault", "offline", "silent", "never_seen", "unknown")
        for tier in ("province", "district", "commune", "other")
    }
    assert {k: v for k, v in sites.items() if v} == {
        ("ready", "province"): 1, ("ready", "commune"): 1, ("fault", "commune"): 1,
        ("offline", "commune"): 1, ("ready", "other"): 1,
    }  # fmt: skip
    assert not any(labels for (name, labels) in found if "hamlet" in str(labels))

    assert value(found, "edge_agent_session_running") == 1
    live_states = {
        s: value(found, "edge_agent_session_sites", state=s)
        for s in ("in_call", "poor", "dropped", "unknown", "not_joined")
    }
    # every site has a summoned number: p1, c3 (offline) and x1 sent no live state
    assert live_states == {"in_call": 1, "poor": 0, "dropped": 1, "unknown": 0, "not_joined": 3}

    assert value(found, "edge_agent_attendance_counted") == 45
    assert value(found, "edge_agent_attendance_summoned") == 30 + 30 + 10 + 25 + 25
    assert value(found, "edge_agent_attendance_absent_sites") == 3  # p1, c3, x1

    firing = {
        (labels, v) for (name, labels), v in found.items()
        if name == "edge_agent_alerts_firing" and v
    }  # fmt: skip
    assert firing == {
        (frozenset({("severity", "critical"), ("kind", "site_down")}), 1),
        (frozenset({("severity", "warning"), ("kind", "call_dropped")}), 1),
    }
    assert len([k for k in found if k[0] == "edge_agent_alerts_firing"]) == 2 * len(AlertKind)
    assert value(found, "edge_agent_incidents_open", severity="critical", acked="false") == 1
    assert value(found, "edge_agent_incidents_open", severity="warning", acked="true") == 1
    assert value(found, "edge_agent_incidents_open", severity="warning", acked="false") == 0
    assert value(found, "edge_agent_notifications_backlog") == 1
    assert value(found, "edge_agent_notifications_failed_24h") == 1

    assert value(found, "edge_agent_reports_stored_total", kind="state") == (
        before.stored.get("state", 0) + 2
    )
    assert value(found, "edge_agent_reports_rejected_total") == before.rejected + 1
    assert value(found, "edge_agent_report_lag_seconds_count") == sum(before.lag_counts) + 1
    le_025 = sum(before.lag_counts[: LAG_BUCKETS.index(0.25) + 1])
    le_05 = sum(before.lag_counts[: LAG_BUCKETS.index(0.5) + 1])
    assert value(found, "edge_agent_report_lag_seconds_bucket", le="0.25") == le_025
    assert value(found, "edge_agent_report_lag_seconds_bucket", le="0.5") == le_05 + 1
    assert value(found, "edge_agent_report_lag_seconds_sum") == pytest.approx(
        before.lag_sum + 0.3, abs=0.01
    )
    # no series names a site
    assert not [k for k in found if any(n == "site_id" for n, _ in k[1])]


@pytest.mark.parametrize("dash", [{"web_metrics_token": TOKEN}], indirect=True)
def test_a_set_token_is_required_and_a_login_is_not_taken_for_it(dash: Dashboard) -> None:
    status, body, headers = scrape(dash.url)
    assert status == 401
    assert headers["WWW-Authenticate"].startswith("Bearer")
    assert "web_metrics_token" in body and "edge_agent_sites" not in body
    assert scrape(dash.url, {"Authorization": f"Bearer {TOKEN}x"})[0] == 401
    assert scrape(dash.url, {"Authorization": TOKEN})[0] == 401
    # an operator's session cookie is no substitute
    client = Client(dash.url)
    assert client.login("op")[0] == 200
    cookie = "; ".join(f"{c.name}={c.value}" for c in client.jar)
    assert scrape(dash.url, {"Cookie": cookie})[0] == 401
    status, text, _ = scrape(dash.url, {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200 and "edge_agent_sites{" in text


def test_without_a_token_a_scrape_needs_no_login(dash: Dashboard) -> None:
    status, text, _ = scrape(dash.url)
    assert status == 200 and "edge_agent_notifications_backlog" in text
    # while the page's API still does
    assert Client(dash.url).call("GET", "/api/fleet")[0] == 401
