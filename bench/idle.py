"""The agent daemon at rest: RSS and CPU of `edge-agent run` on the full simulated site.

The daemon does its start-up self-test (in a child process), then idles until the next
check; this measures the idle stretch. Targets: RSS <= 60 MB, CPU <= 1 %.

    .venv/bin/python bench/idle.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent.sim.broker import Mosquitto
from agent.sim.site import SimulatedSite

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-idle-"))
    broker = Mosquitto(work / "broker").start()
    try:
        with SimulatedSite(work / "site", broker_port=broker.port) as site:
            env = {
                **os.environ,
                **site.env,
                "EDGE_AGENT_REPORT__CHECK_INTERVAL_S": "3600",
                "EDGE_AGENT_REPORT__STATE_HEARTBEAT_S": "60",
            }
            exe = Path(sys.executable).with_name("edge-agent")
            agent = subprocess.Popen(
                [str(exe), "--config", str(site.config_path), "run"],
                env=env,
                stderr=subprocess.DEVNULL,
            )
            try:
                time.sleep(6)  # start-up self-test (child process) done, link up
                rss_start = rss_mb(agent.pid)
                cpu0, t0 = cpu_seconds(agent.pid), time.monotonic()
                peak = rss_start
                while time.monotonic() - t0 < args.seconds:
                    time.sleep(1)
                    peak = max(peak, rss_mb(agent.pid))
                cpu_pct = 100 * (cpu_seconds(agent.pid) - cpu0) / (time.monotonic() - t0)
                threads = len(os.listdir(f"/proc/{agent.pid}/task"))
            finally:
                agent.terminate()
                agent.wait(10)
    finally:
        broker.stop()
    print(f"idle daemon over {args.seconds:g} s after its start-up self-test:")
    print(f"  RSS {rss_start:.1f} MB at start, peak {peak:.1f} MB  (target <= 60 MB)")
    print(f"  CPU {cpu_pct:.2f} % of one core  (target <= 1 %)")
    print(f"  threads {threads}")


if __name__ == "__main__":
    main()
