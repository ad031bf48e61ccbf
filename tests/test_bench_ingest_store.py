"""bench/ingest_store.py, tiny, and what it measures: the centre's write path costs a few
database calls per batch, not several per report (on PostgreSQL each is a round trip to the
server while the write lock is held), and storing a batch at once leaves exactly what storing
its reports one by one leaves."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.centre.ingest import parse
from agent.centre.store import Incoming, Store
from agent.checks.live import LiveVerdict
from agent.contract.payloads import SessionRef
from agent.sim.fleet_site import Message, SimSite
from agent.sim.swarm import live
from agent.transport.listener import Received
from tests.bench_kit import load_bench

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


def items(messages: list[Message], at: float) -> list[Incoming]:
    return [Incoming(parse("vc", Received(t, p, r)), r, at) for t, p, r in messages]


def test_a_batch_costs_a_few_calls_not_several_per_report(store_location):
    """40 reports of 20 sites in one batch, then the condition check the ingest makes after
    it: once ~11 calls per report (a read and writes per report), now a few per batch."""
    bench = load_bench("ingest_store")
    births, batches = bench.workload(20, 1, 40, seed=2)
    store = Store(store_location)
    try:
        now = time.time()
        store.record_conditions(now, 3.0, 60.0, 30.0, store.apply_batch(items(births, now)))
        counter = bench.Counter(store)
        touched = store.apply_batch(items(batches[0], now))
        store.record_conditions(now, 3.0, 60.0, 30.0, touched)
        assert store.db.execute("SELECT count(*) FROM reports").fetchone()[0] == 20 + 40
    finally:
        store.close()
    assert counter.calls <= 40, counter.calls  # one call per report at most, all told


def fleet_messages(name: str) -> list[Message]:
    """Births, then every kind of report of four sites, out of order: a duplicate, a gap
    filled later in the same batch, a historical state drained late, live states that move
    the revision counter and one that does not."""
    rng = random.Random(5)
    now = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    session = SessionRef(session_id="s1", start=now, end=now + timedelta(hours=2))
    births: list[Message] = []
    later: list[Message] = []
    for i in range(4):
        site = SimSite(f"{name}{i}", heartbeat_s=60.0)
        births += site.birth()
        verdicts = [LiveVerdict.IN_CALL, LiveVerdict.IN_CALL, LiveVerdict.DROPPED]
        reports = [site.state(), site.checks(), site.attendance("s1", 7)]
        reports += [live(site, session, v, now + timedelta(minutes=k)) for k, v in
                    enumerate(verdicts)]  # fmt: skip
        held = site.state()  # taken now, delivered last: a gap, then its fill
        reports += [site.checks(), site.state(cause="check"), site.attendance("s1", 9)]
        reports += [reports[0], held, site.state(historical=True)]  # a duplicate, the fill
        later += reports
    rng.shuffle(later)
    return births + later


def renamed(messages: list[Message], old: str, new: str) -> list[Message]:
    return [(t.replace(old, new), p.replace(old.encode(), new.encode()), r) for t, p, r in messages]


def table(store: Store, name: str, prefix: str) -> list[dict[str, Any]]:
    rows = [
        {k: v.replace(prefix, "") if isinstance(v, str) else v for k, v in dict(r).items()
         if k != "rowid"}
        for r in store.db.rows(f"SELECT * FROM {name} WHERE site_id LIKE ?", (prefix + "%",))
    ]  # fmt: skip
    if name == "live":  # the revision counter is the table's: compare its steps
        base = min(r["rev"] for r in rows)
        for r in rows:
            r["rev"] -= base
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def test_one_batch_leaves_what_one_report_at_a_time_leaves(store_location):
    at = 1_767_600_000.0
    whole = fleet_messages("qqa")
    store = Store(store_location)
    try:
        store.apply_batch(items(whole, at))
        for m in renamed(whole, "qqa", "qqb"):
            store.apply_batch(items([m], at))
        for name in ("sites", "reports", "components", "metrics", "attendance", "gaps",
                     "live", "live_events", "live_media"):  # fmt: skip
            batched, single = table(store, name, "qqa"), table(store, name, "qqb")
            assert batched == single, name
        assert table(store, "gaps", "qqa"), "the workload opens a gap"
        assert len({r["rev"] for r in table(store, "live", "qqa")}) == 4
    finally:
        store.close()
