"""/metrics: the centre in the Prometheus text format (docs/metrics.md), on the dashboard's
listener. The one module that imports prometheus_client.

Two kinds of figures:
- read at each scrape, from what every centre process shares (so any process answers the
  same): sites by condition and tier, the running session's live states and attendance (the
  fleet watch's picture, which re-reads the store every tick for the page: a scrape adds no
  read of 20,000 sites), and open alerts, incidents and the notification queue (a few
  indexed COUNTs);
- counted by this process as it stores reports (centre/metrics.py): counters and the lag
  histogram, this process's share only.

No series has a site label: at 20,000 sites one label per site is 20,000 series per figure,
and the moment many sites go wrong at once (a broker outage: every site down) is when
Prometheus would be hit hardest. Which sites are in trouble is what the page and the alerts
say; Prometheus gets the counts. Label values are closed sets (conditions, live states,
severities, alert kinds, the three tiers and `other`): a site's text never becomes one.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from agent.centre import fleet
from agent.centre.alerts.model import AlertKind, AlertState, NotificationStatus, Severity
from agent.centre.alerts.queue import NotificationQueue
from agent.centre.alerts.store import AlertStore
from agent.centre.metrics import INGEST, LAG_BUCKETS, IngestStats
from agent.centre.web import live
from agent.messages import message

# The text format every Prometheus reads (Debian 12's 2.42 too); our names need nothing newer.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OTHER_TIER = "other"
FAILED_WINDOW_S = 86400.0


def _tier(value: object) -> str:
    return value if isinstance(value, str) and value in fleet.TIER_ORDER else OTHER_TIER


class CentreCollector(Collector):
    def __init__(self, watch: live.FleetWatch, db_path: Path | str, ingest: IngestStats) -> None:
        self.watch = watch
        self.db_path = db_path
        self.ingest = ingest

    def collect(self) -> Iterator[Metric]:
        yield from self._fleet()
        yield from self._alerts(time.time())
        yield from self._ingest()

    def _fleet(self) -> Iterator[Metric]:
        w = self.watch
        if not w.ticks:
            w.refresh()  # the first scrape before the watch's first tick
        tiles = list(w.tiles.values())  # the watch replaces tiles while we count
        by = Counter((t["c"], _tier(t["tier"])) for t in tiles)
        sites = GaugeMetricFamily(
            "edge_agent_sites",
            "Sites by condition (ready, degraded, fault, offline, silent, never_seen, unknown) "
            "and tier (province, district, commune; other: a tier the roster does not use).",
            labels=["condition", "tier"],
        )
        tiers = sorted({t for _, t in by} | {"province", "district", "commune"})
        for tier in tiers:
            for cond in fleet.CONDITION_ORDER:
                sites.add_metric([cond, tier], by.get((cond, tier), 0))
        yield sites

        picture = w.live  # None outside sessions
        running = picture is not None
        yield GaugeMetricFamily(
            "edge_agent_session_running",
            "1 while a session runs (some site's live state names one not yet ended).",
            value=1 if running else 0,
        )
        in_session = GaugeMetricFamily(
            "edge_agent_session_sites",
            "Sites the running session expects, by live state: in_call, poor, dropped, "
            "unknown (agent unheard), not_joined (no live state); 0 outside sessions.",
            labels=["state"],
        )
        counts = picture.counts if picture is not None else {}
        for state in fleet.LIVE_ORDER:
            in_session.add_metric([state], counts.get(state, 0))
        yield in_session

        att = w.attendance
        for name, text, value in (
            ("counted", "People counted at the summoned sites", att.counted),
            ("summoned", "People summoned", att.expected),
            ("sites", "Sites of the session's attendance report", att.sites),
            ("absent_sites", "Summoned sites that sent no attendance sample", att.absent),
        ):
            yield GaugeMetricFamily(
                f"edge_agent_attendance_{name}",
                f"{text}, in the latest session with attendance (as `centre report`).",
                value=value,
            )

    def _alerts(self, now: float) -> Iterator[Metric]:
        alerts = AlertStore(self.db_path)
        queue = NotificationQueue(self.db_path)
        try:
            firing = Counter(
                (r[0], r[1])
                for r in alerts.db.execute(
                    "SELECT severity, kind FROM alerts WHERE state = ?", (AlertState.FIRING,)
                )
            )
            incidents = Counter(
                (r[0], bool(r[1]))
                for r in alerts.db.execute(
                    "SELECT severity, acked_at IS NOT NULL FROM incidents WHERE closed_at IS NULL"
                )
            )
            backlog = queue.backlog()
            failed = alerts.db.execute(
                "SELECT count(*) FROM notifications WHERE status = ? AND done_at >= ?",
                (NotificationStatus.FAILED, now - FAILED_WINDOW_S),
            ).fetchone()[0]
        finally:
            queue.close()
            alerts.close()
        family = GaugeMetricFamily(
            "edge_agent_alerts_firing",
            "Alerts firing now, by severity and kind.",
            labels=["severity", "kind"],
        )
        for sev in Severity:
            for kind in AlertKind:
                family.add_metric([sev.value, kind.value], firing.get((sev.value, kind.value), 0))
        yield family
        family = GaugeMetricFamily(
            "edge_agent_incidents_open",
            "Incidents not closed, by severity and whether someone acknowledged them.",
            labels=["severity", "acked"],
        )
        for sev in Severity:
            for acked in (False, True):
                family.add_metric(
                    [sev.value, str(acked).lower()], incidents.get((sev.value, acked), 0)
                )
        yield family
        yield GaugeMetricFamily(
            "edge_agent_notifications_backlog",
            "Notifications queued and not yet sent nor given up.",
            value=backlog,
        )
        yield GaugeMetricFamily(
            "edge_agent_notifications_failed_24h",
            "Notifications given up (every attempt failed) in the last 24 hours.",
            value=failed,
        )

    def _ingest(self) -> Iterator[Metric]:
        f = self.ingest.figures()
        stored = CounterMetricFamily(
            "edge_agent_reports_stored",
            "Reports this centre process stored, by kind.",
            labels=["kind"],
        )
        for kind, n in sorted(f.stored.items()):
            stored.add_metric([kind], n)
        yield stored
        yield CounterMetricFamily(
            "edge_agent_reports_rejected",
            "Reports this centre process refused (unreadable, another site's, out of range).",
            value=f.rejected,
        )
        cumulative, buckets = 0, []
        for bound, n in zip((*LAG_BUCKETS, float("inf")), f.lag_counts, strict=True):
            cumulative += n
            buckets.append(("+Inf" if bound == float("inf") else f"{bound:g}", cumulative))
        yield HistogramMetricFamily(
            "edge_agent_report_lag_seconds",
            "From a live report's making at the site to its commit here (not counting "
            "replayed history nor retained copies).",
            buckets=buckets,
            sum_value=f.lag_sum,
        )


def endpoint(
    token: str, watch: live.FleetWatch, db_path: Path | str, ingest: IngestStats = INGEST
) -> Callable[[Request], Awaitable[Response]]:
    """The /metrics handler. With a token, a scrape must bring it as a bearer token; the
    operators' session cookie is neither needed nor taken."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CentreCollector(watch, db_path, ingest))
    expected = f"Bearer {token}".encode()

    async def handler(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if token and not hmac.compare_digest(given, expected):
            said = message("web.metrics_token")
            return JSONResponse(
                {"error": said.text, "code": said.id},
                401,
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        body = await asyncio.to_thread(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE)

    return handler
