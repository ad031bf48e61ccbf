"""Regional brokers bridged to a central one (docs/brokers.md): the generated configuration,
and three real mosquitto processes (two regional, one central) with a real centre ingest on
the central broker: a site on a regional broker is seen at the centre; a cut bridge delivers
its backlog; a regional broker killed -9 makes the sites behind it `unreachable` (from the
bridge's state topic), not offline one by one, and they come back with it; the centre's
schedule and commands reach a site on a regional broker, once."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.centre import brokers, fleet
from agent.centre.ingest import Ingest
from agent.centre.roster import parse_roster
from agent.centre.settings import CentreSettings
from agent.centre.store import Store
from agent.cli import main
from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import Message, SimSite
from agent.sim.swarm import SiteClient
from agent.transport.listener import Listener
from tests.fixtures.broker import may_publish, wait_until

# ---- the generator ----------------------------------------------------------------------


def test_config_for_three_regions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["centre", "brokers", "config", "--regions", "3", "--central",
                 "central.example.org:8883", "--out", str(tmp_path)]) == 0  # fmt: skip
    assert "8" in capsys.readouterr().out  # 2 central files + 2 per region
    regional = (tmp_path / "r002" / "mosquitto.conf").read_text().splitlines()
    for line in [
        "connection r002",
        "address central.example.org:8883",
        "bridge_protocol_version mqttv50",
        "cleansession false",
        "remote_clientid bridge-r002",
        "notifications true",
        "notification_topic vc/$bridge/r002/state",
        "topic vc/+/state out 1",
        "topic vc/+/live/event out 1",
        "topic vc/+/cmd in 1",
        "topic vc/schedule in 1",
        "remote_username bridge-r002",
    ]:
        assert line in regional
    # Not `vc/# out`: it would carry the bridge's own local "0" to the central broker.
    assert not [x for x in regional if x.startswith("topic vc/#")]
    acl = (tmp_path / "central" / "central.acl").read_text()
    assert "user centre\ntopic readwrite vc/#" in acl
    bridge = acl[acl.index("user bridge-r003") :].splitlines()
    assert "topic write vc/+/state" in bridge and "topic read vc/schedule" in bridge
    assert "topic write vc/$bridge/r003/state" in bridge
    assert not [x for x in bridge if "readwrite" in x]
    site = (tmp_path / "r001" / "edge-agent.acl").read_text()
    assert "pattern write vc/%u/state" in site and "readwrite" not in site
    assert sorted(p.name for p in tmp_path.iterdir()) == ["central", "r001", "r002", "r003"]


@pytest.mark.parametrize(
    "args", [["--regions", "0", "--central", "c:1"], ["--regions", "2", "--central", "nope"]]
)
def test_bad_arguments_say_what_to_give(
    args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["centre", "brokers", "config", *args, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code != 0
    assert "HOST:PORT" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_a_bridge_user_writes_only_reports_and_its_own_state(tmp_path: Path) -> None:
    """The generated central ACL at a real mosquitto: the user of region r001's bridge may
    forward its sites' reports and its own state, not a schedule, a command or r002's state."""
    central = Mosquitto(
        tmp_path / "central", auth="password", acl=brokers.central_acl("vc", ["r001", "r002"])
    )
    central.add_user("bridge-r001", "pw-r001")
    with central:
        allowed = ["vc/a1/state", "vc/a1/live/event", "vc/$bridge/r001/state"]
        refused = ["vc/a1/schedule", "vc/schedule", "vc/a1/cmd", "vc/cmd",
                   "vc/$bridge/r002/state"]  # fmt: skip
        verdicts = {t: may_publish(central, "bridge-r001", t) for t in allowed + refused}
    assert verdicts == {topic: topic in allowed for topic in allowed + refused}


def test_roster_region_column() -> None:
    entries = parse_roster(b"id,name,tier,parent,summoned,region\na1,A,commune,,,r001\n")
    assert entries[0].region == "r001"
    assert parse_roster(b"id,name,tier,parent,summoned\na1,A,commune,,\n")[0].region is None


def test_bridge_state_topic_is_no_site_topic() -> None:
    topic = brokers.bridge_state_topic("vc", "r001")
    assert brokers.region_of_topic("vc", topic) == "r001"
    assert brokers.region_of_topic("vc", "vc/r001/state") is None
    assert brokers.region_of_topic("vc", "vc/$bridge/../state") is None


# ---- three real brokers -------------------------------------------------------------------

BACKLOG = 500  # reports a site sends while its region is cut off from the central broker


class Region:
    def __init__(self, name: str, central: Mosquitto, workdir: Path) -> None:
        bridge = brokers.Bridge(
            name, central.host, central.port, tls=False, username="", restart_timeout="1"
        )
        self.name = name
        self.broker = Mosquitto(workdir, extra=bridge.lines(), save_each_change=True).start()

    def publisher(self) -> Listener:
        return Listener(self.broker.endpoint(), ["vc/nothing"]).start()


def send(conn: Listener, *messages: Message) -> None:
    for topic, payload, retain in messages:
        conn.publish(topic, payload, 1, retain)


@pytest.fixture
def bridged(tmp_path: Path) -> Iterator[dict[str, Any]]:
    central = Mosquitto(tmp_path / "central", save_each_change=True).start()
    regions = {n: Region(n, central, tmp_path / n) for n in ("r001", "r002")}
    db = tmp_path / "centre.sqlite"
    store = Store(db)
    roster = b"id,name,tier,parent,summoned,region\n" + b"".join(
        f"{s},{s},commune,,,{r}\n".encode()
        for s, r in (("a1", "r001"), ("a2", "r001"), ("b1", "r002"))
    )
    store.import_roster(parse_roster(roster), time.time())
    settings = CentreSettings.model_validate(
        {
            "broker": central.broker_settings("centre"),
            "db_path": str(db),
            "report_interval_s": 60.0,
            "silent_after": 3.0,
            "gap_grace_s": 0.0,
            "retained_wait_s": 0.5,
        }
    )
    ingest = Ingest(settings).start()
    # The bridges announce themselves up at the central broker: the centre has them.
    assert wait_until(lambda: _regions(db) == {"r001": 1, "r002": 1}, 10), _regions(db)
    yield {"central": central, "regions": regions, "store": store, "ingest": ingest}
    ingest.stop()
    store.close()
    for r in regions.values():
        r.broker.stop()
    central.stop()


def _regions(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as con:
        return dict(con.execute("SELECT region, up FROM regions").fetchall())


def born_ready(bridged: dict[str, Any]) -> dict[str, SimSite]:
    """a1 and a2 on region r001, b1 on r002: born, and judged ready at the centre."""
    r1, r2 = bridged["regions"]["r001"], bridged["regions"]["r002"]
    sites = {s: SimSite(s) for s in ("a1", "a2", "b1")}
    with r1.publisher() as p1, r2.publisher() as p2:
        send(p1, *sites["a1"].birth(), *sites["a2"].birth())
        send(p2, *sites["b1"].birth())
        ready = {"a1": "ready", "a2": "ready", "b1": "ready"}
        assert wait_until(lambda: conditions(bridged["store"]) == ready, 10), conditions(
            bridged["store"]
        )
    return sites


def conditions(store: Store) -> dict[str, str]:
    now = time.time()
    return {s.site_id: fleet.condition(s, now, 3.0).value for s in store.sites(now, 60.0, 0.0)}


def stored_seqs(store: Store, site_id: str) -> set[int]:
    rows = store.db.execute("SELECT seq FROM reports WHERE site_id = ?", (site_id,))
    return {r[0] for r in rows}


@pytest.mark.broker
def test_site_on_a_regional_broker_is_seen_and_a_cut_bridge_loses_nothing(bridged) -> None:
    store, central = bridged["store"], bridged["central"]
    client = SiteClient(SimSite("a1"))

    async def acked(count: int) -> None:
        while len(client.acked_seqs) < count:
            await asyncio.sleep(0.01)

    async def scenario() -> None:
        await client.connect(bridged["regions"]["r001"].broker.port)
        client.announce()
        seen = await asyncio.to_thread(wait_until, lambda: conditions(store)["a1"] == "ready", 10)
        assert seen, conditions(store)
        # The bridge cut: the central broker goes away (SIGTERM, its sessions saved); the
        # site keeps reporting to its regional broker, which queues them for the bridge.
        await asyncio.to_thread(central.stop)
        for _ in range(BACKLOG):
            client.publish(client.site.state())
        await asyncio.wait_for(acked(BACKLOG + 1), 10)  # the birth state, and these
        await asyncio.to_thread(central.start)
        await client.close()

    asyncio.run(scenario())
    want = set(client.acked_seqs)
    assert wait_until(lambda: want <= stored_seqs(store, "a1"), 30), (
        f"{len(want - stored_seqs(store, 'a1'))} of {len(want)} acknowledged reports missing"
    )
    # And the bridges are up again, as the centre sees it: the "0" the regional broker
    # published locally when the bridge went down never reaches the central broker.
    time.sleep(1.0)
    assert _regions(store.path) == {"r001": 1, "r002": 1}
    assert conditions(store)["a1"] == "ready"


@pytest.mark.broker
def test_regional_broker_killed_makes_its_sites_unreachable_then_back(bridged) -> None:
    store = bridged["store"]
    r1 = bridged["regions"]["r001"]
    sites = born_ready(bridged)
    killed = time.monotonic()
    r1.broker.kill()
    cut = {"a1": "unreachable", "a2": "unreachable", "b1": "ready"}
    assert wait_until(lambda: conditions(store) == cut, 5), conditions(store)
    took = time.monotonic() - killed
    print(f"\nregion r001 killed -9 -> its sites unreachable at the centre in {took:.2f} s")
    rows = {s.site_id: s for s in store.sites(time.time(), 60.0, 0.0)}
    problem = fleet.problems(rows["a1"], fleet.Condition.UNREACHABLE, time.time(), 3.0)[0]
    assert "region r001" in problem
    # Recorded as the region's condition, not as offline one by one.
    events = [e for e in store.events() if e.site_id in ("a1", "a2")]
    assert "offline" not in {e.new for e in events}
    r1.broker.start()
    assert wait_until(lambda: _regions(store.path) == {"r001": 1, "r002": 1}, 15)
    with r1.publisher() as p1:
        send(p1, sites["a1"].state(), sites["a2"].state())
        ready = dict.fromkeys(sites, "ready")
        assert wait_until(lambda: conditions(store) == ready, 10), conditions(store)


@pytest.mark.broker
def test_the_centres_schedule_and_commands_reach_a_site_on_a_regional_broker(bridged) -> None:
    central, r1 = bridged["central"], bridged["regions"]["r001"]
    site = Listener(r1.broker.endpoint(), ["vc/schedule", "vc/a1/cmd", "vc/cmd"]).start()
    try:
        with Listener(central.endpoint(), ["vc/nothing"]) as centre:
            centre.publish("vc/schedule", b'{"every": "site"}', 1, True)
            centre.publish("vc/a1/cmd", b'{"for": "a1"}', 1, False)
            centre.publish("vc/cmd", b'{"for": "all"}', 1, False)
            want = {"vc/schedule", "vc/a1/cmd", "vc/cmd"}
            assert site.wait_for(lambda got: {m.topic for m in got} >= want, 10), [
                m.topic for m in site.messages()
            ]
        # Each once: what comes in is not sent back out and in again.
        time.sleep(0.5)
        assert sorted(m.topic for m in site.messages()) == sorted(want)
    finally:
        site.stop()
