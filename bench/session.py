"""Agent CPU over a scheduled session (issue 19's budget: live polling plus attendance <= 10 %
of the mini-PC's CPU). The real daemon (`python -m agent run`, a child process) with a real
mosquitto, a session in its schedule (retained, as the centre publishes it), the Cisco codec
on a pty emulator in a call (the recording's `connected` scenario, media figures included), an
MCU target (a local listener, role "mcu") and an MJPEG camera stream of a 1920x1080 room with
48 people that attendance counts, everything at the settings' defaults (`[session] poll_s`,
`[attendance]`, `[report]`).

Printed: the daemon's CPU over the session (utime + stime from /proc, its waited-for children
included: the counting bursts and self-tests run in child processes) as % of one core and of
the machine, split into the daemon's own and its children's, the peak RSS of each, and how
many `live`, `live/event` and `attendance` reports reached the broker. The window starts at
the first `live` report (the start-up before it is shown apart).

    .venv/bin/python bench/session.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.sim.broker import Mosquitto, network_only_settings  # noqa: E402
from agent.sim.crowd import Room, RoomSpec, make_room_clip  # noqa: E402
from agent.sim.recording import load_recording  # noqa: E402
from agent.sim.serial_device import PtyDevice  # noqa: E402
from agent.sim.site import TcpStandIn  # noqa: E402
from agent.sim.toml_writer import dump_toml  # noqa: E402
from agent.sim.video import MjpegServer  # noqa: E402
from agent.transport.listener import Listener, Received  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
SITE = "bench-session"
# bench/attendance.py's session room: a district hall, 48 people, faces 34-64 px.
ROOM = RoomSpec(1920, 1080, rows=4, seats=12, face_front=64, face_back=34, seed=3)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(utime + stime, the waited-for children's cutime + cstime) in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS, (int(fields[13]) + int(fields[14])) / TICKS


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


class ChildPeak:
    """The highest VmHWM seen among the daemon's children (the counting burst and the
    self-test run in child processes), sampled every 0.2 s: a lower bound."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_mb = pid, 0.0
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                kids = children(self.pid)
            except OSError:
                return
            for kid in kids:
                try:
                    self.peak_mb = max(self.peak_mb, peak_rss_mb(kid))
                except OSError:
                    continue

    def stop(self) -> None:
        self._stop.set()


def site_settings(work: Path, broker: Mosquitto, codec: PtyDevice, camera: str, mcu: int) -> Path:
    config = network_only_settings(broker, work / "state", SITE)
    config["codec"] = {"enabled": True, "port": codec.port, "password": "secret"}
    config["network"]["targets"].append(
        {"name": "mcu", "host": "127.0.0.1", "port": mcu, "role": "mcu"}
    )
    config["camera"] = {"enabled": False, "source": camera}
    config["attendance"] = {"enabled": True, "models_dir": str(ROOT / "models")}
    path = work / "agent.toml"
    path.write_text(dump_toml(config))
    return path


def schedule() -> bytes:
    """A session running now, retained for the site as the centre publishes it."""
    now = datetime.now(UTC)
    entry = {
        "session_id": "bench-session",
        "start": (now - timedelta(minutes=1)).isoformat(),
        "end": (now + timedelta(hours=2)).isoformat(),
        "expected_attendance": 60,
        "conference_address": "hop-tinh@mcu.example.vn",
    }
    return json.dumps({"schema_version": "1", "entries": [entry]}).encode()


def measure(proc: subprocess.Popen[bytes], centre: Listener, minutes: float, log: Path) -> Run:
    t_start = time.monotonic()
    kids = ChildPeak(proc.pid)
    try:
        if not centre.wait_for(lambda ms: any(m.topic.endswith("/live") for m in ms), 120):
            raise SystemExit(f"no `live` report in 120 s; the agent's log: {log}")
        run = Run(startup_s=time.monotonic() - t_start, startup_cpu=sum(cpu_seconds(proc.pid)))
        (own0, kids0), w0 = cpu_seconds(proc.pid), time.monotonic()
        seconds = minutes * 60
        while time.monotonic() - w0 < seconds and proc.poll() is None:
            time.sleep(min(5.0, seconds - (time.monotonic() - w0)))
        if proc.poll() is not None:
            raise SystemExit(f"the agent stopped ({proc.returncode}); its log: {log}")
        run.wall = time.monotonic() - w0
        own1, kids1 = cpu_seconds(proc.pid)
        run.own_cpu, run.kids_cpu = own1 - own0, kids1 - kids0
        run.peak_mb = peak_rss_mb(proc.pid)
    finally:
        kids.stop()
    run.kids_peak_mb = kids.peak_mb
    return run


@dataclass
class Run:
    startup_s: float
    startup_cpu: float
    wall: float = 0.0
    own_cpu: float = 0.0
    kids_cpu: float = 0.0
    peak_mb: float = 0.0
    kids_peak_mb: float = 0.0


def show(run: Run, msgs: list[Received]) -> None:
    topics = [f"vc/{SITE}/live", f"vc/{SITE}/live/event", f"vc/{SITE}/attendance"]
    counts = {t.removeprefix(f"vc/{SITE}/"): sum(m.topic == t for m in msgs) for t in topics}
    att = [m.json().get("count") for m in msgs if m.topic == topics[2]]
    verdicts = [m.json().get("verdict") for m in msgs if m.topic == topics[0]]
    pct = 100 * (run.own_cpu + run.kids_cpu) / run.wall
    print(f"agent over a {run.wall / 60:.1f}-minute session (live polling, attendance at defaults)")
    print(f"  start-up to the first `live`: {run.startup_s:.1f} s, {run.startup_cpu:.1f} s CPU")
    print(f"  CPU {pct:.2f} % of one core, {pct / CORES:.2f} % of this {CORES}-core machine "
          f"(target <= 10 %)")  # fmt: skip
    print(f"    the daemon itself {100 * run.own_cpu / run.wall:.2f} % of one core, its children"
          f" (counting bursts, self-tests) {100 * run.kids_cpu / run.wall:.2f} %")  # fmt: skip
    print(f"  peak RSS {run.peak_mb:.0f} MB, its children's {run.kids_peak_mb:.0f} MB (sampled)")
    print(f"  reports: {counts}; live verdicts {sorted(set(verdicts))}")
    print(f"  attendance counts {att} ({Room(ROOM).count} people in the room)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-session-"))
    clip = make_room_clip(work / "room.avi", ROOM, seconds=2.0, fps=10)
    broker = Mosquitto(work / "broker", persistence=False).start()
    codec = PtyDevice(load_recording("cisco-roomos_ce9.15-calls"), scenario="connected").start()
    camera = MjpegServer(clip=clip, fps=15, width=ROOM.width, height=ROOM.height).start()
    mcu = TcpStandIn()
    path = site_settings(work, broker, codec, camera.url, mcu.port)
    topics = [f"vc/{SITE}/live", f"vc/{SITE}/live/event", f"vc/{SITE}/attendance"]
    centre = Listener(broker.endpoint(), topics).start()
    centre.publish(f"vc/{SITE}/schedule", schedule(), retain=True)
    log = work / "agent.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "--config", str(path), "run"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        run = measure(proc, centre, args.minutes, log)
        msgs = centre.messages()
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        centre.stop()
        camera.stop()
        codec.stop()
        mcu.stop()
        broker.stop()
    show(run, msgs)


if __name__ == "__main__":
    main()
