"""The centre against a real mosquitto: simulated sites (real payload models) and a real agent
subprocess report; the centre's status shows each transition (ready, fault, silent, offline by
the will), seq gaps, restarts, shared subscriptions, the attendance report and the schedule."""

from __future__ import annotations

import csv
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.centre.ingest import Ingest
from agent.centre.settings import CentreSettings
from agent.checks.model import Status
from agent.cli import main
from agent.schedule.model import parse_payload
from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import Message, SimSite
from agent.transport.listener import Listener
from tests.fixtures.broker import AgentProcess, agent_config, dump_toml, wait_until


def centre_config(broker: Mosquitto, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "broker": broker.broker_settings("centre"),
        "db_path": str(tmp_path / "centre.sqlite"),
        "report_interval_s": 1.0,
        "silent_after": 3.0,
        "gap_grace_s": 0.0,
        "retained_wait_s": 0.5,
        **extra,
    }


@pytest.fixture
def centre_cfg(broker: Mosquitto, tmp_path: Path) -> dict[str, Any]:
    cfg = centre_config(broker, tmp_path)
    (tmp_path / "centre.toml").write_text(dump_toml(cfg))
    return cfg


@pytest.fixture
def start_centre(centre_cfg: dict[str, Any]) -> Iterator[Callable[..., Ingest]]:
    started: list[Ingest] = []

    def make(instance: str = "", **extra: Any) -> Ingest:
        ingest = Ingest(CentreSettings.model_validate({**centre_cfg, **extra}), instance)
        started.append(ingest.start())
        return ingest

    yield make
    for ingest in started:
        if ingest._writer.is_alive():
            ingest.stop()


@pytest.fixture
def publisher(broker: Mosquitto) -> Iterator[Callable[..., None]]:
    conn = Listener(broker.endpoint(), ["vc/nothing"]).start()

    def send(*messages: Message) -> None:
        for topic, payload, retain in messages:
            conn.publish(topic, payload, 1, retain)

    yield send
    time.sleep(0.2)  # let the last publishes out
    conn.stop()


def status(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    capsys.readouterr()
    main(["centre", "status", "--config", str(tmp_path / "centre.toml"), "--json"])
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    data["by_site"] = {n["site_id"]: n for n in data["not_ready"]}
    return data


def cond(tmp_path: Path, capsys: pytest.CaptureFixture[str], site: str) -> str:
    """A site's condition from `centre status --json`: absent from not_ready is ready, but
    only once the centre has recorded the site at all ("absent" before: a site not yet
    ingested is not ready, and a test settling on it must not go on too early)."""
    entry = status(tmp_path, capsys)["by_site"].get(site)
    if entry is not None:
        return str(entry["condition"])
    db = sqlite3.connect(tmp_path / "centre.sqlite")
    try:
        row = db.execute("SELECT condition FROM sites WHERE site_id = ?", (site,)).fetchone()
    finally:
        db.close()
    return "ready" if row is not None and row[0] == "ready" else "absent"


def eventually(tmp_path: Path, capsys: pytest.CaptureFixture[str], site: str, want: str,
               timeout: float = 10.0) -> bool:  # fmt: skip
    return wait_until(lambda: cond(tmp_path, capsys, site) == want, timeout, 0.2)


def test_status_shows_every_transition_and_a_seq_gap(
    broker, tmp_path, capsys, start_centre, publisher
):
    start_centre()
    sites = {
        "p1": SimSite("p1", tier="province"),
        "d1": SimSite("d1", tier="district", parent="p1"),
        "c1": SimSite("c1", parent="d1"),
        "c2": SimSite("c2", parent="d1"),
    }
    for s in sites.values():
        publisher(*s.birth())
    real = AgentProcess(
        agent_config(broker, tmp_path / "agent", "c-real", check_interval_s=0.5), tmp_path
    ).start()
    keep_alive = ("p1", "c1", "c2")

    def beat() -> None:
        for sid in keep_alive:
            publisher(sites[sid].state())

    def settle(site: str, want: str, timeout: float = 10.0) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            beat()
            if cond(tmp_path, capsys, site) == want:
                return True
            time.sleep(0.3)
        return False

    assert settle("c1", "ready")
    assert settle("c2", "ready")  # seen ready first: a later fault is then a transition
    assert settle("c-real", "ready"), real.log()
    # a component fails at c2: fault, with the component and its reason
    sites["c2"].statuses["camera"] = Status.FAIL
    publisher(sites["c2"].checks(), sites["c2"].state("check"))
    assert settle("c2", "fault")
    c2 = status(tmp_path, capsys)["by_site"]["c2"]
    assert any("camera fail: camera: simulated fail" in p for p in c2["problems"])
    # c1 loses three reports: the gap is reported
    sites["c1"].skip(3)
    publisher(sites["c1"].state())
    assert wait_until(lambda: status(tmp_path, capsys)["lost"] == 3, 5)
    # d1 stops talking but stays `online`: silent after 3 x 1 s
    assert settle("d1", "silent")
    # the real agent is killed -9: the broker publishes its will -> offline
    real.kill()
    assert settle("c-real", "offline", 10)
    data = status(tmp_path, capsys)
    assert any("connection lost (will)" in p for p in data["by_site"]["c-real"]["problems"])
    assert data["counts"] == {"ready": 2, "degraded": 0, "fault": 1, "offline": 1,
                              "silent": 1, "never_seen": 0, "unknown": 0,
                              "unreachable": 0}  # fmt: skip
    assert data["by_tier"]["district"]["silent"] == 1
    assert data["by_parent"]["commune under d1"]["fault"] == 1
    # not ready, sorted by tier: district before commune
    assert [n["tier"] for n in data["not_ready"]] == ["district", "commune", "commune"]

    # each transition is recorded, in order (the periodic sweep records silence within 1 s).
    # All of them: the real agent checking every 0.5 s can flip often enough on a loaded CI
    # machine to push c2's early `ready` out of a short window of recent events.
    def changes() -> dict[str, list[str]]:
        capsys.readouterr()
        main(["centre", "status", "--config", str(tmp_path / "centre.toml"), "--json",
              "--events", "1000000"])  # fmt: skip
        out: dict[str, list[str]] = {}
        for e in json.loads(capsys.readouterr().out)["events"]:
            out.setdefault(e["site_id"], []).append(e["new"])
        return out

    assert wait_until(lambda: changes()["d1"][-2:] == ["ready", "silent"], 3), changes()
    seen = changes()
    assert seen["c2"][-2:] == ["ready", "fault"], seen
    assert seen["c-real"][-2:] == ["ready", "offline"], seen
    # the text view names the same
    capsys.readouterr()
    code = main(["centre", "status", "--config", str(tmp_path / "centre.toml")])
    text = capsys.readouterr().out
    assert code == 2
    assert "c-real" in text and "OFFLINE" in text and "reports lost" in text


def events_of(tmp_path: Path, capsys: pytest.CaptureFixture[str], site: str) -> list[str]:
    """Every condition the centre recorded for `site`, oldest first."""
    capsys.readouterr()
    main(["centre", "status", "--config", str(tmp_path / "centre.toml"), "--json",
          "--events", "1000000"])  # fmt: skip
    events = json.loads(capsys.readouterr().out)["events"]
    return [e["new"] for e in events if e["site_id"] == site]


def test_a_site_in_session_that_only_heartbeats_stays_ready(
    tmp_path, capsys, start_centre, publisher
):
    # meta: checks every 0.1 s, a state at least every 1 s. In a session the agent skips its
    # checks and only heartbeats: judged by the check interval (window 3 x 0.1 s) the site
    # turned silent between two heartbeats; judged by its heartbeat (3 x 1 s) it stays ready.
    start_centre()
    site = SimSite("c1", check_interval_s=0.1, heartbeat_s=1.0)
    publisher(*site.birth())
    assert eventually(tmp_path, capsys, "c1", "ready", 5)
    for _ in range(4):
        publisher(site.state())
        time.sleep(0.8)
        assert cond(tmp_path, capsys, "c1") == "ready"
    # then it stops: silent once the heartbeat bound has passed, not before
    time.sleep(1.2)
    assert cond(tmp_path, capsys, "c1") == "ready"
    assert eventually(tmp_path, capsys, "c1", "silent", 10)
    assert "heartbeat every 1 s" in status(tmp_path, capsys)["by_site"]["c1"]["problems"][0]
    assert wait_until(lambda: events_of(tmp_path, capsys, "c1")[-1:] == ["silent"], 3)
    events = events_of(tmp_path, capsys, "c1")  # (`unknown` first if the birth was split)
    assert events[events.index("ready") :] == ["ready", "silent"], events


def test_restart_keeps_state_and_reports_made_while_down(
    broker, tmp_path, capsys, start_centre, publisher
):
    site = SimSite("c1", parent="d1")
    first = start_centre()
    publisher(*site.birth())
    site.statuses["display"] = Status.WARN
    publisher(site.state("check"))
    assert eventually(tmp_path, capsys, "c1", "degraded")
    site.skip(2)
    publisher(site.checks())
    assert wait_until(lambda: status(tmp_path, capsys)["lost"] == 2, 5)
    first.stop()

    # while the centre is down: the broker queues for its persistent session
    made_while_down = [site.checks() for _ in range(5)]
    publisher(*made_while_down)
    time.sleep(0.3)
    second = start_centre()
    assert wait_until(lambda: second.stored >= 5, 5)
    data = status(tmp_path, capsys)
    assert data["by_site"]["c1"]["condition"] == "degraded"
    assert data["lost"] == 2, "a restart must neither forget the gap nor invent one"
    # a duplicate (at-least-once) changes nothing
    publisher(made_while_down[-1])
    publisher(site.state())
    assert wait_until(lambda: second.stored >= 7, 5)
    assert status(tmp_path, capsys)["lost"] == 2


def test_counted_drops_explain_a_gap_and_historical_does_not_override(
    tmp_path, capsys, start_centre, publisher
):
    ingest = start_centre()
    site = SimSite("c1")
    publisher(*site.birth())
    # the outbox dropped 4 checks and says so: a gap of 4, explained
    site.skip(4)
    site.dropped_checks = 4
    publisher(site.state())
    assert wait_until(lambda: ingest.stored >= 3, 5)
    time.sleep(0.2)
    data = status(tmp_path, capsys)
    assert data["lost"] == 0
    # an old report sent late from the outbox does not become the live picture
    site.statuses["camera"] = Status.FAIL
    publisher(site.state("check", historical=True))
    time.sleep(0.5)
    assert cond(tmp_path, capsys, "c1") == "ready"


def test_shared_subscription_splits_the_load_and_loses_nothing(tmp_path, start_centre, publisher):
    a = start_centre("a")
    b = start_centre("b")
    sites = [SimSite(f"s{i}") for i in range(10)]
    for s in sites:
        publisher(*s.birth())
    for _ in range(20):
        for s in sites:
            publisher(s.checks())
    assert wait_until(lambda: a.stored + b.stored >= 10 * 22, 10)
    assert a.stored > 20 and b.stored > 20, (a.stored, b.stored)
    time.sleep(0.5)
    now = time.time()
    rows = a.store.sites(now, 1.0, 0.0)
    assert len(rows) == 10 and sum(r.lost for r in rows) == 0


def test_attendance_report_and_csv(tmp_path, capsys, start_centre, publisher):
    ingest = start_centre()
    commune = SimSite("c1", parent="d1", expected=20)
    district = SimSite("d1", tier="district", expected=50)
    publisher(*commune.birth(), *district.birth())
    for n in (10, 18, 16, None):  # None: the detector could not count; never 0
        publisher(commune.attendance("S1", n))
    for n in (40, 45):
        publisher(district.attendance("S1", n))
    publisher(district.attendance("other", 99))
    assert wait_until(lambda: ingest.stored >= 13, 5)
    out_csv = tmp_path / "s1.csv"
    capsys.readouterr()
    assert main(["centre", "report", "S1", "--config", str(tmp_path / "centre.toml"),
                 "--csv", str(out_csv), "--json"]) == 0  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    by_site = {s["site_id"]: s for s in data["sites"]}
    assert by_site["c1"]["peak"] == 18 and by_site["c1"]["median"] == 16
    assert by_site["c1"]["rate"] == 0.9 and by_site["c1"]["samples"] == 4
    assert data["province"]["expected"] == 70 and data["province"]["counted"] == 63
    assert [t["label"] for t in data["tiers"]] == ["district", "commune"]
    # one CSV, a section column, UTF-8 with a BOM (agent/centre/report/export.py)
    rows = list(csv.DictReader(out_csv.open(encoding="utf-8-sig")))
    province = next(r for r in rows if r["section"] == "total_province")
    assert province["counted"] == "63" and province["expected"] == "70"


def test_schedule_add_list_remove(broker, tmp_path, capsys, centre_cfg):
    cfg = ["--config", str(tmp_path / "centre.toml")]
    watcher = Listener(broker.endpoint(), ["vc/schedule", "vc/c1/schedule"]).start()
    try:
        assert main(["centre", "schedule", "add", "S1", *cfg, "--start",
                     "2026-03-10T08:00:00+07:00", "--end", "2026-03-10T11:00:00+07:00",
                     "--title", "Họp", "--expected", "30"]) == 0  # fmt: skip
        day2 = ["--start", "2026-03-11T08:00:00+07:00", "--end", "2026-03-11T09:00:00+07:00"]
        assert main(["centre", "schedule", "add", "S2", *cfg, *day2]) == 0
        day3 = ["--start", "2026-03-12T08:00:00+07:00", "--end", "2026-03-12T09:00:00+07:00"]
        assert main(["centre", "schedule", "add", "S9", "--site", "c1", *cfg, *day3]) == 0
        assert main(["centre", "schedule", "remove", "S1", *cfg]) == 0
        assert main(["centre", "schedule", "remove", "nope", *cfg]) == 1
        capsys.readouterr()
        assert main(["centre", "schedule", "list", *cfg, "--json"]) == 0
        listed = json.loads(capsys.readouterr().out)
        assert [e["session_id"] for e in listed["entries"]] == ["S2"]
    finally:
        watcher.stop()
    # what an agent would read: the retained message parses with the agent's own parser
    with Listener(broker.endpoint(), ["vc/schedule", "vc/c1/schedule"]) as late:
        assert late.wait_for(lambda ms: len(ms) >= 2, 3)
        retained = {m.topic: parse_payload(m.payload) for m in late.messages() if m.retain}
    assert [e.session_id for e in retained["vc/schedule"].entries] == ["S2"]
    assert [e.session_id for e in retained["vc/c1/schedule"].entries] == ["S9"]


def test_serve_runs_as_a_command(broker, tmp_path, centre_cfg, publisher):
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from tests.fixtures.broker import ROOT  # noqa: PLC0415

    site = SimSite("c1")
    publisher(*site.birth())  # retained before the centre starts: the retained pass sees it
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "centre", "serve", "--config",
         str(tmp_path / "centre.toml"), "--seconds", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "report(s) stored" in proc.stdout
    out = subprocess.run(
        [sys.executable, "-m", "agent", "centre", "status", "--config",
         str(tmp_path / "centre.toml"), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert json.loads(out.stdout)["total"] == 1


def test_stale_retained_state_and_garbage_on_the_wire(
    tmp_path, capsys, start_centre, publisher, broker
):
    from datetime import UTC, datetime, timedelta  # noqa: PLC0415

    from agent.contract.payloads import StatePayload  # noqa: PLC0415

    site = SimSite("c1")
    topic, body, _ = site.state("birth")
    old = StatePayload.model_validate_json(body).model_copy(
        update={"ts": datetime.now(UTC) - timedelta(hours=1)}
    )
    # an availability `online` left retained with a state an hour old: the agent's host died
    # without the broker noticing yet (or an old retained picture from an earlier life)
    avail_topic, avail, _ = site.availability()
    publisher((avail_topic, avail, True), (topic, old.to_bytes(), True))
    time.sleep(0.3)
    ingest = start_centre()
    publisher(("vc/c2/state", b"not json", False), ("vc/c1/checks", b'{"schema": 1}', False))
    publisher(("vc/c3/state", SimSite("c4").state()[1], False))  # another site's payload
    assert wait_until(lambda: ingest.rejected >= 3, 5)
    entry = status(tmp_path, capsys)["by_site"]["c1"]
    assert entry["condition"] == "silent"
    assert any("stale retained state" in p for p in entry["problems"])
    # the centre kept going: a fresh live state makes the site ready
    publisher(site.state())
    assert eventually(tmp_path, capsys, "c1", "ready", 5)
    assert status(tmp_path, capsys)["total"] == 1


def test_a_database_made_before_heartbeat_s_gets_the_column_and_keeps_its_sites(tmp_path):
    from agent.centre.store import Incoming, Store  # noqa: PLC0415
    from agent.contract.payloads import MetaPayload  # noqa: PLC0415

    path = tmp_path / "centre.sqlite"
    db = sqlite3.connect(path)
    db.execute(  # the sites table as the release before heartbeat_s made it
        "CREATE TABLE sites (site_id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '', "
        "tier TEXT NOT NULL DEFAULT 'commune', parent TEXT, expected INTEGER, "
        "agent_version TEXT, check_interval_s REAL, availability TEXT, avail_boot INTEGER, "
        "avail_ts REAL, avail_reason TEXT NOT NULL DEFAULT '', last_seen REAL, verdict TEXT, "
        "state_seq INTEGER, state_ts REAL, state_cause TEXT, "
        "state_retained INTEGER NOT NULL DEFAULT 0, pending INTEGER, next_seq INTEGER, "
        "dropped_base INTEGER, dropped_last INTEGER, condition TEXT)"
    )
    db.execute("INSERT INTO sites (site_id, check_interval_s) VALUES ('c1', 30)")
    db.commit()
    db.close()
    store = Store(path)
    try:
        (row,) = store.sites(time.time(), 60.0, 0.0)
        assert (row.site_id, row.interval_s, row.heartbeat_s) == ("c1", 30.0, None)
        meta = MetaPayload.model_validate_json(SimSite("c1", heartbeat_s=45.0).meta()[1])
        store.apply_batch([Incoming(meta, True, time.time())])
        (row,) = store.sites(time.time(), 60.0, 0.0)
        assert row.heartbeat_s == 45.0
    finally:
        store.close()
    Store(path).close()  # opening it again adds nothing twice


def test_serve_honours_broker_protocol_and_says_what_needs_mqtt5(broker, tmp_path, publisher):
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from agent.sim.broker import V311OnlyProxy  # noqa: PLC0415
    from tests.fixtures.broker import ROOT  # noqa: PLC0415

    publisher(*SimSite("c1").birth())
    proxy = V311OnlyProxy(broker.port).start()
    config = tmp_path / "centre.toml"

    def serve(**extra: Any) -> subprocess.CompletedProcess[str]:
        cfg = centre_config(broker, tmp_path, **extra)
        cfg["broker"]["port"] = proxy.port
        config.write_text(dump_toml(cfg))
        return subprocess.run(
            [sys.executable, "-m", "agent", "centre", "serve", "--config", str(config),
             "--seconds", "2"],
            cwd=ROOT, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    try:
        shared = serve()  # share_group "centre", protocol auto: the broker speaks only 3.1.1
        alone = serve(share_group="")
    finally:
        proxy.stop()
    assert shared.returncode == 3, shared.stderr
    assert "share_group 'centre': shared subscriptions need MQTT 5" in shared.stderr
    assert 'set share_group = ""' in shared.stderr and "Traceback" not in shared.stderr
    assert alone.returncode == 0, alone.stderr
    assert "report(s) stored" in alone.stdout
    out = subprocess.run(
        [sys.executable, "-m", "agent", "centre", "status", "--config", str(config), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert json.loads(out.stdout)["total"] == 1


def _old_state(site: SimSite) -> Message:
    """A `state` as an agent from before message ids wrote it: no reason_msg / hint_msg."""
    topic, body, retain = site.state()
    data = json.loads(body)
    for comp in data["components"].values():
        comp.pop("reason_msg"), comp.pop("hint_msg")
    return topic, json.dumps(data).encode(), retain


def test_reasons_sent_as_messages_show_in_the_operators_language(
    broker, tmp_path, capsys, monkeypatch, start_centre, publisher
):
    """A site running in English sends its network fault as message ids; `centre status`
    with a Vietnamese locale shows it in Vietnamese. An older site's plain English reason is
    stored and shown as it came."""
    from agent.checks.model import CheckResult  # noqa: PLC0415
    from agent.checks.network_metrics import PathStats, judge_network  # noqa: PLC0415
    from agent.config import NetworkSettings  # noqa: PLC0415
    from agent.contract.payloads import StatePayload, parse_report, state_components  # noqa: PLC0415

    start_centre()
    new, old = SimSite("c-new"), SimSite("c-old")
    publisher(*new.birth(), *old.birth())
    # Ready at birth: the fault below can only come from the states this test sends.
    new.statuses["network"] = old.statuses["camera"] = Status.FAIL
    outcome = judge_network(
        [PathStats("broker_tcp", 3, (), "Connection refused")], NetworkSettings()
    )
    assert outcome.reason == "broker_tcp unreachable: Connection refused"  # the site's English
    result = CheckResult.from_outcome("network", outcome, datetime.now(UTC), 0.1)
    topic, body, retain = new.state()
    state = parse_report(StatePayload, body)
    told = state.model_copy(
        update={"components": {**state.components, **state_components([result])}}
    )
    publisher((topic, told.to_bytes(), retain), _old_state(old))
    assert eventually(tmp_path, capsys, "c-new", "fault")
    assert eventually(tmp_path, capsys, "c-old", "fault")

    def text(lang: str) -> str:
        monkeypatch.setenv("LANG", lang)
        capsys.readouterr()
        main(["centre", "status", "--config", str(tmp_path / "centre.toml")])
        return capsys.readouterr().out

    # The change log after the list keeps the English it was recorded in.
    vi = text("vi_VN.UTF-8").split("lần thay đổi gần nhất:")[0]
    assert (
        "network không đạt: broker_tcp: không kết nối được: Connection refused (kiểm tra dây" in vi
    )
    assert "broker_tcp unreachable" not in vi
    assert "camera không đạt: camera: simulated fail (check it)" in vi  # the old site's words
    en = text("en_US.UTF-8")
    assert "network fail: broker_tcp unreachable: Connection refused (check the network cable" in en
    # The JSON for scripts stays English whatever the locale.
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    by_site = status(tmp_path, capsys)["by_site"]
    assert any("broker_tcp unreachable" in p for p in by_site["c-new"]["problems"])


def test_a_database_made_before_message_ids_keeps_its_components(tmp_path):
    from agent.centre.store import Store  # noqa: PLC0415

    path = tmp_path / "centre.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("DROP TABLE schema_version")  # that release had no versioned schema
    db.execute("DROP TABLE components")
    db.execute(  # the components table as the release before message ids made it
        "CREATE TABLE components (site_id TEXT NOT NULL, component TEXT NOT NULL, "
        "status TEXT NOT NULL, reason TEXT NOT NULL, hint TEXT NOT NULL, "
        "PRIMARY KEY (site_id, component))"
    )
    db.execute("INSERT INTO sites (site_id) VALUES ('c1')")
    db.execute("INSERT INTO components VALUES ('c1', 'camera', 'fail', 'camera: dark', 'light')")
    db.commit()
    db.close()
    store = Store(path)
    try:
        (row,) = store.sites(time.time(), 60.0, 0.0)
        camera = row.components["camera"]
        assert (camera.reason_in("vi"), camera.hint_in("vi")) == ("camera: dark", "light")
        assert camera.reason_msg is None
    finally:
        store.close()


def test_processes_opening_an_older_database_at_once_all_open_it(tmp_path):
    """ingest, `centre status`, the page and a second centre may open a database from before
    a column was added at the same moment: each must open it, none fail on the column."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from tests.fixtures.broker import ROOT  # noqa: PLC0415

    for trial in range(5):
        path = tmp_path / f"old{trial}.sqlite"
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode=WAL")  # as every store this centre ever made
        db.execute("CREATE TABLE sites (site_id TEXT PRIMARY KEY, name TEXT NOT NULL DEFAULT '')")
        db.commit()
        db.close()
        at = time.time() + 1.0  # all four open it at the same moment, after start-up
        code = (
            "import time; from pathlib import Path; from agent.centre.store import Store; "
            f"time.sleep(max(0.0, {at} - time.time())); Store(Path({str(path)!r})).close()"
        )
        procs = [
            subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE)
            for _ in range(4)
        ]
        errors = [p.communicate(timeout=60)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
