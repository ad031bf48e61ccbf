"""Full concurrent self-test of the simulated site: wall time and the agent's peak RSS.

Target: <= 5 s wall (the floor is ~1 s of frames and ~1 s of samples, taken concurrently).
Each run is a fresh `edge-agent check --json` process, as a technician or the daemon's
worker would run it; its peak RSS comes from wait4(). The in-process figure excludes
interpreter start-up and imports.

    .venv/bin/python bench/selftest.py [--runs 5] [--width 1920 --height 1080]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.config import load_settings
from agent.selftest.suite import run_selftest
from agent.sim.site import SimulatedSite


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    args = parser.parse_args()

    exe = Path(sys.executable).with_name("edge-agent")
    with SimulatedSite(
        Path(tempfile.mkdtemp(prefix="bench-selftest-")), width=args.width, height=args.height
    ) as site:
        env = {**os.environ, **site.env}
        walls, rss_mb, verdicts = [], [], []
        for _ in range(args.runs):
            start = time.monotonic()
            proc = subprocess.Popen(
                [str(exe), "--config", str(site.config_path), "check", "--json"],
                env=env,
                stdout=subprocess.PIPE,
            )
            out = proc.stdout.read() if proc.stdout else b""
            _, _status, usage = os.wait4(proc.pid, 0)
            walls.append(time.monotonic() - start)
            rss_mb.append(usage.ru_maxrss / 1024)
            verdicts.append(json.loads(out)["verdict"])

        site.apply_env()
        settings = load_settings(site.config_path)
        run_selftest(settings)  # warm: imports, first PortAudio scan
        inproc = []
        for _ in range(args.runs):
            start = time.monotonic()
            test = run_selftest(settings)
            inproc.append(time.monotonic() - start)
        slowest = max(test.results, key=lambda r: r.duration_s)

    print(
        f"simulated site: camera {args.width}x{args.height}@30 MJPEG, components "
        f"{', '.join(r.component for r in test.results)}"
    )
    print(
        f"edge-agent check (fresh process) wall: median {statistics.median(walls):.2f} s, "
        f"max {max(walls):.2f} s over {args.runs} runs  (target <= 5 s)"
    )
    print(
        f"self-test in a warm process wall:      median {statistics.median(inproc):.2f} s, "
        f"max {max(inproc):.2f} s  (slowest probe: {slowest.component} "
        f"{slowest.duration_s:.2f} s)"
    )
    print(f"agent peak RSS during a check:         max {max(rss_mb):.0f} MB")
    print(f"verdicts: {sorted(set(verdicts))}")


if __name__ == "__main__":
    main()
