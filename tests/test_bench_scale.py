"""bench/scale.py, tiny: 30 sites on 2 regional mosquittos bridged to a central one, two centre
processes, on SQLite and on PostgreSQL in one run: nothing lost, every part's CPU and memory
reported, and the extrapolation reads the parts it measured."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench_kit import load_bench

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "scale.py"


@pytest.mark.broker
def test_tiny_run_on_both_stores_loses_nothing_and_reports_every_part():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--sites", "30", "--regions", "2", "--seconds", "4",
         "--stress", "--per-generator", "20", "--store", "both", "--json"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["store"] for r in runs] == ["sqlite", "postgres"]
    for r in runs:
        assert r["error"] == "" and r["lost"] == 0 and r["unacked"] == 0, r
        assert r["generators"] == 2  # 30 sites, at most 20 per process
        # Every report the bench offered in the window was stored: 30 sites at the stress
        # rate (0.25 msg/s each) for ~4 s.
        assert r["msgs_per_s_offered"] > 0 and r["p99_ms"] < 1000, r
        parts = {p["name"]: p for p in r["parts"]}
        want = {"mosquitto central", "mosquitto r001", "mosquitto r002", "centre 0", "centre 1",
                "generators"}  # fmt: skip
        if r["store"] == "postgres":
            want.add("postgresql")
        assert set(parts) == want
        for p in parts.values():
            assert p["rss_mb"] > 0 and p["cpu_pct"] >= 0, p
        assert parts["centre 0"]["cpu_pct"] + parts["centre 1"]["cpu_pct"] > 0
        # each centre's full collections are watched (a list, empty when none took 20 ms)
        assert all(isinstance(parts[c]["gc_pauses_ms"], list) for c in ("centre 0", "centre 1"))
        assert parts["centre 0"]["gc_log"].endswith("gc-scale0.log")
        if r["store"] == "postgres":
            assert len(parts["postgresql"]["pids"]) > 1  # the postmaster and its children


def test_extrapolation_splits_fixed_and_per_site_costs():
    bench = load_bench("scale")

    def result(sites: int, centre_cpu: float, centre_rss: float):
        r = bench.Result("postgres", sites, regions=3, centres=2, generators=1)
        r.parts = [bench.Part(f"centre {i}", [1], 0.5, cpu_pct=centre_cpu, rss_mb=centre_rss)
                   for i in range(2)]  # fmt: skip
        return r

    # 10 % of a core and 60 MB per centre at 2000 sites, 30 % and 80 MB at 6000: each centre
    # has 1000 then 3000 sites, so 0.01 % and 0.01 MB per site of its own, 50 MB fixed.
    text = bench.extrapolate([result(2000, 10.0, 60.0), result(6000, 30.0, 80.0)], 45_000)
    line = next(x for x in text.splitlines() if "centre process" in x)
    assert "10.00 % of a core" in line and "10.0 MB per 1000" in line, line
    assert "+50 MB fixed" in line and "22500 sites each, 225 % of a core, 275 MB" in line, line
    assert "~9000 sites at 90 %: 5 for 45000" in line, line


def test_the_gc_watch_writes_each_long_full_collection(tmp_path: Path) -> None:
    log = tmp_path / "gc.log"
    heap = "import gc; keep = [[i] for i in range(1_500_000)]; gc.collect()"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "bench" / "gc_watch"),
           "BENCH_GC_LOG": str(log)}  # fmt: skip
    subprocess.run([sys.executable, "-c", heap], env=env, check=True, timeout=60)
    pauses = [float(line.split()[1]) for line in log.read_text().splitlines()]
    assert pauses and min(pauses) >= 20  # the forced one at least; shorter ones are not written
    subprocess.run([sys.executable, "-c", heap], env=env | {"BENCH_GC_LOG": ""}, check=True)
    assert len(log.read_text().splitlines()) == len(pauses)  # unset: nothing watched
