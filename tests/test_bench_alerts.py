"""bench/alerts.py: its accounting flags what was lost and told twice, its receiver refuses a
body whose signature does not match, a dropped swarm site makes the broker publish its will,
and a short run (60 sites, a district's uplink down, 2 kill -9 of the centre in a storm) loses
no notification and groups the district's sites into one message per recipient."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import SimSite
from agent.sim.province import ProvinceSite
from agent.sim.swarm import SiteClient
from agent.transport.listener import Listener
from tests.bench_kit import load_bench

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench" / "alerts.py"


def test_accounting_flags_lost_and_retold_sites():
    bench = load_bench("alerts")
    down = [
        ProvinceSite("d1-a", "A", "commune", "d1", 20),
        ProvinceSite("d1-b", "B", "commune", "d1", 20),
        ProvinceSite("d1", "D1", "district", "hatay", 30),
    ]
    want = bench.owed(down, {"d1": "tech-d1"})
    assert want == {(s, c) for s in ("d1-a", "d1-b", "d1") for c in ("tech-d1", "desk")}

    def arrival(contact: str, key: str, sites: tuple[str, ...], event: str = "raised"):
        alerts = tuple((f"down:{s}", s, 100.0) for s in sites)
        return bench.Arrival(105.0, contact, key, event, 104.0, alerts)

    arrivals = [
        arrival("tech-d1", "k1", ("d1-a", "d1-b", "d1")),
        arrival("desk", "k2", ("d1-a", "d1-b")),  # d1 never reached the desk
        arrival("desk", "k3", ("d1-a",)),  # d1-a told the desk twice
        arrival("desk", "k4", ("d1",), event="recovered"),  # not a RAISED: not counted
    ]
    got = bench.told(arrivals)
    assert want - got.keys() == {("d1", "desk")}
    assert [p for p in want if len(got.get(p, ())) > 1] == [("d1-a", "desk")]


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_receiver_checks_the_signature_and_records_the_rest():
    bench = load_bench("alerts")
    receiver = bench.Receiver().start()
    try:
        body = json.dumps({"event": "raised", "created_at": 10.0, "alerts": [
            {"key": "down:x", "site_id": "x", "fired_at": 9.0}]}).encode()  # fmt: skip
        good = {"X-Edge-Signature": bench.signature(bench.SECRET, body), "Idempotency-Key": "k"}
        assert post(receiver.url("tech-a"), body, good) == 200
        forged = {"X-Edge-Signature": bench.signature("other", body), "Idempotency-Key": "k"}
        assert post(receiver.url("tech-a"), body, forged) == 401
        junk = b'{"event": "raised"}'
        signed = {"X-Edge-Signature": bench.signature(bench.SECRET, junk)}
        assert post(receiver.url("tech-a"), junk, signed) == 400
        assert receiver.bad_signatures == 1
        assert receiver.malformed == 1
        [a] = receiver.arrivals
        assert (a.contact, a.key, a.event, a.created_at) == ("tech-a", "k", "raised", 10.0)
        assert a.alerts == (("down:x", "x", 9.0),)
    finally:
        receiver.stop()


def test_a_dropped_site_makes_the_broker_publish_its_will(broker: Mosquitto):
    with Listener(broker.endpoint(), ["vc/+/availability"]).start() as listener:
        client = SiteClient(SimSite("s1"))

        async def connect_and_drop() -> None:
            await client.connect(broker.port)
            client.publish(client.site.availability(), queued=False)
            await asyncio.sleep(0.2)
            client.drop()

        asyncio.run(connect_and_drop())
        assert client.writer is None
        assert listener.wait_for(
            lambda ms: any(m.json().get("status") == "offline" for m in ms), 5.0
        ), [m.payload for m in listener.messages()]


def test_short_run_loses_nothing_and_groups_the_district(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, str(BENCH), "--sites", "60", "--kills", "2", "--seed", "18",
         "--hold-s", "2", "--workdir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    log_path = tmp_path / "centre.log"
    log = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    assert done.returncode == 0, done.stdout + done.stderr + log
    r = json.loads(done.stdout.splitlines()[-1])
    u = r["uplink"]
    assert len(u["failures"]) == 3
    for f in u["failures"]:
        # one message each to the district's technician and the desk, listing every site down
        assert f["messages"] == {f"tech-{f['district']}": 1, "desk": 1}
        assert f["sites_per_message"] == [f["sites_down"]] * 2
        assert f["one_each"]
    assert u["missing"] == 0
    s = r["storm"]
    assert s["kills"] == 2
    assert all(n > 0 for n in s["pending_at_kill"])  # killed with notifications pending
    assert s["lost"] == 0
    assert s["bad_signatures"] == 0
    assert s["failed_in_queue"] == 0
    assert r["lost"] == 0
