"""Live session benchmark (issue 19): a 726-site conference at the defaults, seen at the centre.

A real mosquitto and a real centre (`edge-agent centre serve`, a subprocess, so its CPU is
its own). A few real agents (`python -m agent run`, each with the Cisco codec on a pty
emulator playing the recording's `rejoin` call scenario, held connected until told) watch a
session put in their schedule, at `[session] poll_s` = 5 s (the default). The Cisco profile
lists `xFeedback register /Status/Call`, so these agents see a hang-up pushed by the codec;
as many again (`--poll-agents`) have a codec that never pushes (the emulator without
its `feedback`), so their drop waits for the next poll: both figures are printed.
The rest are light sites (agent/sim/swarm.py, one MQTT connection each) reporting state,
checks and attendance as in bench/fleet.py and, in the second phase, their retained `live`
state every 60 s (an agent's `republish_s` default).

Phase 1, without the live topic, then phase 2 with it: the centre's and mosquitto's CPU over
each. Then N drops: the real agents' codecs jump to hang-up, and light sites' codecs drop at
the same moments; a light site says so at its own next poll (its phase spread over poll_s,
as an agent's is), an agent at once (pushed) or at its next poll. Printed: time from each
drop to the centre's stored `dropped` (p50/p99/max, target p99 < 10 s), the real agents' own
(pushed, polled), and the CPU figures.

    .venv/bin/python bench/live.py [--sites 726] [--agents 3] [--poll-agents 3] [--drops 40]
        [--seconds 60]
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
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from fleet import cpu_seconds, start_centre  # noqa: E402

from agent.attendance.settings import AttendanceSettings  # noqa: E402
from agent.checks.live import LiveVerdict  # noqa: E402
from agent.config import ReportSettings, SessionSettings  # noqa: E402
from agent.contract.payloads import SessionRef  # noqa: E402
from agent.sim.broker import Mosquitto, network_only_settings  # noqa: E402
from agent.sim.fleet_site import SimSite  # noqa: E402
from agent.sim.recording import Recording, load_recording  # noqa: E402
from agent.sim.serial_device import PtyDevice  # noqa: E402
from agent.sim.swarm import SiteClient, drive, live, live_change  # noqa: E402
from agent.sim.toml_writer import dump_toml  # noqa: E402
from agent.transport.listener import Listener  # noqa: E402

# The agent's defaults, read from its settings so the load follows them.
_SESSION, _REPORT = SessionSettings(), ReportSettings()
POLL_S = _SESSION.poll_s  # what a light site's drop waits for, as an agent's
LIVE_EVERY_S = _SESSION.republish_s
PERIODS = {
    "state": _REPORT.state_heartbeat_s,
    "checks": _REPORT.check_interval_s,
    "attendance": AttendanceSettings().interval_s,
}
SESSION_ID = "bench-live"


def held_call(push: bool = True) -> Recording:
    """The `rejoin` scenario with its first step (connected) held until a jump; without
    `push`, a codec that answers the registration but never pushes."""
    rec = load_recording("cisco-roomos_ce9.15-calls")
    steps = list(rec.scenarios["rejoin"])
    steps[0] = steps[0].model_copy(update={"polls": None})
    feedback = rec.feedback if push else []
    return rec.model_copy(
        update={"scenarios": {**rec.scenarios, "rejoin": steps}, "feedback": feedback}
    )


class RealAgent:
    def __init__(self, workdir: Path, broker: Mosquitto, site_id: str, push: bool) -> None:
        self.site_id = site_id
        self.push = push
        self.codec = PtyDevice(held_call(push), scenario="rejoin").start()
        config = network_only_settings(broker, workdir / site_id, site_id)
        config["codec"] = {"enabled": True, "port": self.codec.port, "password": "secret"}
        path = workdir / f"{site_id}.toml"
        path.write_text(dump_toml(config))
        self.log = workdir / f"{site_id}.log"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "agent", "--config", str(path), "run"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"),
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.codec.stop()


def verdicts(db: Path) -> dict[str, str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        try:
            return {s: v for s, v in con.execute("SELECT site_id, verdict FROM live")}
        except sqlite3.OperationalError:
            return {}


async def until(pred: Any, timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        await asyncio.sleep(step)
    return bool(pred())


class Bench:
    """The broker, the centre, the real agents and the light sites of one run."""

    def __init__(self, workdir: Path, n_sites: int, n_agents: int, n_polled: int) -> None:
        self.broker = Mosquitto(workdir / "broker", persistence=False).start()
        assert self.broker.proc is not None
        self.centre, self.db = start_centre(workdir, self.broker, "live")
        self.pids = {"centre": self.centre.pid, "mosquitto": self.broker.proc.pid}
        now = datetime.now(UTC)
        self.session = SessionRef(
            session_id=SESSION_ID, start=now - timedelta(minutes=5), end=now + timedelta(hours=2)
        )
        self.agents: list[RealAgent] = []
        # the real agents' schedule: retained, as the centre publishes it
        entry = self.session.model_dump(mode="json", include={"session_id", "start", "end"})
        entry["conference_address"] = "hop-tinh@mcu.example.vn"
        body = json.dumps({"schema_version": "1", "entries": [entry]}).encode()
        # (publishing is queued: the connection stays until the end)
        self.pub = Listener(self.broker.endpoint(), ["vc/bench/none"]).start()
        for i in range(n_agents + n_polled):
            sid = f"agent-{i:02d}"
            self.pub.publish(f"vc/{sid}/schedule", body, retain=True)
            self.agents.append(RealAgent(workdir, self.broker, sid, push=i < n_agents))
        self.clients = [
            SiteClient(SimSite(f"site-{i:05d}", tier="commune", parent=f"d-{i // 20:04d}"))
            for i in range(n_sites - len(self.agents))
        ]  # fmt: skip

    async def connect(self) -> float:
        gate = asyncio.Semaphore(64)

        async def one(c: SiteClient) -> None:
            async with gate:
                await c.connect(self.broker.port)
                c.announce()

        t0 = time.monotonic()
        await asyncio.gather(*(one(c) for c in self.clients))
        ids = {a.site_id for a in self.agents}
        if not await until(lambda: all(verdicts(self.db).get(s) == "in_call" for s in ids), 60):
            raise RuntimeError(f"agents not in_call at the centre: {verdicts(self.db)}")
        return time.monotonic() - t0

    async def phase(self, seconds: float, with_live: bool) -> dict[str, float]:
        """The centre's and mosquitto's CPU (% of one core) over `seconds` of reporting."""
        periods = PERIODS | ({"live": LIVE_EVERY_S} if with_live else {})
        live_session = self.session if with_live else None
        if with_live:  # each light site joins once, as a live watch starting says
            for c in self.clients:
                c.publish(live(c.site, self.session, c.live_verdict, c.live_since))
        cpu0 = {k: cpu_seconds(p) for k, p in self.pids.items()}
        w0 = time.monotonic()
        stop_at = asyncio.get_running_loop().time() + seconds
        await asyncio.gather(
            *(drive(c, periods, stop_at, SESSION_ID, live_session=live_session)
              for c in self.clients)
        )  # fmt: skip
        window = time.monotonic() - w0
        return {
            k: round(100 * (cpu_seconds(p) - cpu0[k]) / window, 2) for k, p in self.pids.items()
        }

    async def drops(self, n_drops: int) -> dict[str, float]:
        """The agents' codecs hang up, light sites' codecs drop; a light site notices at its
        own next poll, its phase spread over poll_s as an agent's is. Seconds from each drop
        to the centre's stored `dropped`, by site."""
        dropped_at: dict[str, float] = {}
        light = random.sample(self.clients, min(n_drops - len(self.agents), len(self.clients)))

        async def light_drop(c: SiteClient, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            dropped_at[c.site.site_id] = time.monotonic()
            await asyncio.sleep(random.uniform(0, POLL_S))  # until its next poll
            live_change(c, self.session, LiveVerdict.DROPPED)

        async def agent_drop(a: RealAgent, at: float) -> None:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            a.codec.jump("dropped")
            dropped_at[a.site_id] = time.monotonic()

        start = time.monotonic() + 0.5
        tasks = [asyncio.create_task(light_drop(c, start + i * 0.2)) for i, c in enumerate(light)]
        # The agents' drops run beside the watching below, so each is timed from its own jump
        # (not from after the last agent's).
        tasks += [
            asyncio.create_task(agent_drop(a, start + i * 0.7)) for i, a in enumerate(self.agents)
        ]
        seen: dict[str, float] = {}

        def all_seen() -> bool:
            stored, t = verdicts(self.db), time.monotonic()
            for sid, at in dropped_at.items():
                if sid not in seen and stored.get(sid) == "dropped":
                    seen[sid] = t - at
            return len(seen) == len(light) + len(self.agents)

        await until(all_seen, 30, 0.02)
        await asyncio.gather(*tasks)
        return {sid: seen.get(sid, float("inf")) for sid in dropped_at}

    async def close(self) -> None:
        for c in self.clients:
            await c.close()
        for a in self.agents:
            a.stop()
        self.pub.stop()
        self.centre.terminate()
        try:
            self.centre.wait(15)
        except subprocess.TimeoutExpired:
            self.centre.kill()
        self.broker.stop()


async def run(
    n_sites: int, n_agents: int, n_polled: int, n_drops: int, seconds: float
) -> dict[str, Any]:
    bench = Bench(Path(tempfile.mkdtemp(prefix="bench-live-")), n_sites, n_agents, n_polled)
    try:
        out: dict[str, Any] = {"sites": n_sites, "agents": n_agents, "poll_agents": n_polled}
        out["connect_s"] = round(await bench.connect(), 1)
        out["cpu_pct_without_live"] = await bench.phase(seconds, with_live=False)
        out["cpu_pct_with_live"] = await bench.phase(seconds, with_live=True)
        seen = await bench.drops(n_drops)
        lat = sorted(seen.values())
        q = statistics.quantiles(lat, n=100, method="inclusive") if len(lat) > 1 else lat * 99
        out["drops"] = len(lat)
        out["drops_seen"] = sum(1 for x in lat if x != float("inf"))
        out["drop_to_store_s"] = {
            "p50": round(q[49], 2), "p99": round(q[98], 2), "max": round(lat[-1], 2),
            "agents": sorted(round(seen[a.site_id], 2) for a in bench.agents if a.push),
            "poll_agents": sorted(round(seen[a.site_id], 2) for a in bench.agents if not a.push),
        }  # fmt: skip
        return out
    finally:
        await bench.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=726)
    parser.add_argument("--agents", type=int, default=3, help="real agents among the sites")
    parser.add_argument(
        "--poll-agents", type=int, default=3, help="more real agents, their codec never pushes"
    )
    parser.add_argument("--drops", type=int, default=40, help="sites whose codec drops")
    parser.add_argument("--seconds", type=float, default=60.0, help="each CPU phase")
    args = parser.parse_args()
    out = asyncio.run(run(args.sites, args.agents, args.poll_agents, args.drops, args.seconds))
    sys.stdout.write(json.dumps(out) + "\n")
    d = out["drop_to_store_s"]
    ok = out["drops_seen"] == out["drops"] and d["p99"] < 10.0
    sys.stdout.write(
        f"{out['sites']} sites ({out['agents']}+{out['poll_agents']} real agents): "
        f"{out['drops_seen']}/{out['drops']} drops seen; drop -> centre's `dropped` "
        f"p50 {d['p50']} s p99 {d['p99']} s max "
        f"{d['max']} s (agents, pushed {d['agents']}, polled {d['poll_agents']}); "
        f"CPU % without live {out['cpu_pct_without_live']}"
        f", with live {out['cpu_pct_with_live']}  {'OK' if ok else 'OVER'}\n"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
