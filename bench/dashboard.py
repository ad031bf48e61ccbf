"""Dashboard load benchmark: N simulated sites (each its own MQTT connection, the real payload
models, bench/fleet.py's raw-socket clients) against a real mosquitto and
`edge-agent centre serve --http` in a subprocess, with the page open in headless Chromium.

Printed: time to first render (navigation start -> every tile in the DOM and painted), the
update latency (a site publishes a state change -> its tile has the new colour in the page;
p50/p99 over --changes changes, publish and page clocks are the same host's), the page's JS
heap and DOM size, and the centre's CPU and RSS while the page is open.

With the problem list on: --faults sites start with a failing camera, so the list beside the
tiles has entries to sort and redraw on every change (the flips add and remove more).

    .venv/bin/python bench/dashboard.py [--sites 726] [--changes 50] [--faults 12]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from cryptography.hazmat.primitives.serialization import (  # noqa: E402
    Encoding,
    NoEncryption,
    PrivateFormat,
)
from fleet import SiteClient, cpu_seconds, drive, rss_mb  # noqa: E402

from agent.checks.model import Status  # noqa: E402
from agent.sim.broker import Mosquitto  # noqa: E402
from agent.sim.fleet_site import SimSite  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PASSWORD = "bench-password"


class Fleet:
    """The simulated sites on an asyncio loop in a thread (playwright's sync API wants the
    main thread)."""

    def __init__(self, n: int, port: int, faults: int = 0) -> None:
        self.port = port
        self.clients = [
            SiteClient(SimSite(f"site-{i:05d}", tier="commune" if i % 50 else "district",
                               parent=f"d-{i // 50:03d}", check_interval_s=60.0))
            for i in range(n)
        ]  # fmt: skip
        for client in random.sample(self.clients, min(faults, n)):
            client.site.statuses["camera"] = Status.FAIL
        self.load: Any = None
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _connect(self) -> None:
        gate = asyncio.Semaphore(64)

        async def one(c: SiteClient) -> None:
            async with gate:
                await c.connect(self.port)
                c.announce()
                c.publish(c.site.attendance("bench-session", random.randint(15, 25)))

        await asyncio.gather(*(one(c) for c in self.clients))

    def connect(self) -> float:
        t0 = time.monotonic()
        self.run(self._connect())
        return time.monotonic() - t0

    def background(self, seconds: float) -> None:
        """The steady load while measuring: state every 10 s, checks every 60 s."""
        periods = {"state": 10.0, "checks": 60.0, "attendance": 30.0}
        stop_at = self.loop.time() + seconds

        async def all_of_them() -> None:
            await asyncio.gather(*(drive(c, periods, stop_at) for c in self.clients))

        self.load = asyncio.run_coroutine_threadsafe(all_of_them(), self.loop)

    def flip(self, client: SiteClient) -> str:
        """Publish a state change (ok <-> camera fail); the tile's new condition."""
        site = client.site
        bad = site.statuses["camera"] is Status.OK
        site.statuses["camera"] = Status.FAIL if bad else Status.OK
        # Made on the loop's thread: the background load takes seqs from the same site.
        self.loop.call_soon_threadsafe(lambda: client.publish(site.state("check")))
        return "fault" if bad else "ready"

    def close(self) -> None:
        if self.load is not None:
            self.load.cancel()

        async def close_all() -> None:
            for c in self.clients:
                await c.close()

        self.run(close_all())
        self.loop.call_soon_threadsafe(self.loop.stop)


def start_centre(workdir: Path, broker: Mosquitto) -> tuple[subprocess.Popen[str], str, Path]:
    key = Ed25519PrivateKey.generate()
    (workdir / "centre.key").write_bytes(
        key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    )
    db = workdir / "centre.sqlite"
    config = workdir / "centre.toml"
    config.write_text(
        f'db_path = "{db}"\nreport_interval_s = 10.0\nretained_wait_s = 0.5\n'
        f'command_key = "{workdir / "centre.key"}"\n'
        f'[broker]\nhost = "127.0.0.1"\nport = {broker.port}\n'
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "agent", "centre"]
    subprocess.run([*cli, "user", "add", "bench", "--role", "viewer", "--config", str(config)],
                   input=PASSWORD + "\n", text=True, check=True, cwd=ROOT, env=env,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    proc = subprocess.Popen(
        [*cli, "serve", "--config", str(config), "--log-level", "warning",
         "--http", "127.0.0.1:0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=open(workdir / "centre.log", "w"),  # noqa: SIM115
        text=True, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    for _ in range(3):
        line = proc.stdout.readline()
        if "dashboard on " in line:
            return proc, line.split("dashboard on ")[1].strip(), db
    raise RuntimeError(f"centre did not start: {(workdir / 'centre.log').read_text()}")


def sites_with_state(db: Path) -> int:
    with sqlite3.connect(db, timeout=30) as con:
        return int(
            con.execute("SELECT count(*) FROM sites WHERE verdict IS NOT NULL").fetchone()[0]
        )


def main() -> int:  # noqa: PLR0915 - one linear measurement
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=726)
    parser.add_argument("--changes", type=int, default=50)
    parser.add_argument("--faults", type=int, default=12, help="sites failing from the start")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright  # noqa: PLC0415

    workdir = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    broker = Mosquitto(workdir / "broker", persistence=False).start()
    proc, url, db = start_centre(workdir, broker)
    fleet = Fleet(args.sites, broker.port, args.faults)
    out: dict[str, Any] = {"sites": args.sites}
    try:
        out["connect_s"] = round(fleet.connect(), 2)
        end = time.monotonic() + 60
        while sites_with_state(db) < args.sites and time.monotonic() < end:
            time.sleep(0.2)
        fleet.background(600)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            page.goto(url)
            page.fill("#login-name", "bench")
            page.fill("#login-password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_selector("#app:not([hidden])")
            # Measured: a fresh navigation with the session already open (a wall screen
            # reloading), navigation start -> every tile in the DOM and a frame painted.
            renders = []
            for _ in range(3):
                page.goto(url)
                page.wait_for_function(
                    f"() => window.__dash && window.__dash.tiles >= {args.sites} "
                    "&& window.__dash.firstRender !== null",
                    timeout=60_000,
                )
                renders.append(page.evaluate("window.__dash.firstRender"))
            out["first_render_ms"] = [round(r) for r in renders]
            out["tiles_in_dom"] = page.locator(".tile").count()
            out["problems_listed"] = page.locator("#problem-list .problem").count()
            page.evaluate("window.__dash.trace = true")
            time.sleep(1.0)
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            lat: list[float] = []
            missed = 0
            for client in random.sample(fleet.clients, min(args.changes, len(fleet.clients))):
                sid = client.site.site_id
                published = time.time()
                want = fleet.flip(client)
                try:
                    page.wait_for_function(
                        f"() => window.__dash.updates.some(u => u[0] === '{sid}' && "
                        f"u[1] === '{want}' && u[2] >= {published * 1000})",
                        timeout=10_000, polling=20,
                    )  # fmt: skip
                except Exception:  # a missed update is counted, not fatal
                    missed += 1
                    continue
                seen = page.evaluate(
                    f"window.__dash.updates.filter(u => u[0] === '{sid}' && u[1] === '{want}' "
                    f"&& u[2] >= {published * 1000})[0][2]"
                )
                lat.append(seen - published * 1000)
                time.sleep(random.uniform(0.05, 0.3))
            window = time.monotonic() - t0
            lat.sort()
            q = (
                statistics.quantiles(lat, n=100, method="inclusive")
                if len(lat) > 1
                else [lat[0]] * 99
            )
            out |= {
                "update_p50_ms": round(q[49]),
                "update_p99_ms": round(q[98]),
                "update_max_ms": round(lat[-1]),
                "updates_measured": len(lat),
                "updates_missed": missed,
                "js_heap_mb": round(page.evaluate("performance.memory.usedJSHeapSize") / 2**20, 1),
                "dom_nodes": page.evaluate("document.getElementsByTagName('*').length"),
                "centre_cpu_pct": round(100 * (cpu_seconds(proc.pid) - cpu0) / window, 1),
                "centre_rss_mb": round(rss_mb(proc.pid), 1),
            }
            browser.close()
    finally:
        fleet.close()
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        broker.stop()
    if args.json:
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        sys.stdout.write(
            f"{out['sites']} sites: first render {out['first_render_ms']} ms "
            f"({out['tiles_in_dom']} tiles, {out['problems_listed']} in the problem list), "
            f"update latency p50 {out['update_p50_ms']} ms "
            f"p99 {out['update_p99_ms']} ms max {out['update_max_ms']} ms "
            f"({out['updates_measured']} measured, {out['updates_missed']} missed), "
            f"JS heap {out['js_heap_mb']} MB, {out['dom_nodes']} DOM nodes, centre CPU "
            f"{out['centre_cpu_pct']}% RSS {out['centre_rss_mb']} MB, "
            f"connect {out['connect_s']} s\n"
        )
    return 0 if not out.get("updates_missed") else 1


if __name__ == "__main__":
    raise SystemExit(main())
