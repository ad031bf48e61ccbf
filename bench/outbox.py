"""Outbox benchmark against a real mosquitto on 127.0.0.1 (started here).

Prints:
- put(): reports/s committed to the outbox (each one fsynced, synchronous=FULL);
- live: reports/s end to end (put -> outbox -> broker -> a subscriber at the centre);
- outage: time to queue 10,000 reports with the broker down, then the drain time after it
  comes back (every report received by the subscriber, outbox empty), at the given rate
  limit (0 = none) and, for comparison, what the default rate limit would take.

    .venv/bin/python bench/outbox.py [--live 2000] [--backlog 10000] [--rate 0]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from agent.checks.model import CheckResult, Status, Verdict
from agent.config import ReportSettings, Settings
from agent.contract.payloads import ChecksPayload, MetaPayload, utc_now
from agent.sim.broker import Mosquitto
from agent.transport.link import Link
from agent.transport.listener import Listener
from agent.transport.mqtt import Protocol
from agent.transport.outbox import Outbox


def sample_report() -> ChecksPayload:
    """A realistic checks report: six components with metrics (about 2 KB of JSON)."""
    now = datetime.now(UTC)
    results = [
        CheckResult(
            component=c,
            status=Status.OK,
            reason=f"{c}: all good, measured within limits",
            hint="",
            metrics={"a": 1.5, "b": 30, "c": "HDMI-A-1", "d": True, "e": 0.001, "f": -42.0},
            started_at=now,
            duration_s=0.42,
        )
        for c in ("camera", "microphone", "display", "codec", "ptz", "network")
    ]
    return ChecksPayload(
        site_id="bench",
        ts=now,
        trigger="interval",
        verdict=Verdict.READY,
        started_at=now,
        duration_s=1.2,
        results=results,
    )


def settings_for(broker: Mosquitto, state_dir: Path, rate: float) -> Settings:
    return Settings.model_validate(
        {
            "site": {"site_id": "bench", "name": "Bench", "tier": "commune"},
            "broker": {**broker.broker_settings("bench"), "reconnect_min_s": 0.1,
                       "reconnect_max_s": 0.5},
            "paths": {"state_dir": str(state_dir)},
            "report": {"drain_rate_per_s": rate, "outbox_max_messages": 100_000,
                       "outbox_max_bytes": 1_000_000_000},
        }
    )  # fmt: skip


def birth(_cause: str, protocol: Protocol) -> MetaPayload:
    from agent.runtime.reports import meta_payload  # noqa: PLC0415

    return meta_payload(BENCH_SETTINGS[0], protocol, utc_now())


BENCH_SETTINGS: list[Settings] = []


def wait_count(listener: Listener, n: int, timeout: float) -> float:
    start = time.monotonic()
    ok = listener.wait_for(lambda ms: len(ms) >= n, timeout)
    if not ok:
        raise SystemExit(f"only {len(listener.messages())} of {n} arrived in {timeout} s")
    return time.monotonic() - start


def live_run(outbox: Outbox, listener: Listener, report: ChecksPayload, n: int) -> None:
    """Put as fast as possible while connected; count what the centre receives."""
    t0 = time.monotonic()
    for _ in range(n):
        outbox.put(report)
    put_s = time.monotonic() - t0
    wait_count(listener, n, 120)
    live_s = time.monotonic() - t0
    print(f"put():  {n / put_s:8.0f} reports/s committed (fsync each)")
    print(f"live:   {n / live_s:8.0f} reports/s put -> broker -> subscriber")


def outage_run(
    broker: Mosquitto,
    link: Link,
    listener: Listener,
    report: ChecksPayload,
    *,
    n: int,
    rate: float,
) -> None:
    """Queue a backlog with the broker down, bring it back, time the drain."""
    outbox = link.outbox
    listener.clear()
    broker.stop()
    while link.status().connected:
        time.sleep(0.01)
    t0 = time.monotonic()
    for _ in range(n):
        outbox.put(report)
    queue_s = time.monotonic() - t0
    mb = outbox.stats().pending_bytes / 1e6
    print(f"outage: {n} reports queued in {queue_s:.1f} s ({mb:.1f} MB in the outbox)")
    broker.start()
    t0 = time.monotonic()
    wait_count(listener, n, 3600)
    drain_s = time.monotonic() - t0
    while outbox.stats().pending > 0:
        time.sleep(0.01)
    limit = "no rate limit" if rate <= 0 else f"rate limit {rate:g}/s"
    window = link.settings.report.max_inflight
    print(
        f"drain:  {n} reports delivered {drain_s:.1f} s after the broker came back "
        f"({n / drain_s:.0f}/s, {limit}, window {window})"
    )
    historical = sum(1 for m in listener.messages() if b'"historical":true' in m.payload)
    print(f"        {historical} of them marked historical")
    default_rate = ReportSettings().drain_rate_per_s
    print(
        f"        at the default rate limit ({default_rate:g}/s) the same drain takes "
        f"{n / default_rate:.0f} s by design"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--live", type=int, default=2000, help="reports for the live run")
    parser.add_argument("--backlog", type=int, default=10_000, help="reports queued in outage")
    parser.add_argument("--rate", type=float, default=0.0, help="drain rate limit; 0 = none")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)  # the outage itself logs warnings by design

    work = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    broker = Mosquitto(work / "broker").start()
    settings = settings_for(broker, work / "state", args.rate)
    BENCH_SETTINGS.append(settings)
    report = sample_report()
    size = len(report.to_bytes())
    print(f"mosquitto on 127.0.0.1:{broker.port}; report size {size} bytes; state in {work}")

    listener = Listener(broker.endpoint(), ["vc/bench/checks"]).start()
    outbox = Outbox.from_settings(settings)
    link = Link(settings, outbox, birth)
    link.start()
    while not link.status().connected:
        time.sleep(0.01)
    try:
        live_run(outbox, listener, report, args.live)
        outage_run(broker, link, listener, report, n=args.backlog, rate=args.rate)
    finally:
        listener.stop()
        link.stop()
        outbox.close()
        broker.stop()


if __name__ == "__main__":
    main()
