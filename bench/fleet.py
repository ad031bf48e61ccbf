"""Fleet load benchmark: N simulated sites against a real mosquitto, with the centre ingesting.

Each site is its own MQTT 5 connection (own client id, own will, own `seq`), driven by the tiny
asyncio client on raw sockets in agent/sim/swarm.py (why not paho: see there). The payloads
are the real models (agent/sim/fleet_site.py): state every 10 s, checks every 60 s,
attendance every 30 s (a session is running), each published QoS 1.

The centre runs as `edge-agent centre serve` in a subprocess (or `--centres K` of them sharing
the load through the shared subscription and one database), so its CPU and RSS are its own
(summed over the K processes).
Printed: messages/s sustained, end-to-end latency p50/p99 (payload `ts` -> row stored in the
centre's database), messages lost (by seq: PUBACKed by the broker, never stored), the
centre's CPU and RSS, and mosquitto's and this process's CPU for context.

    .venv/bin/python bench/fleet.py [--sites 1000] [--seconds 60]
    .venv/bin/python bench/fleet.py --sweep 1000,2000,4000 --seconds 30   # find the ceiling
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.centre.store.base import open_database  # noqa: E402
from agent.sim.broker import Mosquitto  # noqa: E402
from agent.sim.fleet_site import SimSite  # noqa: E402
from agent.sim.swarm import SiteClient, drive  # noqa: E402

_TICK = os.sysconf("SC_CLK_TCK")
# Ten times an agent outside a session (state heartbeat 60 s, checks every 300 s), with a
# session's attendance: the stress rate.
STRESS_PERIODS = {"state": 10.0, "checks": 60.0, "attendance": 30.0}


# ---- process figures -----------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def rss_mb(pid: int, key: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Result:
    sites: int
    centres: int
    seconds: float
    published: int
    stored_in_window: int
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    unacked: int
    centre_cpu_pct: float
    centre_rss_mb: float
    centre_peak_rss_mb: float
    broker_cpu_pct: float
    bench_cpu_pct: float
    connect_s: float


def start_centre(
    workdir: Path,
    broker: Mosquitto,
    instance: str,
    store: Path | str | None = None,
    gc_log: Path | None = None,
) -> tuple[subprocess.Popen[str], Path | str]:
    """`centre serve` on `broker`, storing into `store` (an SQLite file, the default one in
    `workdir`, or a PostgreSQL URL); returns once it says it is storing. `gc_log`: where its
    full garbage collections of 20 ms or more are written (bench/gc_watch)."""
    db = store if store is not None else workdir / "centre.sqlite"
    where = f'db_url = "{db}"' if isinstance(db, str) else f'db_path = "{db}"'
    config = workdir / "centre.toml"
    config.write_text(
        f"{where}\nreport_interval_s = 10.0\nretained_wait_s = 0.5\n"
        f'[broker]\nhost = "127.0.0.1"\nport = {broker.port}\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "centre", "serve", "--config", str(config),
         "--log-level", "warning", "--instance", instance],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=open(workdir / f"centre-{instance}.log", "w"),  # noqa: SIM115
        text=True, env={**os.environ, **_gc_env(gc_log)},
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "storing" not in line:
        log = (workdir / f"centre-{instance}.log").read_text()
        raise RuntimeError(f"centre did not start: {log}")
    return proc, db


def _gc_env(gc_log: Path | None) -> dict[str, str]:
    if gc_log is None:
        return {"PYTHONPATH": str(ROOT)}
    return {"PYTHONPATH": f"{ROOT / 'bench' / 'gc_watch'}:{ROOT}", "BENCH_GC_LOG": str(gc_log)}


def gc_pauses(gc_log: Path, wall0: float, wall1: float) -> list[float]:
    """The full collections (ms) that ended in the window."""
    if not gc_log.exists():
        return []
    out = []
    for line in gc_log.read_text().splitlines():
        at, ms = (float(x) for x in line.split())
        if wall0 <= at <= wall1:
            out.append(ms)
    return out


def stored_count(db: Path | str) -> int:
    store = open_database(db)
    try:
        return int(store.execute("SELECT count(*) FROM reports").fetchone()[0])
    finally:
        store.close()


def latencies(db: Path | str, wall0: float, wall1: float) -> list[float]:
    """Publish -> stored latencies (ms) of the reports made in the window."""
    store = open_database(db)
    try:
        rows = store.execute(
            "SELECT ts, stored_at FROM reports WHERE ts >= ? AND ts < ?", (wall0, wall1)
        )
        return [(stored - ts) * 1000 for ts, stored in rows]
    finally:
        store.close()


def lost_reports(db: Path | str, acked: Iterable[tuple[str, Iterable[int]]]) -> int:
    """Seqs the broker acknowledged (an agent deletes them from its outbox) that the centre
    never stored: `acked` is (site_id, seqs) per site."""
    store = open_database(db)
    try:
        have: dict[str, set[int]] = {}
        for sid, seq in store.execute("SELECT site_id, seq FROM reports"):
            have.setdefault(sid, set()).add(seq)
    finally:
        store.close()
    return sum(len(set(seqs) - have.get(sid, set())) for sid, seqs in acked)


async def run(n_sites: int, seconds: float, periods: dict[str, float], n_centres: int) -> Result:
    workdir = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    broker = Mosquitto(workdir / "broker", persistence=False).start()
    assert broker.proc is not None
    centres = [start_centre(workdir, broker, f"bench{i}") for i in range(n_centres)]
    db = centres[0][1]
    pids = [c[0].pid for c in centres]
    try:
        clients = [
            SiteClient(SimSite(f"site-{i:05d}", tier="commune", parent=f"d-{i // 20:04d}",
                               check_interval_s=periods["checks"]))
            for i in range(n_sites)
        ]  # fmt: skip
        t0 = time.monotonic()
        gate = asyncio.Semaphore(64)

        async def connect(c: SiteClient) -> None:
            async with gate:
                await c.connect(broker.port)
                c.announce()

        await asyncio.gather(*(connect(c) for c in clients))
        connect_s = time.monotonic() - t0
        await asyncio.sleep(2.0)  # births stored; measure the steady state only

        loop = asyncio.get_running_loop()
        wall0, cpu_c0 = time.time(), sum(map(cpu_seconds, pids))
        cpu_b0, cpu_self0 = cpu_seconds(broker.proc.pid), time.process_time()
        published0 = sum(len(c.sent) for c in clients)
        await asyncio.gather(*(drive(c, periods, loop.time() + seconds) for c in clients))
        wall1, cpu_c1 = time.time(), sum(map(cpu_seconds, pids))
        cpu_b1, cpu_self1 = cpu_seconds(broker.proc.pid), time.process_time()
        published = sum(len(c.sent) for c in clients) - published0

        # wait for the PUBACKs and for the centre to store everything the broker took
        expected = sum(len(c.sent) for c in clients)
        end = time.monotonic() + 20
        while time.monotonic() < end and (
            any(c.unacked for c in clients) or stored_count(db) < expected
        ):
            await asyncio.sleep(0.25)
        await asyncio.sleep(0.5)
        rss = sum(rss_mb(p) for p in pids)
        peak = sum(rss_mb(p, "VmHWM") for p in pids)
        for c in clients:
            await c.close()

        lat = latencies(db, wall0, wall1)
        lost = lost_reports(db, ((c.site.site_id, c.acked_seqs) for c in clients))
        lat.sort()
        q = statistics.quantiles(lat, n=100) if len(lat) > 1 else [0.0] * 99
        window = wall1 - wall0
        return Result(
            sites=n_sites, centres=n_centres, seconds=round(window, 1), published=published,
            stored_in_window=len(lat), msgs_per_s=round(len(lat) / window, 1),
            p50_ms=round(q[49], 1), p99_ms=round(q[98], 1), max_ms=round(lat[-1], 1) if lat else 0,
            lost=lost, unacked=sum(len(c.unacked) for c in clients),
            centre_cpu_pct=round(100 * (cpu_c1 - cpu_c0) / window, 1),
            centre_rss_mb=round(rss, 1), centre_peak_rss_mb=round(peak, 1),
            broker_cpu_pct=round(100 * (cpu_b1 - cpu_b0) / window, 1),
            bench_cpu_pct=round(100 * (cpu_self1 - cpu_self0) / window, 1),
            connect_s=round(connect_s, 2),
        )  # fmt: skip
    finally:
        for proc, _ in centres:
            proc.terminate()
        for proc, _ in centres:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.stop()


def show(r: Result) -> str:
    ok = r.lost == 0 and r.p99_ms < 1000
    return (
        f"{r.sites:>6} sites, {r.centres} centre(s)  {r.msgs_per_s:>7.1f} msg/s  "
        f"p50 {r.p50_ms:>7.1f} ms  "
        f"p99 {r.p99_ms:>7.1f} ms  max {r.max_ms:>7.1f} ms  lost {r.lost}  "
        f"centre CPU {r.centre_cpu_pct:>5.1f}% RSS {r.centre_rss_mb:.0f} MB "
        f"(peak {r.centre_peak_rss_mb:.0f})  mosquitto CPU {r.broker_cpu_pct:.1f}%  "
        f"bench CPU {r.bench_cpu_pct:.1f}%  connect {r.connect_s:.1f} s  "
        f"{'OK' if ok else 'OVER'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--state-s", type=float, default=STRESS_PERIODS["state"])
    parser.add_argument("--checks-s", type=float, default=STRESS_PERIODS["checks"])
    parser.add_argument("--attendance-s", type=float, default=STRESS_PERIODS["attendance"])
    parser.add_argument("--sweep", help="comma-separated site counts; stops at the first over")
    parser.add_argument("--centres", type=int, default=1, help="centre processes sharing the "
                        "load (MQTT shared subscription, one database)")  # fmt: skip
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    periods = {"state": args.state_s, "checks": args.checks_s, "attendance": args.attendance_s}
    sizes = [int(s) for s in args.sweep.split(",")] if args.sweep else [args.sites]
    results = []
    for n in sizes:
        r = asyncio.run(run(n, args.seconds, periods, args.centres))
        results.append(r)
        sys.stdout.write((json.dumps(asdict(r)) if args.json else show(r)) + "\n")
        sys.stdout.flush()
        if r.lost or r.p99_ms >= 1000:
            break
    return 0 if all(r.lost == 0 and r.p99_ms < 1000 for r in results[:1]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
