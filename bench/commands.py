"""Round trip of `run-checks` to many simulated sites through a real mosquitto (started here).

Every site is a real `Agent` (link, outbox, command store, audit, signature check) in this
process, configured with the network component only (one real TCP connect to the broker per
check), its self-test run in-process rather than in a child. The centre signs one
`run-checks` for `--all` and times each site's `succeeded` reply from the publish.

Prints per-round and overall p50/p99/max of the round trip (and of `accepted`), and the
summary answered/succeeded/failed/silent.

    .venv/bin/python bench/commands.py [--sites 100] [--rounds 3] [--timeout 30]

All sites live in this one process, so it holds about 11 descriptors per site (1,100 for
100 sites: past select()'s 1023, which is why the transport polls). All sites share this
machine's cores and disk (each reply is fsynced to its outbox), so the figures are
pessimistic for real sites, which each have their own.
"""

from __future__ import annotations

import argparse
import logging
import resource
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.centre.sender import Outcome, Sender
from agent.config import Settings
from agent.contract.envelope import public_key_b64
from agent.runtime.daemon import Agent
from agent.selftest.suite import run_selftest
from agent.sim.broker import Mosquitto, network_only_settings

KEY_ID = "bench"


def site_config(broker: Mosquitto, state: Path, site: str, public: str) -> dict[str, Any]:
    config = network_only_settings(
        broker,
        state / site,
        site,
        broker_extra={"reconnect_min_s": 0.2, "reconnect_max_s": 2},
        connect_timeout_s=1.0,
        report={"check_interval_s": 86400.0, "state_heartbeat_s": 3600.0},
    )
    config["log_level"] = "warning"
    config["commands"] = {"keys": [{"key_id": KEY_ID, "public_key": public}]}
    return config


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def describe(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"p50 {statistics.median(values) * 1000:7.1f} ms  p99 {percentile(values, 99) * 1000:7.1f}"
        f" ms  max {max(values) * 1000:7.1f} ms  (n={len(values)})"
    )


def run_rounds(broker: Mosquitto, key: Ed25519PrivateKey, args: argparse.Namespace) -> None:
    all_done: list[float] = []
    all_accepted: list[float] = []
    totals = {"answered": 0, "succeeded": 0, "failed": 0, "silent": 0}
    with Sender(broker.endpoint(), "vc") as centre:
        for n in range(1, args.rounds + 1):
            expected = centre.expected_sites({"all": True})
            command_id, _ = centre.send(key, KEY_ID, "run-checks", {}, {"all": True})
            outcome: Outcome = centre.collect(command_id, expected, args.timeout)
            done = [r.after_s for r in outcome.final().values()]
            accepted = [r.after_s for r in outcome.replies if r.status == "accepted"]
            all_done += done
            all_accepted += accepted
            s = outcome.summary()
            for k in ("answered", "succeeded", "failed"):
                totals[k] += s[k]
            totals["silent"] += len(s["silent"])
            print(
                f"round {n}: expected {s['expected']}, answered {s['answered']}, "
                f"succeeded {s['succeeded']}, failed {s['failed']}, "
                f"rejected {s['rejected']}, silent {len(s['silent'])}"
            )
            print(f"  accepted  {describe(accepted)}")
            print(f"  succeeded {describe(done)}")
            time.sleep(0.5)
    print(f"overall over {args.rounds} round(s) x {args.sites} sites:")
    print(f"  accepted  {describe(all_accepted)}")
    print(f"  succeeded {describe(all_done)}")
    print(
        f"  summary: answered {totals['answered']}, succeeded {totals['succeeded']}, "
        f"failed {totals['failed']}, silent {totals['silent']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sites", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--state-dir", type=Path, help="default: a temporary directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    # About 11 descriptors per site (sockets, outbox and command databases, wake pipes):
    # take the hard limit, so the sites fail on it only in the thousands, not at 1024/11.
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    key = Ed25519PrivateKey.generate()
    public = public_key_b64(key.public_key())
    with tempfile.TemporaryDirectory(prefix="bench-commands-") as tmp:
        work = Path(tmp)
        state = args.state_dir or work / "state"
        broker = Mosquitto(work / "broker", persistence=False).start()
        stop = threading.Event()
        agents: list[Agent] = []
        threads: list[threading.Thread] = []
        try:
            t0 = time.monotonic()
            for i in range(args.sites):
                settings = Settings.model_validate(
                    site_config(broker, state, f"site-{i:03d}", public)
                )
                agent = Agent(settings, selftest=run_selftest)
                thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
                thread.start()
                agents.append(agent)
                threads.append(thread)
            while not all(a.link.status().connected for a in agents):
                if time.monotonic() - t0 > 60:
                    raise SystemExit("sites did not all connect within 60 s")
                time.sleep(0.1)
            time.sleep(1.0)  # let the start-up checks and their reports settle
            print(f"{args.sites} sites up in {time.monotonic() - t0:.1f} s; state in {state}")

            run_rounds(broker, key, args)
        finally:
            stop.set()
            for thread in threads:
                thread.join(10)
            broker.stop()


if __name__ == "__main__":
    main()
