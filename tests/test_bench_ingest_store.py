"""bench/ingest_store.py, tiny: both stores, their rates and statements per report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "ingest_store.py"


def test_tiny_run_on_both_stores_prints_rates_and_statements():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--sites", "20", "--batches", "10", "--batch", "4",
         "--store", "both", "--json"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["store"] for r in runs] == ["sqlite", "postgres"]
    for r in runs:
        assert r["reports"] == 40 and r["reports_per_s"] > 0, r
        assert 0 < r["calls_per_report"] <= r["statements_per_report"], r
