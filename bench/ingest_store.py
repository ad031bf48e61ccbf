"""The centre's write path alone, on SQLite and on PostgreSQL: no broker, no network, only
`Store.apply_batch` and the condition check that follows each batch (what `centre serve`'s
writer does per batch, agent/centre/ingest.py), fed real payloads.

S simulated sites (agent/sim/fleet_site.py, agent/sim/swarm.py's live state) are born
(availability, meta: not timed), then B batches of K reports each are drawn at an agent's
session rates (state, attendance and live state each once a minute, checks every five
minutes), parsed as the ingest parses them (agent/centre/ingest.py `parse`) and stored.

Printed per store: reports/s through one writer, the time per batch (p50, p99), and the
database statements per report (each `execute`/`rows`, each row of an `executemany`, and a
transaction's BEGIN, lock and COMMIT) with the calls made per report (an `executemany` is
one call: psycopg sends its rows in one pipeline). PostgreSQL is a server this bench starts
(agent/sim/postgres.py: Unix socket, fsync on). `--profile` prints where the time goes.

    .venv/bin/python bench/ingest_store.py [--sites 5000] [--batches 400] [--batch 4]
    .venv/bin/python bench/ingest_store.py --store postgres --profile
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import random
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.centre.ingest import parse  # noqa: E402
from agent.centre.settings import CentreSettings  # noqa: E402
from agent.centre.store import Incoming, Store  # noqa: E402
from agent.checks.live import LiveVerdict  # noqa: E402
from agent.contract.payloads import SessionRef  # noqa: E402
from agent.sim.fleet_site import Message, SimSite  # noqa: E402
from agent.sim.postgres import Postgres  # noqa: E402
from agent.sim.swarm import live  # noqa: E402
from agent.transport.listener import Received  # noqa: E402

PREFIX = "vc"
# Reports per site and minute at an agent's session rates (bench/scale.py's REAL_PERIODS).
RATES = {"state": 1.0, "attendance": 1.0, "live": 1.0, "checks": 0.2}


@dataclass
class Result:
    store: str
    sites: int
    batches: int
    batch: int
    reports: int
    reports_per_s: float
    batch_p50_ms: float
    batch_p99_ms: float
    statements_per_report: float
    calls_per_report: float


class Counter:
    """Counts what the store sends its database, by wrapping the connection's methods."""

    def __init__(self, store: Store) -> None:
        self.statements = 0
        self.calls = 0
        db = store.db
        per_transaction = 3 if db.engine == "postgresql" else 2  # BEGIN, (lock,) COMMIT

        def one(method: Any) -> Any:
            def counted(*args: Any, **kwargs: Any) -> Any:
                self.statements += 1
                self.calls += 1
                return method(*args, **kwargs)

            return counted

        def many(method: Any) -> Any:
            def counted(sql: str, rows: Any, *args: Any, **kwargs: Any) -> Any:
                rows = list(rows)
                self.statements += len(rows)
                self.calls += 1
                return method(sql, rows, *args, **kwargs)

            return counted

        def transaction(method: Any) -> Any:
            def counted() -> Any:
                self.statements += per_transaction
                self.calls += per_transaction
                return method()

            return counted

        for name in ("execute", "rows"):
            setattr(db, name, one(getattr(db, name)))
        for name in ("executemany", "inserted"):
            if hasattr(db, name):
                setattr(db, name, many(getattr(db, name)))
        db.transaction = transaction(db.transaction)  # type: ignore[method-assign]


def workload(
    sites: int, batches: int, batch: int, seed: int
) -> tuple[list[Message], list[list[Message]]]:
    """(the births, the batches): every report a real payload with its site's next seq."""
    rng = random.Random(seed)
    fleet = [SimSite(f"s{i:05d}", heartbeat_s=60.0) for i in range(sites)]
    births = [m for s in fleet for m in s.birth()]
    now = datetime.now(UTC)
    session = SessionRef(
        session_id="bench", start=now - timedelta(minutes=5), end=now + timedelta(hours=2)
    )
    kinds, weights = list(RATES), list(RATES.values())
    out: list[list[Message]] = []
    for _ in range(batches):
        chunk: list[Message] = []
        for _ in range(batch):
            site = rng.choice(fleet)
            kind = rng.choices(kinds, weights)[0]
            if kind == "state":
                chunk.append(site.state())
            elif kind == "checks":
                chunk.append(site.checks())
            elif kind == "attendance":
                chunk.append(site.attendance(session.session_id, rng.randint(0, 30)))
            else:
                chunk.append(live(site, session, LiveVerdict.IN_CALL, now))
        out.append(chunk)
    return births, out


def items(messages: list[Message], now: float) -> list[Incoming]:
    return [Incoming(parse(PREFIX, Received(t, p, r)), r, now) for t, p, r in messages]


def run(
    where: Path | str, name: str, sites: int, births: list[Message], batches: list[list[Message]],
    *, profile: bool,
) -> Result:  # fmt: skip
    settings = CentreSettings()
    store = Store(where)
    try:
        for i in range(0, len(births), 500):
            now = time.time()
            touched = store.apply_batch(items(births[i : i + 500], now))
            store.record_conditions(
                now, settings.silent_after, settings.report_interval_s, settings.gap_grace_s,
                touched,
            )  # fmt: skip
        counter = Counter(store)
        profiler = cProfile.Profile() if profile else None
        took: list[float] = []
        for chunk in batches:
            now = time.time()
            parsed = items(chunk, now)  # the ingest parses before it stores: not timed
            if profiler:
                profiler.enable()
            t0 = time.perf_counter()
            touched = store.apply_batch(parsed)
            store.record_conditions(
                now, settings.silent_after, settings.report_interval_s, settings.gap_grace_s,
                touched,
            )  # fmt: skip
            took.append(time.perf_counter() - t0)
            if profiler:
                profiler.disable()
        if profiler:
            print(f"--- {name}: where the time goes (cumulative) ---")
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            print(f"--- {name}: where the time goes (own time) ---")
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    finally:
        store.close()
    reports = sum(len(c) for c in batches)
    took_ms = sorted(t * 1000 for t in took)
    return Result(
        store=name,
        sites=sites,
        batches=len(batches),
        batch=len(batches[0]) if batches else 0,
        reports=reports,
        reports_per_s=round(reports / sum(took), 1),
        batch_p50_ms=round(statistics.median(took_ms), 2),
        batch_p99_ms=round(took_ms[min(len(took_ms) - 1, int(len(took_ms) * 0.99))], 2),
        statements_per_report=round(counter.statements / reports, 2),
        calls_per_report=round(counter.calls / reports, 2),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sites", type=int, default=5000)
    ap.add_argument("--batches", type=int, default=400)
    ap.add_argument("--batch", type=int, default=4, help="reports per batch")
    ap.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="cProfile the timed batches")
    ap.add_argument("--json", action="store_true", help="one JSON line per store")
    args = ap.parse_args(argv)
    births, batches = workload(args.sites, args.batches, args.batch, args.seed)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        if args.store in ("sqlite", "both"):
            where = Path(tmp) / "centre.sqlite"
            results.append(run(where, "sqlite", args.sites, births, batches, profile=args.profile))
        if args.store in ("postgres", "both"):
            server = Postgres().start()
            try:
                url = server.url(server.create_database("bench"))
                results.append(
                    run(url, "postgres", args.sites, births, batches, profile=args.profile)
                )
            finally:
                server.remove()
    for r in results:
        if args.json:
            print(json.dumps(asdict(r)))
        else:
            print(
                f"{r.store:9} {r.sites} sites, {r.batches} batches of {r.batch}:"
                f" {r.reports_per_s:8.1f} reports/s, batch p50 {r.batch_p50_ms} ms"
                f" p99 {r.batch_p99_ms} ms, {r.statements_per_report} statements"
                f" ({r.calls_per_report} calls) per report"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
