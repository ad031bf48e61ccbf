"""Alert benchmark: a generated province of N light sites (agent/sim/province.py, each its own
MQTT connection through agent/sim/swarm.py) against a real mosquitto and `edge-agent centre
serve` in a subprocess with `[alerts]` on: one `site_down` rule (critical, a short hold) inside
a session's pre-session window (the schedule published as `centre schedule add` does), one
technician per district and the province desk in the contact directory, every one of them
reached by webhook at a local receiver (stdlib http.server in a thread) that checks the HMAC
and records the arrival time, the idempotency key and the body.

1. District uplink failures: the sites of a district (40 at most) drop at once (their
   connections cut, so the broker publishes their wills); --uplinks districts, the largest
   first, one after the other. Expected each time: one grouped message to that district's
   technician and one to the desk, nothing to anybody else. Latency: arrival at the receiver
   - the alert's `fired_at` (the rule's hold already past), per site and recipient.
2. Storm: more sites drop across all districts in --kills waves; after each wave, once
   notifications are pending in the queue, the centre is killed -9 at a random moment and
   started again. At the end, every (site, recipient) the routing owes must have reached the
   receiver (lost otherwise), and the receiver's duplicates (a key seen twice, a site told
   twice in different messages) are counted.

Exit 1 if anything was lost.

    .venv/bin/python bench/alerts.py [--sites 726] [--kills 10] [--seed 18] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.centre import schedule_pub  # noqa: E402
from agent.centre.alerts.channels.webhook import signature  # noqa: E402
from agent.centre.alerts.contacts import ContactStore  # noqa: E402
from agent.centre.alerts.facts import district_of  # noqa: E402
from agent.centre.alerts.model import Channel, ChannelKind, Contact  # noqa: E402
from agent.centre.settings import load_centre_settings  # noqa: E402
from agent.schedule.model import SchedulePayload, Session  # noqa: E402
from agent.sim.broker import Mosquitto  # noqa: E402
from agent.sim.fleet_site import SimSite  # noqa: E402
from agent.sim.province import ProvinceSite, generate  # noqa: E402
from agent.sim.swarm import SiteClient, drive  # noqa: E402

SECRET = "bench-webhook-secret"
RULE = "down"
DESK = "desk"
UPLINK_MAX = 40
SESSION = "bench-session"


# ---- the receiver ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    at: float
    contact: str  # from the URL path: who the centre meant it for
    key: str
    event: str
    created_at: float  # when the centre queued it
    alerts: tuple[tuple[str, str, float], ...]  # (alert key, site id, fired_at)


class Receiver:
    """Every contact's webhook: POST /hook/<contact id>. A body whose HMAC does not match is
    refused (401) and counted; a body that is not the notification JSON is refused (400)."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.bad_signatures = 0
        self.malformed = 0
        self.delay_s = 0.0  # how long the answer takes: notifications stay in flight
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.take(at, self.path, self.headers, body)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the centre was killed while waiting for the answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> Receiver:
        self.thread.start()
        return self

    def url(self, contact_id: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook/{contact_id}"

    def take(self, at: float, path: str, headers: Any, body: bytes) -> int:
        if not hmac.compare_digest(headers.get("X-Edge-Signature", ""), signature(SECRET, body)):
            with self._lock:
                self.bad_signatures += 1
            return 401
        try:
            data = json.loads(body)
            alerts = tuple(
                (str(a["key"]), str(a["site_id"]), float(a["fired_at"])) for a in data["alerts"]
            )
            arrival = Arrival(at, path.rsplit("/", 1)[-1], headers.get("Idempotency-Key", ""),
                              str(data["event"]), float(data["created_at"]), alerts)  # fmt: skip
        except (ValueError, KeyError, TypeError):
            with self._lock:
                self.malformed += 1
            return 400
        with self._lock:
            self.arrivals.append(arrival)
        return 200

    def since(self, t0: float) -> list[Arrival]:
        with self._lock:
            return [a for a in self.arrivals if a.at >= t0]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---- the centre ------------------------------------------------------------------------------


def write_config(workdir: Path, port: int, args: argparse.Namespace) -> Path:
    """centre.toml: a report interval long enough that no light site turns silent, and one
    site_down rule. The channels' timeouts are short so a notification claimed by a killed
    centre is taken again soon (the claim's lease is twice the longest timeout, and 5 s)."""
    config = workdir / "centre.toml"
    config.write_text(
        f'db_path = "{workdir / "centre.sqlite"}"\nreport_interval_s = 3600.0\n'
        f'retained_wait_s = 0.5\n\n[broker]\nhost = "127.0.0.1"\nport = {port}\n\n'
        f"[alerts]\nenabled = true\nevaluate_every_s = {args.evaluate_s}\n"
        f"group_window_s = {args.group_window_s}\n\n"
        f'[alerts.webhook]\nsecret = "{SECRET}"\ntimeout_s = 2.0\n\n'
        f"[alerts.email]\ntimeout_s = 2.0\n\n[alerts.telegram]\ntimeout_s = 2.0\n\n"
        f"[alerts.delivery]\npoll_s = {args.poll_s}\n\n"
        f'[[alerts.rules]]\nid = "{RULE}"\nkind = "site_down"\nseverity = "critical"\n'
        f"lead_minutes = 15\nfor_s = {args.hold_s}\n"
    )
    return config


class Centre:
    """`centre serve` as a subprocess that can be killed -9 and started again."""

    def __init__(self, workdir: Path, config: Path) -> None:
        self.workdir = workdir
        self.config = config
        self.proc: subprocess.Popen[str] | None = None
        self.starts: list[float] = []  # seconds from Popen to "storing"

    def start(self, timeout: float = 90.0) -> None:
        t0 = time.monotonic()
        with (self.workdir / "centre.log").open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "centre", "serve", "--config", str(self.config),
                 "--log-level", "info"],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},
            )  # fmt: skip
        assert self.proc.stdout is not None
        timer = threading.Timer(timeout, self.proc.kill)
        timer.start()
        try:
            line = self.proc.stdout.readline()
        finally:
            timer.cancel()
        if "storing" not in line:
            tail = (self.workdir / "centre.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"centre did not start: {line!r}\n{tail}")
        self.starts.append(time.monotonic() - t0)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def db_count(db: Path, sql: str, *params: Any) -> int:
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return int(con.execute(sql, params).fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # the table is not made yet


def pending(db: Path, since: float = 0.0) -> int:
    """Notifications queued since `since` and not yet sent."""
    return db_count(
        db, "SELECT count(*) FROM notifications WHERE status = 'pending' AND created_at >= ?",
        since,
    )  # fmt: skip


def wait_until(check: Any, timeout: float, step: float = 0.1) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(step)
    return bool(check())


# ---- the sites -------------------------------------------------------------------------------


class Fleet:
    """The light sites on an asyncio loop in a thread, so the main thread can kill and start
    the centre and wait on the receiver."""

    def __init__(self, sites: list[ProvinceSite], port: int) -> None:
        self.port = port
        self.clients = {
            s.site_id: SiteClient(
                SimSite(s.site_id, tier=s.tier, parent=s.parent, expected=s.summoned,
                        name=s.name),
                "bench-",
            )
            for s in sites
        }  # fmt: skip
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.load: Any = None

    def run(self, coro: Any, timeout: float = 300) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def connect(self) -> float:
        async def all_of_them() -> None:
            gate = asyncio.Semaphore(64)

            async def one(c: SiteClient) -> None:
                async with gate:
                    await c.connect(self.port)
                    c.announce()

            await asyncio.gather(*(one(c) for c in self.clients.values()))

        t0 = time.monotonic()
        self.run(all_of_them())
        return time.monotonic() - t0

    def background(self) -> None:
        """A state every minute from each site still up: the broker and the centre busy."""

        async def all_of_them() -> None:
            stop_at = self.loop.time() + 86400
            await asyncio.gather(*(drive(c, {"state": 60.0}, stop_at)
                                   for c in self.clients.values()))  # fmt: skip

        self.load = asyncio.run_coroutine_threadsafe(all_of_them(), self.loop)

    def drop(self, site_ids: list[str]) -> float:
        """Cut these sites' lines at once; the wall-clock time it was done."""

        async def cut() -> float:
            for sid in site_ids:
                self.clients[sid].drop()
            return time.time()

        return float(self.run(cut()))

    def close(self) -> None:
        if self.load is not None:
            self.load.cancel()

        async def close_all() -> None:
            for c in self.clients.values():
                if c.writer is not None:
                    c.writer.close()

        self.run(close_all())
        self.loop.call_soon_threadsafe(self.loop.stop)


# ---- the figures -----------------------------------------------------------------------------


def quantiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p99, max (rounded to ms)."""
    if not values:
        return 0.0, 0.0, 0.0
    v = sorted(values)
    q = statistics.quantiles(v, n=100, method="inclusive") if len(v) > 1 else [v[0]] * 99
    return round(q[49], 3), round(q[98], 3), round(v[-1], 3)


def owed(down: list[ProvinceSite], techs: dict[str, str]) -> set[tuple[str, str]]:
    """(site, contact) pairs the routing owes a RAISED for: the site's district technician
    and, the rule being critical, the desk."""
    out = set()
    for s in down:
        out.add((s.site_id, DESK))
        tech = techs.get(district_of(s.tier, s.site_id, s.parent))
        if tech:
            out.add((s.site_id, tech))
    return out


def told(arrivals: list[Arrival]) -> dict[tuple[str, str], set[str]]:
    """(site, contact) -> the keys of the distinct RAISED messages that named it."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for a in arrivals:
        if a.event == "raised":
            for _, site, _ in a.alerts:
                out[(site, a.contact)].add(a.key)
    return out


@dataclass
class Failure:
    district: str
    sites_down: int
    messages: dict[str, int]  # contact -> RAISED messages received
    sites_per_message: list[int]
    one_each: bool  # one message to each recipient owed, none to anybody else


@dataclass
class UplinkResult:
    failures: list[Failure]
    p50_s: float
    p99_s: float
    max_s: float
    queued_max_s: float  # fired -> queued: the evaluation's turn and the group window
    sent_max_s: float  # queued -> received: the delivery worker's poll and the POST
    missing: int


@dataclass
class StormResult:
    sites_down: int
    kills: int
    pending_at_kill: list[int]
    expected: int
    lost: int
    duplicate_keys: int  # arrivals of a key already received
    retold: int  # (site, contact) told in more than one distinct message
    messages: int
    bad_signatures: int
    failed_in_queue: int
    restart_p50_s: float
    restart_max_s: float
    settle_s: float
    p50_s: float  # fired -> first delivered, per (site, recipient), kills included
    p99_s: float
    max_s: float
    lost_pairs: list[str] = field(default_factory=list)


@dataclass
class Result:
    sites: int
    seed: int
    hold_s: float
    evaluate_s: float
    group_window_s: float
    poll_s: float
    connect_s: float
    uplink: UplinkResult
    storm: StormResult | None

    @property
    def lost(self) -> int:
        return self.uplink.missing + (self.storm.lost if self.storm else 0)


# ---- the run ---------------------------------------------------------------------------------


def publish_session(config: Path) -> None:
    """A session starting in 10 minutes, for every site: its 15-minute window is open now."""
    now = datetime.now(UTC)
    session = Session(session_id=SESSION, title="Bench", start=now + timedelta(minutes=10),
                      end=now + timedelta(hours=2))  # fmt: skip
    settings = load_centre_settings(config)
    payload = schedule_pub.with_session(SchedulePayload(), session, now)
    schedule_pub.publish(settings, None, payload)


def add_contacts(db: Path, sites: list[ProvinceSite], receiver: Receiver) -> dict[str, str]:
    """One technician per district (Vietnamese) and the desk (English); district -> tech."""
    techs = {s.site_id: f"tech-{s.site_id}" for s in sites if s.tier == "district"}
    contacts = [
        Contact(id=tech, name=f"Technician {district}", level=1, districts=(district,),
                channels=(Channel(kind=ChannelKind.WEBHOOK, address=receiver.url(tech)),))
        for district, tech in techs.items()
    ]  # fmt: skip
    contacts.append(
        Contact(id=DESK, name="Province desk", level=2, language="en",
                channels=(Channel(kind=ChannelKind.WEBHOOK, address=receiver.url(DESK)),))
    )  # fmt: skip
    store = ContactStore(db)
    try:
        for c in contacts:
            store.put(c)
    finally:
        store.close()
    return techs


def settle(receiver: Receiver, want: set[tuple[str, str]], t0: float, timeout: float) -> bool:
    """Until every owed pair has arrived (then a little longer, for duplicates)."""
    done = wait_until(lambda: want <= told(receiver.since(t0)).keys(), timeout, 0.2)
    time.sleep(1.0)
    return done


def uplink_failures(
    fleet: Fleet, receiver: Receiver, sites: list[ProvinceSite], techs: dict[str, str],
    args: argparse.Namespace,
) -> UplinkResult:  # fmt: skip
    by_district: dict[str, list[ProvinceSite]] = defaultdict(list)
    for s in sites:
        if s.tier != "province":
            by_district[district_of(s.tier, s.site_id, s.parent)].append(s)
    largest = sorted(by_district, key=lambda d: (-len(by_district[d]), d))[: args.uplinks]
    failures: list[Failure] = []
    all_arrivals: list[Arrival] = []
    missing = 0
    for district in largest:
        # The communes first: the district's own hall is usually on another line.
        down = sorted(by_district[district], key=lambda s: s.tier != "commune")[:UPLINK_MAX]
        want = owed(down, techs)
        t0 = fleet.drop([s.site_id for s in down])
        settle(receiver, want, t0, args.hold_s + args.group_window_s + 60)
        arrivals = [a for a in receiver.since(t0) if a.event == "raised"]
        messages = Counter(a.contact for a in arrivals)
        expected_to = {c for _, c in want}
        failures.append(
            Failure(district, len(down), dict(messages), [len(a.alerts) for a in arrivals],
                    one_each=set(messages) == expected_to
                    and all(n == 1 for n in messages.values()))
        )  # fmt: skip
        missing += len(want - told(arrivals).keys())
        all_arrivals += arrivals
    latencies = [a.at - fired for a in all_arrivals for _, _, fired in a.alerts]
    p50, p99, mx = quantiles(latencies)
    queued = [a.created_at - fired for a in all_arrivals for _, _, fired in a.alerts]
    sent = [a.at - a.created_at for a in all_arrivals]
    return UplinkResult(
        failures=failures, p50_s=p50, p99_s=p99, max_s=mx,
        queued_max_s=quantiles(queued)[2], sent_max_s=quantiles(sent)[2], missing=missing,
    )  # fmt: skip


def storm(
    fleet: Fleet, centre: Centre, receiver: Receiver, *, sites: list[ProvinceSite],
    techs: dict[str, str], args: argparse.Namespace, rng: random.Random, db: Path,
) -> StormResult:  # fmt: skip
    """`kills` waves of sites dropping across the districts, the centre killed -9 in each
    while notifications are pending, and started again."""
    up = [s for s in sites if s.tier != "province" and fleet.clients[s.site_id].writer]
    count = min(len(up), args.storm_sites or len(up) // 2)
    chosen = rng.sample(up, count)
    waves = [chosen[i :: args.kills] for i in range(args.kills)]
    t0 = time.time()
    pending_at_kill: list[int] = []
    receiver.delay_s = args.receiver_delay_s
    for wave in waves:
        dropped = fleet.drop([s.site_id for s in wave])
        # Killed at a random moment once this wave's notifications are queued and not all
        # sent (the rows a killed centre had claimed are pending too, until their lease ends).
        wait_until(lambda t=dropped: pending(db, t) > 0, args.hold_s + args.group_window_s + 30)
        time.sleep(rng.uniform(0.0, args.receiver_delay_s * 4))
        pending_at_kill.append(pending(db))
        centre.kill9()
        centre.start()
    restarted = time.time()
    want = owed(chosen, techs)
    settle(receiver, want, t0, args.settle_s)
    settle_s = time.time() - restarted
    arrivals = receiver.since(t0)
    got = told(arrivals)
    keys = Counter(a.key for a in arrivals)
    lost = sorted(want - got.keys())
    restarts = sorted(centre.starts[1:])
    first: dict[tuple[str, str], float] = {}
    for a in sorted(arrivals, key=lambda a: a.at):
        if a.event == "raised":
            for _, site, fired in a.alerts:
                first.setdefault((site, a.contact), a.at - fired)
    p50, p99, mx = quantiles(list(first.values()))
    return StormResult(
        sites_down=len(chosen), kills=len(waves), pending_at_kill=pending_at_kill,
        expected=len(want), lost=len(lost), duplicate_keys=sum(n - 1 for n in keys.values()),
        retold=sum(1 for pair in want if len(got.get(pair, ())) > 1), messages=len(arrivals),
        bad_signatures=receiver.bad_signatures,
        failed_in_queue=db_count(db, "SELECT count(*) FROM notifications WHERE status = 'failed'"),
        restart_p50_s=round(statistics.median(restarts), 2) if restarts else 0.0,
        restart_max_s=round(restarts[-1], 2) if restarts else 0.0,
        settle_s=round(settle_s, 1), p50_s=p50, p99_s=p99, max_s=mx,
        lost_pairs=[f"{s}->{c}" for s, c in lost[:20]],
    )  # fmt: skip


def run(args: argparse.Namespace) -> Result:
    rng = random.Random(args.seed)
    random.seed(args.seed)  # the swarm's phases
    sites = generate(args.seed, total=args.sites)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-alerts-"))
    workdir.mkdir(parents=True, exist_ok=True)
    broker = Mosquitto(workdir / "broker", persistence=False).start()
    receiver = Receiver().start()
    config = write_config(workdir, broker.port, args)
    db = workdir / "centre.sqlite"
    techs = add_contacts(db, sites, receiver)
    centre = Centre(workdir, config)
    fleet: Fleet | None = None
    try:
        centre.start()
        fleet = Fleet(sites, broker.port)
        connect_s = fleet.connect()
        # Every site heard and judged ready before the session's window matters.
        if not wait_until(
            lambda: db_count(db, "SELECT count(*) FROM sites WHERE condition = 'ready'")
            >= len(sites), 120, 0.25,
        ):  # fmt: skip
            raise RuntimeError("the centre did not see every site ready within 120 s")
        fleet.background()
        publish_session(config)
        if not wait_until(lambda: db_count(db, "SELECT count(*) FROM schedule") > 0, 30):
            raise RuntimeError("the centre did not store the published schedule")
        time.sleep(args.evaluate_s * 2)  # the engine's first turns over a quiet fleet
        uplink = uplink_failures(fleet, receiver, sites, techs, args)
        result_storm = None
        if args.kills:
            result_storm = storm(
                fleet, centre, receiver, sites=sites, techs=techs, args=args, rng=rng, db=db
            )
        return Result(
            sites=len(sites), seed=args.seed, hold_s=args.hold_s, evaluate_s=args.evaluate_s,
            group_window_s=args.group_window_s, poll_s=args.poll_s,
            connect_s=round(connect_s, 2), uplink=uplink, storm=result_storm,
        )  # fmt: skip
    finally:
        if fleet is not None:
            fleet.close()
        centre.stop()
        receiver.stop()
        broker.stop()


def show(r: Result) -> str:
    u = r.uplink
    lines = [
        f"{r.sites} sites (seed {r.seed}), hold {r.hold_s:g} s, evaluate every "
        f"{r.evaluate_s:g} s, group window {r.group_window_s:g} s, delivery poll "
        f"{r.poll_s:g} s, connect {r.connect_s:.1f} s",
        *(
            f"uplink failure: district {f.district}, {f.sites_down} sites down -> "
            f"{sum(f.messages.values())} messages to {len(f.messages)} recipients, sites per "
            f"message {f.sites_per_message}, one to each recipient owed: "
            f"{'yes' if f.one_each else 'NO'}"
            for f in u.failures
        ),
        f"uplink failures: fired -> delivered p50 {u.p50_s:.2f} s p99 {u.p99_s:.2f} s "
        f"max {u.max_s:.2f} s {'OK' if u.p99_s < 5 else 'OVER'} "
        f"(fired -> queued max {u.queued_max_s:.2f} s, queued -> received max "
        f"{u.sent_max_s:.2f} s), missing {u.missing}",
    ]
    s = r.storm
    if s is not None:
        lines.append(
            f"storm: {s.sites_down} sites down in {s.kills} waves, centre killed -9 {s.kills} "
            f"times (pending at each kill: {s.pending_at_kill}), restart p50 "
            f"{s.restart_p50_s:.1f} s max {s.restart_max_s:.1f} s; fired -> delivered p50 "
            f"{s.p50_s:.2f} s p99 {s.p99_s:.2f} s max {s.max_s:.2f} s; {s.expected} (site, "
            f"recipient) owed, {s.messages} messages received, lost {s.lost}, duplicate keys "
            f"{s.duplicate_keys}, sites told twice {s.retold}, failed in queue "
            f"{s.failed_in_queue}, bad signatures {s.bad_signatures}, settled "
            f"{s.settle_s:.1f} s after the last restart"
            + (f"; lost: {', '.join(s.lost_pairs)}" if s.lost_pairs else "")
        )
    lines.append("LOST" if r.lost else "OK: nothing lost")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=726)
    parser.add_argument("--kills", type=int, default=10, help="kill -9 of the centre in the "
                        "storm (0: no storm)")  # fmt: skip
    parser.add_argument("--uplinks", type=int, default=3,
                        help="district uplink failures, the largest districts first")  # fmt: skip
    parser.add_argument("--seed", type=int, default=18, help="the province and the kill moments")
    parser.add_argument(
        "--storm-sites",
        type=int,
        default=0,
        help="sites dropping in the storm (default: half of those still up)",
    )
    parser.add_argument("--hold-s", type=float, default=5.0, help="the rule's for_s")
    parser.add_argument("--evaluate-s", type=float, default=2.0, help="[alerts] evaluate_every_s")
    parser.add_argument("--group-window-s", type=float, default=3.0,
                        help="[alerts] group_window_s")  # fmt: skip
    parser.add_argument("--poll-s", type=float, default=1.0, help="[alerts.delivery] poll_s")
    parser.add_argument("--receiver-delay-s", type=float, default=0.2,
                        help="storm: how long each webhook answer takes")  # fmt: skip
    parser.add_argument(
        "--settle-s",
        type=float,
        default=120.0,
        help="storm: how long to wait for what is owed after the last restart",
    )
    parser.add_argument("--workdir", help="keep the run's files here (default: a temp dir)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.sites < 29:
        parser.error("--sites: at least 29 (the province's 14 districts need communes)")
    r = run(args)
    if args.json:
        out = asdict(r) | {"lost": r.lost}
        sys.stdout.write(json.dumps(out) + "\n")
    else:
        sys.stdout.write(show(r) + "\n")
    return 1 if r.lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
