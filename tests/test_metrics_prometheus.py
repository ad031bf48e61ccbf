"""The Grafana dashboard (docs/grafana/edge-agent.json) against a real Prometheus (Debian's
`prometheus`, started here with its own config and data folder, never the system service)
scraping a real `edge-agent centre serve --http` with a bearer token, fed by a real mosquitto:
every PromQL expression of the dashboard returns data without error.

One module on purpose: Prometheus's first scrape takes seconds."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.checks.live import LiveVerdict
from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import SimSite
from tests.fixtures.broker import ROOT, dump_toml, wait_until
from tests.test_alert_delivery import free_port
from tests.test_centre import centre_config, publisher  # noqa: F401 - a fixture
from tests.test_centre_live import live

PROMETHEUS = shutil.which("prometheus")
DASHBOARD = ROOT / "docs" / "grafana" / "edge-agent.json"
TOKEN = "prom-scrape-51c2"

pytestmark = pytest.mark.skipif(
    PROMETHEUS is None, reason="needs Debian's prometheus (./run test installs it)"
)


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in board["panels"] for t in p.get("targets", [])]


def query(base: str, expr: str) -> dict[str, Any]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=10) as resp:
        return dict(json.load(resp))


@pytest.fixture
def centre_http(broker: Mosquitto, tmp_path: Path, publisher: Callable[..., None]) -> Iterator[str]:  # noqa: F811 - a fixture
    port = free_port()
    config = tmp_path / "centre.toml"
    config.write_text(dump_toml(centre_config(broker, tmp_path, web_metrics_token=TOKEN)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "centre", "serve", "--config", str(config),
         "--http", f"127.0.0.1:{port}"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = ""
    while "dashboard on" not in line:
        line = proc.stdout.readline()
        assert line, "the centre stopped before its dashboard started"
    since = datetime.now(UTC) - timedelta(minutes=1)
    sites = [SimSite(f"c{i}", parent="d1") for i in range(3)]
    for s in sites:
        publisher(*s.birth())
    publisher(sites[0].attendance("s-1", 20), live(sites[0], LiveVerdict.IN_CALL, since))
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.communicate(timeout=20)


@pytest.fixture
def prometheus(tmp_path: Path, centre_http: str) -> Iterator[str]:
    assert PROMETHEUS is not None
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: edge-agent-centre\n"
        "    authorization:\n"
        f"      credentials: {TOKEN}\n"
        "    static_configs:\n"
        f"      - targets: ['{centre_http}']\n"
    )
    log = (tmp_path / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        yield base
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()


def test_every_dashboard_query_returns_data_from_a_real_prometheus(prometheus: str) -> None:
    queries = dashboard_queries()
    assert len(queries) >= 10

    def scraped() -> bool:
        try:
            # rate() needs two samples in its window; the token was accepted (up is 1)
            res = query(prometheus, 'count_over_time(up{job="edge-agent-centre"}[1m]) >= 3')
            up = query(prometheus, 'up{job="edge-agent-centre"} == 1')
        except OSError:
            return False
        return bool(res["data"]["result"]) and bool(up["data"]["result"])

    started = time.monotonic()
    assert wait_until(scraped, 60, 0.5), "Prometheus did not scrape the centre"
    print(f"\nfirst usable scrapes after {time.monotonic() - started:.1f} s")
    empty = {}
    for expr in queries:
        answer = query(prometheus, expr)
        assert answer["status"] == "success", (expr, answer)
        if not answer["data"]["result"]:
            empty[expr] = answer
    assert not empty, empty
    stored = query(prometheus, "sum(edge_agent_reports_stored_total)")["data"]["result"]
    assert float(stored[0]["value"][1]) >= 3 * 3 + 2  # three births, attendance and live
