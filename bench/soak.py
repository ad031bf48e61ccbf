"""Soak: the real agent daemon against a whole simulated site and a real mosquitto, with
faults injected on a seeded schedule, for a set time (default 10 minutes).

Started here: mosquitto on 127.0.0.1 (a free port), a SimulatedSite (MJPEG camera, PulseAudio
with a tone, codec/PTZ/display emulators on ptys, a sysfs tree), `edge-agent run` as a
separate process, a subscriber at the centre recording every report of the site, and a
centre sending commands signed with an Ed25519 key made for this run.

Faults, each short so the agent spends most of the run working: mosquitto kill -9 and
restart; agent kill -9 and restart (first half of the run only, so the leak check has one
long process life to measure); a serial device switched to a fault mode (silent, garbage,
disconnect) or unplugged (its port vanishes), then healthy again; the camera's stream server
stopped and restarted; the audio server killed and restarted. Commands (run-checks,
identify, rebirth) are sent throughout, some re-published on purpose (same signed bytes)
shortly after, or again after an agent restart. The broker saves its state after every
change (the soak is about the agent: what a broker acknowledged and then lost in a kill -9
would be the broker's loss); a command due while the broker is down is sent once it is
back, and one left without any answer when it returns is sent again (a save can still
trail the kill by a moment).

At the end injection stops, the outbox drains, the agent is stopped with SIGTERM, and the
figures are printed: reports sent (seqs the outbox handed out), received, still queued,
lost; duplicates; commands sent/answered/run twice (from the agent's audit log); daemon RSS
and its slope; check latency; outbox integrity; faults per kind. Exit status 1 when a report
was lost or a command ran twice (a gate), 2 when the run itself broke.

    .venv/bin/python bench/soak.py [--minutes 10] [--seed 1] [--check-interval 5] [--json]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.centre.sender import Sender
from agent.contract.envelope import public_key_b64
from agent.errors import TransportError
from agent.sim.broker import Mosquitto
from agent.sim.hotplug import RestartableAudio, SwitchableSerial
from agent.sim.site import SimulatedSite
from agent.sim.toml_writer import dump_toml
from agent.sim.video import MjpegServer
from agent.transport.listener import Listener, Received

ROOT = Path(__file__).resolve().parent.parent
SITE = "sim-soak-01"
KEY_ID = "soak"
QUEUED = ("state", "checks", "attendance", "cmd/reply")  # topics whose seq the outbox assigns
SERIALS = ("codec", "ptz", "display")
SERIAL_FAULTS = ("silent", "garbage", "disconnect", "unplug")
WARMUP_S = 60.0  # RSS of a process life counts from its first minute on

log = logging.getLogger("soak")


# ---- the schedule (pure) -------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Planned:
    at: float  # seconds after injection starts
    kind: str
    hold_s: float = 0.0
    target: str = ""


# lane: (period s, hold range s, share of the run it may use)
LANES: dict[str, tuple[float, tuple[float, float], float]] = {
    "broker-kill": (75.0, (2.0, 5.0), 1.0),
    "agent-kill": (70.0, (0.5, 2.0), 0.5),
    "serial": (25.0, (6.0, 15.0), 1.0),
    "camera-restart": (60.0, (2.0, 6.0), 1.0),
    "audio-restart": (80.0, (1.0, 3.0), 1.0),
    "command": (10.0, (0.0, 0.0), 1.0),
}


def plan(duration_s: float, rng: random.Random) -> list[Planned]:
    """Every lane fires at least once, spread over its share of the run with jitter."""
    events: list[Planned] = []
    for lane, (period, (lo, hi), share) in LANES.items():
        span = duration_s * share
        n = max(1, round(span / period))
        slot = span / n
        for i in range(n):
            at = i * slot + rng.uniform(0.1, 0.7) * slot
            hold = min(rng.uniform(lo, hi), max(0.5, slot * 0.4))
            if lane == "serial":
                device = rng.choice(SERIALS)
                events.append(Planned(at, f"serial-{rng.choice(SERIAL_FAULTS)}", hold, device))
            elif lane == "command":
                action = rng.choices(["run-checks", "identify", "rebirth"], [6, 3, 1])[0]
                events.append(Planned(at, "command", 0.0, action))
                if i == 0 or rng.random() < 0.35:
                    events.append(Planned(at + rng.uniform(0.5, 3.0), "command-duplicate"))
            else:
                events.append(Planned(at, lane, hold))
    return sorted(events)


# ---- accounting (pure) ---------------------------------------------------------------------


def _queued(message: Received) -> bool:
    suffix = message.topic.split("/", 2)[-1]
    return suffix in QUEUED


def account_reports(
    messages: list[Received], last_seq: int, in_outbox: set[int], dropped_checks: int
) -> dict[str, Any]:
    """What the centre received against what the outbox handed out."""
    first: dict[int, dict[str, Any]] = {}
    deliveries: Counter[int] = Counter()
    retained = 0
    conflicting: set[int] = set()
    per_topic: Counter[str] = Counter()
    order: list[int] = []
    for m in messages:
        if not _queued(m):
            continue
        data = m.json()
        seq = int(data["seq"])
        if m.retain:
            retained += 1  # a retained copy replayed on subscribe, not a new delivery
        deliveries[seq] += 1
        # The same report sent late is marked historical; anything else differing is a
        # second report under the same number.
        body = {k: v for k, v in data.items() if k != "historical"}
        if seq in first:
            if first[seq] != body:
                conflicting.add(seq)
            continue
        first[seq] = body
        order.append(seq)
        per_topic[m.topic.split("/", 2)[-1]] += 1
    received = set(first)
    gaps = sorted(set(range(1, last_seq + 1)) - received - in_outbox)
    unexplained = gaps if dropped_checks == 0 else gaps[dropped_checks:]
    return {
        "sent": last_seq,
        "received": len(received),
        "in_outbox": len(in_outbox - received),
        "dropped_checks": dropped_checks,
        "gaps": gaps,
        "lost": len(unexplained),
        "deliveries": sum(deliveries.values()),
        "duplicates": sum(n - 1 for n in deliveries.values()),
        "retained_replays": retained,
        "duplicates_after_dedup": len(conflicting),
        "conflicting_seqs": sorted(conflicting),
        "out_of_order": sum(1 for a, b in itertools.pairwise(order) if b < a),
        "per_topic": dict(per_topic),
        "beyond_last_seq": sorted(s for s in received if s > last_seq),
    }


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def check_latency(messages: list[Received]) -> dict[str, Any]:
    seen: dict[int, dict[str, Any]] = {}
    for m in messages:
        if m.topic.endswith("/checks"):
            data = m.json()
            seen.setdefault(int(data["seq"]), data)
    durations = [float(d["duration_s"]) for d in seen.values()]
    slowest: dict[str, float] = {}
    for d in seen.values():
        for r in d["results"]:
            slowest[r["component"]] = max(slowest.get(r["component"], 0.0), r["duration_s"])
    if not durations:
        return {"n": 0}
    non_ok: Counter[str] = Counter()
    for d in seen.values():
        for r in d["results"]:
            if r["status"] != "ok":
                non_ok[f"{r['component']} {r['status']}: {r['reason'][:70]}"] += 1
    last = seen[max(seen)]
    return {
        "last": {
            "seq": last["seq"],
            "trigger": last["trigger"],
            "verdict": last["verdict"],
            "not_ok": [
                f"{r['component']}: {r['reason']}" for r in last["results"] if r["status"] != "ok"
            ],
        },
        "not_ok": dict(non_ok.most_common()),
        "n": len(durations),
        "p50_s": statistics.median(durations),
        "p95_s": percentile(durations, 95),
        "max_s": max(durations),
        "by_trigger": dict(Counter(str(d["trigger"]) for d in seen.values())),
        "verdicts": dict(Counter(str(d["verdict"]) for d in seen.values())),
        "slowest_component_s": {k: round(v, 3) for k, v in sorted(slowest.items())},
    }


def slope_kb_per_min(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, KB) samples, in KB per minute."""
    if len(samples) < 2:
        return 0.0
    ts = [t for t, _ in samples]
    ks = [float(k) for _, k in samples]
    mt, mk = statistics.fmean(ts), statistics.fmean(ks)
    den = sum((t - mt) ** 2 for t in ts)
    if den == 0:
        return 0.0
    return sum((t - mt) * (k - mk) for t, k in zip(ts, ks, strict=True)) / den * 60.0


def account_commands(
    sent: list[CommandSent], messages: list[Received], audit: list[dict[str, Any]]
) -> dict[str, Any]:
    replies: defaultdict[str, list[str]] = defaultdict(list)
    seen_seq: set[int] = set()
    for m in messages:
        if m.topic.endswith("/cmd/reply") and _queued(m):
            data = m.json()
            if int(data["seq"]) in seen_seq:
                continue
            seen_seq.add(int(data["seq"]))
            replies[str(data["command_id"])].append(str(data["status"]))
    executions = Counter(e["command_id"] for e in audit if e.get("event") == "accepted")
    rejected = Counter(str(e.get("reason")) for e in audit if e.get("event") == "rejected")
    originals = [c for c in sent if not c.duplicate]
    final = {"succeeded", "failed"}
    answered = [c for c in originals if final & set(replies[c.command_id])]
    unanswered = [c for c in originals if c not in answered]
    return {
        "sent": len(originals),
        "duplicates_sent": len(sent) - len(originals),
        "answered": len(answered),
        "succeeded": sum("succeeded" in replies[c.command_id] for c in originals),
        "failed": sum("failed" in replies[c.command_id] for c in originals),
        "unanswered": [
            {
                "id": c.command_id,
                "action": c.action,
                "at_s": round(c.at, 1),
                "replies": replies[c.command_id],
                "executions": executions[c.command_id],
            }
            for c in unanswered
        ],
        "executed": sum(1 for c in originals if executions[c.command_id] > 0),
        "run_twice": sorted(i for i, n in executions.items() if n > 1),
        "rejected_by_reason": dict(rejected),
        "replay_replies": sum(1 for st in replies.values() for s in st if s == "rejected"),
    }


# ---- the run -------------------------------------------------------------------------------


@dataclass
class CommandSent:
    command_id: str
    action: str
    payload: bytes
    at: float
    duplicate: bool = False


@dataclass
class Recorder:
    t0: float = field(default_factory=time.monotonic)
    faults: Counter[str] = field(default_factory=Counter)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    rss: list[tuple[float, int, int]] = field(default_factory=list)  # (t, pid, KB)
    integrity: list[str] = field(default_factory=list)
    commands: list[CommandSent] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    downtime: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def now(self) -> float:
        return time.monotonic() - self.t0

    def note(self, text: str) -> None:
        self.timeline.append((self.now(), text))
        log.info("%7.1f s  %s", self.now(), text)


def rss_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Outboxes:
    """The agent's outbox, read-only from here (SQLite WAL allows a reader beside the agent)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return db.execute(sql).fetchall()
        finally:
            db.close()

    def counters(self) -> dict[str, int]:
        return {str(n): int(v) for n, v in self._query("SELECT name, value FROM counters")}

    def pending_seqs(self) -> set[int]:
        return {int(r[0]) for r in self._query("SELECT seq FROM outbox")}

    def integrity(self) -> str:
        return ";".join(str(r[0]) for r in self._query("PRAGMA integrity_check"))


class Soak:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.rec = Recorder()
        self.rng = random.Random(args.seed)
        self.key = Ed25519PrivateKey.generate()
        self.broker = Mosquitto(workdir / "broker", save_each_change=True)
        self.site = SimulatedSite(workdir / "site", site_id=SITE, broker_port=self.broker.port)
        self.serials: dict[str, SwitchableSerial] = {}
        self.audio: RestartableAudio | None = None
        self.listener: Listener | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.config_path = workdir / "agent.toml"
        self.log_path = workdir / "agent.log"
        self.state_dir = self.site.state_dir
        self.outbox = Outboxes(self.state_dir / "outbox.sqlite")
        self.orphans: list[int] = []
        self._stop_sampling = threading.Event()
        self._last_command: CommandSent | None = None
        self._deferred: list[Callable[[], None]] = []
        self.agent_starts = 0

    # ---- set-up ------------------------------------------------------------------------

    def start(self) -> None:
        self.broker.start()
        self.site.start()
        assert self.site.codec and self.site.ptz and self.site.display_control
        assert self.site.pulse and self.site.tone
        for name, device in (
            ("codec", self.site.codec),
            ("ptz", self.site.ptz),
            ("display", self.site.display_control),
        ):
            self.serials[name] = SwitchableSerial(
                device.recording, self.workdir / f"tty-{name}", device
            )
        self.audio = RestartableAudio(self.site.audio_kind, self.site.pulse, self.site.tone)
        self._prepare_leds()
        self.config_path.write_text(dump_toml(self.config()))
        where = self.broker.endpoint(client_id="soak-recorder")
        self.listener = Listener(where, [f"vc/{SITE}/#"]).start()
        self.start_agent()
        threading.Thread(target=self._sample_rss, name="rss", daemon=True).start()

    def snapshot_broker(self, timeout_s: float = 30.0) -> None:
        """Restart the broker cleanly once both the recorder and the agent are subscribed, so
        its saved state holds both persistent sessions before the first fault, and wait for
        the agent to be back online: without them, whatever is published before a client
        re-subscribes would be dropped by the broker, not by the agent under test."""
        assert self.listener is not None
        seen = len(self.listener.messages())
        self.broker.stop()
        self.broker.start()

        def back_online(ms: list[Received]) -> bool:
            return any(m.topic.endswith("/availability") and b'"online"' in m.payload
                       for m in ms[seen:])  # fmt: skip

        if not self.listener.wait_for(back_online, timeout_s):
            raise RuntimeError(f"the agent did not reconnect in {timeout_s} s")

    def _prepare_leds(self) -> None:
        # What `edge-agent led --prepare` does as root on a real box: timer trigger selected,
        # so the delays exist for the (unprivileged) agent to write.
        for led in (self.site.sysfs_root / "class" / "leds").iterdir():
            (led / "trigger").write_text("none [timer] heartbeat default-on mmc0\n")
            for attr in ("delay_on", "delay_off"):
                (led / attr).write_text("0\n")

    def config(self) -> dict[str, Any]:
        doc = self.site.settings_document()
        doc["broker"] |= {
            "keepalive_s": 10,
            "reconnect_min_s": 0.5,
            "reconnect_max_s": 3.0,
            "connect_timeout_s": 3.0,
        }
        doc["report"] = {"check_interval_s": self.args.check_interval, "state_heartbeat_s": 30.0}
        doc["codec"]["port"] = str(self.serials["codec"].port)
        doc["ptz"]["port"] = str(self.serials["ptz"].port)
        doc["display"]["port"] = str(self.serials["display"].port)
        doc["led"] = {"enabled": True}
        doc["commands"] = {
            "keys": [{"key_id": KEY_ID, "public_key": public_key_b64(self.key.public_key())}]
        }
        return doc

    def start_agent(self) -> None:
        assert self.audio is not None
        exe = Path(sys.executable).with_name("edge-agent")
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "agent"]
        env = {**os.environ, **self.audio.env, "PYTHONPATH": str(ROOT)}
        with self.log_path.open("ab") as log_file:
            self.proc = subprocess.Popen(
                [*cmd, "--config", str(self.config_path), "run"],
                stdout=subprocess.DEVNULL,
                stderr=log_file,
                env=env,
                cwd=self.workdir,
            )
        self.agent_starts += 1

    def _sample_rss(self) -> None:
        while not self._stop_sampling.wait(self.args.rss_interval):
            proc = self.proc
            if proc is not None and proc.poll() is None:
                kb = rss_kb(proc.pid)
                if kb is not None:
                    self.rec.rss.append((self.rec.now(), proc.pid, kb))

    # ---- faults ------------------------------------------------------------------------

    def inject(self, event: Planned, schedule: Callable[[float, Callable[[], None]], None]) -> None:
        kind = event.kind
        if kind == "command":
            self.send_command(event.target)
            return
        if kind == "command-duplicate":
            self.resend(self._last_command, "re-published")
            return
        self.rec.faults[kind] += 1
        self.rec.note(f"inject {kind} {event.target} for {event.hold_s:.1f} s".replace("  ", " "))
        began = self.rec.now()

        def later(delay: float, restore: Callable[[], None]) -> None:
            def timed() -> None:
                restore()
                self.rec.downtime[kind].append(self.rec.now() - began)

            schedule(delay, timed)

        if kind == "broker-kill":
            self.broker.kill()
            later(event.hold_s, self._broker_back)
        elif kind == "agent-kill":
            self._kill_agent()
            # A command sent while the agent is down waits in its session at the broker and
            # must run once the agent is back.
            self.send_command("run-checks")
            later(event.hold_s, self._agent_back)
        elif kind.startswith("serial-"):
            device = self.serials[event.target]
            fault = kind.removeprefix("serial-")
            if fault == "unplug":
                device.unplug()
            else:
                device.set_fault(fault)
            later(event.hold_s, lambda: self._serial_back(event.target))
        elif kind == "camera-restart":
            assert self.site.camera is not None
            self.site.camera.stop()
            later(event.hold_s, self._camera_back)
        elif kind == "audio-restart":
            assert self.audio is not None
            self.audio.restart(event.hold_s)
            self.site.pulse, self.site.tone = self.audio.server, self.audio.tone
            self.rec.downtime[kind].append(self.rec.now() - began)
            self.rec.note("audio server back")

    def _broker_back(self) -> None:
        self.broker.start()
        self.rec.note("broker back")
        deferred, self._deferred = self._deferred, []
        for action in deferred:
            action()
        # A command the broker took (PUBACK) for an agent that was away, and lost in the kill
        # -9 before it saved it, never reaches the agent: the broker's loss, not the agent's.
        # Publish such a command once more, as an operator retrying one left unanswered would:
        # if the agent had it after all, it must refuse it as a replay, never run it twice.
        for lost in self._unanswered_at_all():
            self.resend(lost, "re-published after the broker lost it")

    def _unanswered_at_all(self) -> list[CommandSent]:
        assert self.listener is not None
        heard = {
            m.json().get("command_id")
            for m in self.listener.messages()
            if m.topic.endswith("/cmd/reply")
        }
        return [c for c in self.rec.commands if not c.duplicate and c.command_id not in heard]

    def _kill_agent(self) -> None:
        assert self.proc is not None
        children = children_of(self.proc.pid)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.orphans += children
        # The outbox must survive any kill -9: check it while nothing holds it.
        self.rec.integrity.append(self.outbox.integrity())

    def _agent_back(self) -> None:
        self.start_agent()
        self.rec.note("agent restarted")
        # The broker may still hold the last command for the dead agent's session; send it
        # once more too: after the restart it must be refused as a replay, never run again.
        self.resend(self._last_command, "re-published after the agent restart")

    def _serial_back(self, name: str) -> None:
        self.serials[name].replug()
        self.rec.note(f"{name} healthy again")

    def _camera_back(self) -> None:
        old = self.site.camera
        assert old is not None
        port = int(old.url.split(":")[2].split("/")[0])
        self.site.camera = MjpegServer(
            "normal", fps=self.site.fps, width=self.site.width, height=self.site.height,
            port=port,
        ).start()  # fmt: skip
        self.rec.note("camera stream back")

    # ---- commands ----------------------------------------------------------------------

    def _publish(self, how: Callable[[Sender], CommandSent | None]) -> CommandSent | None:
        for _ in range(3):
            try:
                with Sender(self.broker.endpoint(), "vc") as centre:
                    sent = how(centre)
                    # Pump a moment so the PUBACK comes back before DISCONNECT.
                    centre.collect("-", set(), 0.2)
                    return sent
            except TransportError as exc:
                self.rec.errors.append(f"send: {exc}")
            time.sleep(0.5)
        return None

    def _broker_down(self, retry: Callable[[], None]) -> bool:
        """While the broker is down (the centre cannot publish either) a command waits until
        it is back, rather than blocking the schedule and stretching the other faults."""
        if self.broker.running:
            return False
        self._deferred.append(retry)
        return True

    def send_command(self, action: str) -> None:
        if self._broker_down(lambda: self.send_command(action)):
            return
        args: dict[str, Any] = {}
        if action == "identify":
            args = {"seconds": 1}
        elif action == "run-checks" and self.rng.random() < 0.5:
            args = {"components": self.rng.choice(["camera", "codec,ptz", "microphone"])}

        def send(centre: Sender) -> CommandSent:
            command_id, payload = centre.send(self.key, KEY_ID, action, args, {"site": SITE})
            return CommandSent(command_id, action, payload, self.rec.now())

        sent = self._publish(send)
        if sent is not None:
            self.rec.commands.append(sent)
            self._last_command = sent
            self.rec.faults["command"] += 1

    def resend(self, original: CommandSent | None, why: str) -> None:
        if original is None or self._broker_down(lambda: self.resend(original, why)):
            return

        def again(centre: Sender) -> CommandSent:
            centre.publish_raw(original.payload, {"site": SITE}, original.command_id.encode())
            return CommandSent(
                original.command_id, original.action, original.payload, self.rec.now(), True
            )

        sent = self._publish(again)
        if sent is not None:
            self.rec.commands.append(sent)
            self.rec.faults["command-duplicate"] += 1
            self.rec.note(f"command {original.command_id} {why}")

    # ---- the schedule ------------------------------------------------------------------

    def run_schedule(self, duration_s: float) -> None:
        queue: list[tuple[float, int, Callable[[], None]]] = []
        counter = iter(range(1 << 30))
        start = time.monotonic()

        def later(delay: float, action: Callable[[], None]) -> None:
            heapq.heappush(queue, (time.monotonic() + delay, next(counter), action))

        for event in plan(duration_s, self.rng):
            heapq.heappush(
                queue,
                (start + event.at, next(counter), lambda e=event: self.inject(e, later)),  # type: ignore[misc]
            )
        while queue:
            at, _, action = queue[0]
            now = time.monotonic()
            if at > now:
                time.sleep(min(at - now, 0.5))
                continue
            heapq.heappop(queue)
            try:
                action()
            except Exception as exc:
                self.rec.errors.append(f"{type(exc).__name__}: {exc}")
                log.exception("fault action failed")
        self.rec.note("injection over")

    # ---- the end -----------------------------------------------------------------------

    def drain(self, timeout_s: float) -> bool:
        """Until everything the outbox handed out has reached the centre, every command is
        answered and a check that started after the last fault was cleared has reported (so
        its verdict says whether the site recovered); False on timeout."""
        assert self.listener is not None
        cleared = datetime.now(UTC)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                last = self.outbox.counters()["seq"]
                pending = self.outbox.pending_seqs()
            except sqlite3.Error:
                time.sleep(0.5)
                continue
            got = {int(m.json()["seq"]) for m in self.listener.messages() if _queued(m)}
            recheck = any(
                datetime.fromisoformat(m.json()["started_at"]) > cleared
                for m in self.listener.messages()
                if m.topic.endswith("/checks")
            )
            if not pending and set(range(1, last + 1)) <= got and self._commands_done() and recheck:
                return True
            time.sleep(0.5)
        return False

    def _commands_done(self) -> bool:
        assert self.listener is not None
        final = {
            m.json()["command_id"]
            for m in self.listener.messages()
            if m.topic.endswith("/cmd/reply") and m.json()["status"] in ("succeeded", "failed")
        }
        return all(c.command_id in final for c in self.rec.commands if not c.duplicate)

    def stop_agent(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None
        self.proc.terminate()
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.rec.errors.append("agent did not stop within 20 s of SIGTERM; killed")
            self.proc.kill()
            return self.proc.wait(5)

    def close(self) -> None:
        self._stop_sampling.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        if self.listener is not None:
            self.listener.stop()
        for device in self.serials.values():
            device.stop()
        if self.audio is not None:
            self.audio.stop()
        self.site.stop()
        self.broker.stop()

    def audit(self) -> list[dict[str, Any]]:
        path = self.state_dir / "commands-audit.jsonl"
        lines: list[dict[str, Any]] = []
        for p in (path.with_name(path.name + ".1"), path):
            if p.exists():
                lines += [json.loads(x) for x in p.read_text().splitlines() if x.strip()]
        return lines


def rss_summary(samples: list[tuple[float, int, int]]) -> dict[str, Any]:
    """RSS of the longest process life after its warm-up, and its slope; every life's ends."""
    lives: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for t, pid, kb in samples:
        lives[pid].append((t, kb))
    if not lives:
        return {"lives": 0}
    pid, points = max(lives.items(), key=lambda item: item[1][-1][0] - item[1][0][0])
    # Warm-up: the first minute (or quarter) of the life: imports, first checks, reconnects.
    cut = points[0][0] + min(WARMUP_S, (points[-1][0] - points[0][0]) / 4)
    steady = [p for p in points if p[0] >= cut] or points
    return {
        "lives": len(lives),
        "pid": pid,
        "start_kb": steady[0][1],
        "end_kb": steady[-1][1],
        "min_kb": min(k for _, k in steady),
        "max_kb": max(k for _, k in steady),
        "span_min": round((steady[-1][0] - steady[0][0]) / 60, 2),
        "samples": len(steady),
        "slope_kb_per_min": round(slope_kb_per_min(steady), 1),
        "all_lives_kb": [
            {"pid": p, "first_kb": pts[0][1], "last_kb": pts[-1][1]} for p, pts in lives.items()
        ],
    }


def log_summary(path: Path) -> dict[str, Any]:
    text = path.read_text(errors="replace") if path.exists() else ""
    lines = text.splitlines()
    errors = [ln for ln in lines if " ERROR " in ln or "CRITICAL" in ln]
    return {
        "warnings": sum(" WARNING " in ln for ln in lines),
        "errors": len(errors),
        "tracebacks": text.count("Traceback (most recent call last)"),
        "error_samples": sorted(set(errors))[:8],
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="edge-agent-soak-"))
    soak = Soak(args, workdir)
    duration = args.minutes * 60
    result: dict[str, Any] = {
        "minutes": args.minutes, "seed": args.seed, "check_interval_s": args.check_interval,
        "workdir": str(workdir),
    }  # fmt: skip
    try:
        soak.start()
        assert soak.listener is not None
        # Warm-up: the agent is up and its first check has reached the centre.
        warm = soak.listener.wait_for(lambda ms: any(m.topic.endswith("/checks") for m in ms), 60)
        if not warm:
            raise RuntimeError(f"no checks report within 60 s; see {soak.log_path}")
        soak.snapshot_broker()
        soak.rec.note("warm-up done; injecting")
        t_inject = time.monotonic()
        soak.run_schedule(duration)
        result["injection_s"] = round(time.monotonic() - t_inject, 1)
        drained = soak.drain(args.drain_timeout)
        soak.rec.note("drained" if drained else "drain timed out")
        result["drained"] = drained
        time.sleep(args.rss_interval)  # one more RSS sample of the settled agent
        result["agent_exit"] = soak.stop_agent()
        time.sleep(1.0)  # the last PUBACKed reports reach the recorder
        counters = soak.outbox.counters()
        in_outbox = soak.outbox.pending_seqs()
        soak.rec.integrity.append(soak.outbox.integrity())
        messages = soak.listener.messages()
        if args.keep or args.dir:
            with (workdir / "received.jsonl").open("w") as out:
                for m in messages:
                    record = {"at": m.at, "topic": m.topic, "retain": m.retain,
                              "payload": m.payload.decode(errors="replace")}  # fmt: skip
                    out.write(json.dumps(record) + "\n")
        result["reports"] = account_reports(
            messages, counters["seq"], in_outbox, counters.get("dropped_checks", 0)
        )
        result["commands"] = account_commands(soak.rec.commands, messages, soak.audit())
        result["checks"] = check_latency(messages)
        result["rss"] = rss_summary(soak.rec.rss)
        result["integrity"] = dict(Counter(soak.rec.integrity))
        result["faults"] = dict(sorted(soak.rec.faults.items()))
        result["fault_seconds"] = {
            k: {"n": len(v), "mean_s": round(statistics.fmean(v), 1), "max_s": round(max(v), 1),
                "total_s": round(sum(v), 1)}
            for k, v in sorted(soak.rec.downtime.items())
        }  # fmt: skip
        result["agent_starts"] = soak.agent_starts
        result["boots"] = counters.get("boot", 0)
        result["orphans_alive"] = [p for p in soak.orphans if alive(p)]
        result["agent_log"] = log_summary(soak.log_path)
        result["harness_errors"] = soak.rec.errors
        result["timeline"] = [(round(t, 1), text) for t, text in soak.rec.timeline]
        if args.keep or args.dir:
            (workdir / "result.json").write_text(json.dumps(result, indent=1))
    finally:
        soak.close()
        if not args.keep and not args.dir:
            shutil.rmtree(workdir, ignore_errors=True)
    return result


def passed(result: dict[str, Any]) -> bool:
    reports, commands = result["reports"], result["commands"]
    return (
        reports["lost"] == 0
        and reports["duplicates_after_dedup"] == 0
        and not commands["run_twice"]
        and all(k == "ok" for k in result["integrity"])
    )


def render(r: dict[str, Any]) -> str:
    rep, cmd, chk, rss = r["reports"], r["commands"], r["checks"], r["rss"]
    faults = ", ".join(f"{k} {v}" for k, v in r["faults"].items())
    lines = [
        f"soak: {r['minutes']:g} min of injection (seed {r['seed']}, checks every "
        f"{r['check_interval_s']:g} s), agent started {r['agent_starts']} times, "
        f"{r['boots']} broker connections attempted",
        f"faults injected: {faults}",
        "  held (inject -> restored): "
        + ", ".join(
            f"{k} mean {v['mean_s']} s max {v['max_s']} s" for k, v in r["fault_seconds"].items()
        ),
        "",
        f"reports sent (seqs handed out by the outbox): {rep['sent']}",
        f"  received at the centre (unique seq):        {rep['received']}",
        f"  still in the outbox at the end:             {rep['in_outbox']}",
        f"  dropped by a full outbox (counted):         {rep['dropped_checks']}",
        f"  lost:                                       {rep['lost']}"
        + (f"  seqs {rep['gaps'][:20]}" if rep["gaps"] else ""),
        f"  deliveries {rep['deliveries']}, duplicates {rep['duplicates']} "
        f"(of which retained replays {rep['retained_replays']}); "
        f"after de-dup by seq: {rep['duplicates_after_dedup']} conflicting",
        f"  per topic: {rep['per_topic']}; first arrivals out of seq order: {rep['out_of_order']}",
        "",
        f"commands sent: {cmd['sent']} (+{cmd['duplicates_sent']} duplicates re-published)",
        f"  answered {cmd['answered']} (succeeded {cmd['succeeded']}, failed {cmd['failed']}), "
        f"unanswered {len(cmd['unanswered'])}, executed {cmd['executed']}",
        f"  run twice: {len(cmd['run_twice'])}  {cmd['run_twice'] or ''}",
        f"  refused by the agent: {cmd['rejected_by_reason']}",
    ]
    for u in cmd["unanswered"]:
        lines.append(
            f"    unanswered {u['id']} {u['action']} sent at {u['at_s']} s: replies "
            f"{u['replies']}, executions {u['executions']}"
        )
    if chk.get("n"):
        lines += [
            "",
            f"check latency ({chk['n']} checks reports, duration_s): p50 {chk['p50_s']:.2f} s, "
            f"p95 {chk['p95_s']:.2f} s, max {chk['max_s']:.2f} s",
            f"  triggers {chk['by_trigger']}; verdicts {chk['verdicts']}",
            f"  slowest per component: {chk['slowest_component_s']}",
            f"  last check (seq {chk['last']['seq']}, {chk['last']['trigger']}): "
            f"{chk['last']['verdict']} {chk['last']['not_ok'] or ''}",
            "  non-ok results seen (faults detected):",
            *[f"    {n:3d} x {what}" for what, n in chk["not_ok"].items()],
        ]
    if rss.get("lives"):
        lines += [
            "",
            f"daemon RSS (longest life, pid {rss['pid']}, {rss['span_min']} min after warm-up, "
            f"{rss['samples']} samples): start {rss['start_kb'] / 1024:.1f} MB, end "
            f"{rss['end_kb'] / 1024:.1f} MB, min {rss['min_kb'] / 1024:.1f}, max "
            f"{rss['max_kb'] / 1024:.1f}; slope {rss['slope_kb_per_min']:+.1f} KB/min",
            "  per life (first -> last KB): "
            + ", ".join(f"{x['first_kb']}->{x['last_kb']}" for x in rss["all_lives_kb"]),
        ]
    log_s = r["agent_log"]
    lines += [
        "",
        f"outbox integrity_check: {r['integrity']} (after every agent kill -9 and at the end)",
        f"drained before stop: {r['drained']}; agent exit status on SIGTERM: {r['agent_exit']}",
        f"self-test children left alive after kill -9: {len(r['orphans_alive'])}",
        f"agent log: {log_s['warnings']} warnings, {log_s['errors']} errors, "
        f"{log_s['tracebacks']} tracebacks",
    ]
    lines += [f"  {e[:160]}" for e in log_s["error_samples"]]
    if r["harness_errors"]:
        lines.append(f"harness errors: {r['harness_errors'][:5]}")
    lines.append(f"result: {'PASS' if passed(r) else 'FAIL'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="injection time (default 10)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the fault schedule")
    parser.add_argument("--check-interval", type=float, default=5.0, help="agent check interval, s")
    parser.add_argument("--rss-interval", type=float, default=5.0, help="RSS sample period, s")
    parser.add_argument("--drain-timeout", type=float, default=90.0, help="s to wait at the end")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--dir", help="work folder, kept (default: a temporary one, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary work folder")
    parser.add_argument("-v", "--verbose", action="store_true", help="timeline on stderr")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.ERROR,
        format="%(message)s",
        stream=sys.stderr,
    )
    try:
        result = run(args)
    except Exception as exc:
        log.exception("soak run broke")
        print(json.dumps({"error": str(exc)}) if args.json else f"soak run broke: {exc}")
        raise SystemExit(2) from exc
    print(json.dumps(result, indent=1) if args.json else render(result))
    raise SystemExit(0 if passed(result) else 1)


if __name__ == "__main__":
    main()
