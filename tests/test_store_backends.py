"""The fleet store's semantics, the same on SQLite and on a real PostgreSQL (docs/store.md):
every test runs once per backend (the `store_location` fixture)."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from agent.centre import link
from agent.centre.alerts.model import Alert, AlertKind, Severity
from agent.centre.alerts.store import AlertStore
from agent.centre.settings import CentreSettings
from agent.centre.store import Incoming, RegionState, RosterEntry, Store
from agent.centre.store.base import SchemaTooNew, StoreError, open_database, shown
from agent.centre.web.accounts import AccountError, Accounts, DisplayExists, Role
from agent.centre.web.commands import Log
from agent.centre.web.server import Dashboard
from agent.cli import main
from agent.cli.fleet import _hold_instance
from agent.contract.payloads import PAYLOADS, Envelope
from agent.errors import AlreadyRunning
from agent.messages import message
from agent.sim.fleet_site import Message, SimSite
from tests.test_dashboard import Client


def payload(m: Message) -> Envelope:
    return PAYLOADS[json.loads(m[1])["schema"].split("/")[1]].model_validate_json(m[1])


def feed(store: Store, *messages: Message, at: float | None = None) -> set[str]:
    now = time.time() if at is None else at
    return store.apply_batch(Incoming(payload(m), False, now) for m in messages)


@pytest.fixture
def store(store_location: Path | str) -> Store:
    s = Store(store_location)
    yield s  # type: ignore[misc]
    s.close()


def count(store: Store, table: str) -> int:
    return int(store.db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_duplicate_report_is_ignored_and_a_gap_is_found_then_filled(store):
    site = SimSite("c1")
    first = site.state()
    feed(store, site.availability(), site.meta(), first)
    feed(store, first)  # at-least-once delivery: the same (site_id, seq) again
    assert count(store, "reports") == 1
    site.skip(2)  # seqs 2 and 3 taken, not (yet) delivered
    feed(store, site.state())
    (gap,) = store.gaps("c1")
    assert (gap.first, gap.last, gap.filled) == (2, 3, 0)
    late = SimSite("c1", seq=1).state()  # seq 2 arrives late
    feed(store, late)
    feed(store, late)
    (gap,) = store.gaps("c1")
    assert gap.filled == 1 and count(store, "reports") == 3


def test_a_batch_is_stored_whole_or_not_at_all_and_the_next_one_goes_through(store):
    site = SimSite("c1")
    good = Incoming(payload(site.state()), False, time.time())
    with pytest.raises(AttributeError):
        store.apply_batch([good, object()])  # type: ignore[list-item]
    assert count(store, "reports") == 0 and count(store, "sites") == 0
    assert store.apply_batch([good]) == {"c1"}
    assert count(store, "reports") == 1


def test_the_silent_scan_leaves_out_sites_behind_a_cut_region_until_it_returns(store):
    """The sweep runs every second: a region of thousands of sites cut off must not be
    re-read each time. Its return touches them all, so they are judged again then."""
    now = time.time()
    store.import_roster([RosterEntry("c1", "Xã Một", "commune", "d1", None, region="r001")], now)
    site = SimSite("c1", heartbeat_s=10.0)
    touched = feed(store, *site.birth(), at=now)
    store.record_conditions(now, 3.0, 60.0, 30.0, touched)
    assert store.apply_batch([RegionState("r001", False, now + 1)]) == {"c1"}
    (ev,) = store.record_conditions(now + 1, 3.0, 60.0, 30.0, {"c1"})
    assert (ev.old, ev.new) == ("ready", "unreachable")
    assert store.maybe_silent(now + 31, 3.0, 60.0) == set()  # it would be silent: 3 x 10 s
    assert store.apply_batch([RegionState("r001", True, now + 40)]) == {"c1"}
    (ev,) = store.record_conditions(now + 40, 3.0, 60.0, 30.0, {"c1"})
    assert (ev.old, ev.new) == ("unreachable", "silent")


def test_times_keep_their_fraction_of_a_second(store):
    at = 1_790_000_123.456789  # an epoch time: PostgreSQL's 4-byte REAL would round it
    site = SimSite("c1")
    feed(store, site.availability(), site.state(), at=at)
    (row,) = store.sites(at, 60.0, 30.0)
    assert row.last_seen == at


def test_conditions_events_and_the_silent_scan(store):
    now = time.time()
    site = SimSite("c1", heartbeat_s=10.0)
    touched = feed(store, *site.birth(), at=now)
    (ev,) = store.record_conditions(now, 3.0, 60.0, 30.0, touched)
    assert (ev.site_id, ev.old, ev.new) == ("c1", None, "ready")
    assert store.record_conditions(now, 3.0, 60.0, 30.0, touched) == []
    assert store.maybe_silent(now + 29, 3.0, 60.0) == set()
    assert store.maybe_silent(now + 31, 3.0, 60.0) == {"c1"}  # 3 heartbeats of 10 s
    (ev,) = store.record_conditions(now + 31, 3.0, 60.0, 30.0, {"c1"})
    assert (ev.old, ev.new) == ("ready", "silent")
    assert [e.new for e in store.events("c1")] == ["ready", "silent"]
    assert store.events("other") == []
    newest, changed = store.changed_since(0)
    assert newest >= 2 and changed == {"c1"}


def test_attendance_live_counts_and_reading_in_insertion_order(store):
    a, b = SimSite("c1"), SimSite("c2")
    feed(store, a.attendance("s1", 10), b.attendance("s1", 4))
    feed(store, a.attendance("s1", 12), a.attendance("s2", 3))
    assert store.latest_counts("s1") == {"c1": 12, "c2": 4}
    assert [r.count for r in store.attendance("s1", "c1")] == [10, 12]
    assert len(store.attendance("s1")) == 3
    assert store.latest_session() == "s2"
    rows = store.attendance_since("s1", 0)
    assert [r.count for _, r in rows] == [10, 4, 12]
    assert store.attendance_since("s1", rows[1][0]) == rows[2:]


def test_roster_import_and_removal(store):
    now = time.time()
    entries = [
        RosterEntry("c1", "Xã Một", "commune", None, 5, "north"),
        RosterEntry("c2", "Xã Hai", "commune", None, None),
    ]
    change = store.import_roster(entries, now)
    assert (change.added, change.updated) == (2, 0)
    assert store.import_roster(entries[:1], now, replace=True).removed == ["c2"]
    assert [r.site_id for r in store.roster()] == ["c1"]
    assert store.known({"c1", "c2"}) == {"c1"}
    assert store.expected_of()["c1"] == ("commune", 5, True)


def test_retention_forgets_history_older_than_the_cutoff(store):
    site = SimSite("c1")
    old = time.time() - 100 * 86400
    feed(store, site.state(), site.attendance("s1", 3), at=old)
    feed(store, site.state())
    assert store.prune(time.time() - 90 * 86400) == 2
    assert count(store, "reports") == 1
    assert count(store, "attendance") == 1  # kept by when it was made (now), not stored


def test_two_writers_on_one_site_lose_no_seq(store_location):
    """Two centre processes sharing the load write the same site's rows: their batches take
    turns (BEGIN IMMEDIATE; PostgreSQL's advisory lock), so seq tracking sees every report."""
    Store(store_location).close()
    site = SimSite("c1")
    messages = [site.state() for _ in range(200)]
    stores = [Store(store_location), Store(store_location)]

    def write(s: Store, part: list[Message]) -> None:
        for i in range(0, len(part), 10):
            feed(s, *part[i : i + 10])

    threads = [
        threading.Thread(target=write, args=(s, messages[i::2])) for i, s in enumerate(stores)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert count(stores[0], "reports") == 200
        assert [g for g in stores[0].gaps("c1") if g.filled < g.last - g.first + 1] == []
        row = stores[0].db.row("SELECT next_seq FROM sites WHERE site_id = 'c1'")
        assert row is not None and row["next_seq"] == 201
    finally:
        for s in stores:
            s.close()


def test_the_schema_is_versioned_and_an_older_one_is_migrated(store_location):
    Store(store_location).close()
    db = open_database(store_location)
    try:
        versions = db.execute("SELECT part, version FROM schema_version").fetchall()
        assert [tuple(v) for v in versions] == [("fleet", 2)]
        # Back to version 1: the columns added since are gone.
        db.execute("ALTER TABLE roster DROP COLUMN region")
        db.execute("ALTER TABLE components DROP COLUMN hint_msg")
        db.execute("UPDATE schema_version SET version = 1")
    finally:
        db.close()
    store = Store(store_location)
    try:
        assert {"region"} <= store.db.columns("roster")
        assert {"reason_msg", "hint_msg"} <= store.db.columns("components")
        store.import_roster([RosterEntry("c1", "Xã", "commune", None, 1, "north")], 0.0)
        assert store.roster()[0].region == "north"
    finally:
        store.close()


def test_a_schema_newer_than_this_edge_agent_is_refused(store_location):
    Store(store_location).close()
    db = open_database(store_location)
    db.execute("UPDATE schema_version SET version = 99")
    db.close()
    with pytest.raises(SchemaTooNew) as err:
        Store(store_location)
    assert (err.value.version, err.value.newest) == (99, 2)


# ---- `centre store migrate`: an SQLite store copied into PostgreSQL ----------------------


def test_migrate_copies_an_sqlite_store_into_postgresql_whole(tmp_path, pg_url, capsys):
    path = tmp_path / "centre.sqlite"
    old = Store(path)
    now = time.time()
    a, b = SimSite("c1", heartbeat_s=10.0), SimSite("c2")
    old.import_roster([RosterEntry("c3", "Xã Ba", "commune", None, 7, "north")], now)
    touched = feed(old, *a.birth(), *b.birth(), a.attendance("s1", 5), b.attendance("s1", 6))
    a.skip(3)
    touched |= feed(old, a.state(), a.attendance("s1", 8))
    old.record_conditions(now, 3.0, 60.0, 30.0, touched)
    before = (old.sites(now, 60.0, 30.0), old.events(), old.attendance_since("s1", 0),
              old.gaps("c1"), old.roster(), old.expected_of())  # fmt: skip
    old.close()
    alerts, accounts = AlertStore(path), Accounts(path)
    first = alerts.raised(fired("c1"))
    accounts.add("anh", "mat-khau-dai", Role.OPERATOR)
    token, _ = accounts.open_session("anh", 3600)
    alerts.close()
    accounts.close()

    assert main(["centre", "store", "migrate", "--from", str(path), "--to", pg_url]) == 0
    out = capsys.readouterr().out
    assert "reports: 6 rows" in out and "attendance: 3 rows" in out
    new = Store(pg_url)
    try:
        after = (new.sites(now, 60.0, 30.0), new.events(), new.attendance_since("s1", 0),
                 new.gaps("c1"), new.roster(), new.expected_of())  # fmt: skip
        assert after == before
        # Numbering goes on after the copied rows: the next event and sample come last.
        (ev,) = new.record_conditions(now + 100, 3.0, 60.0, 30.0, {"c1"})
        assert new.events()[-1] == ev
        feed(new, b.attendance("s1", 9))
        assert new.attendance_since("s1", 0)[-1][1].count == 9
    finally:
        new.close()
    alerts, accounts = AlertStore(pg_url), Accounts(pg_url)
    try:
        assert alerts.incidents() == [first]
        second = alerts.raised(fired("c2"))
        assert second.id > first.id  # numbering goes on after the copied incidents
        assert accounts.session(token) is not None  # the operator stays signed in
        assert accounts.verify("anh", "mat-khau-dai") is Role.OPERATOR
    finally:
        alerts.close()
        accounts.close()

    # Again into the same database: refused, nothing merged.
    assert main(["centre", "store", "migrate", "--from", str(path), "--to", pg_url]) != 0
    assert "already has rows in table" in capsys.readouterr().err
    assert main(["centre", "store", "migrate", "--from", str(tmp_path / "no.sqlite"),
                 "--to", pg_url]) != 0  # fmt: skip
    assert "not found" in capsys.readouterr().err
    assert not (tmp_path / "no.sqlite").exists()


def fired(site_id: str) -> Alert:
    return Alert(
        key=f"down:{site_id}", rule="down", kind=AlertKind.SITE_DOWN, severity=Severity.WARNING,
        site_id=site_id, site_name=site_id, district="", since=1.8e9, fired_at=1.8e9,
        reason=message("notify.kind.site_down"),
    )  # fmt: skip


def test_an_unreachable_postgresql_is_a_clear_error(tmp_path):
    url = f"postgresql:///x?host={tmp_path}&user=edge&connect_timeout=2"
    with pytest.raises(StoreError) as err:
        Store(url)
    assert "cannot open the PostgreSQL store" in err.value.message
    assert "db_url" in err.value.hint


# ---- accounts and sessions in the shared store ---------------------------------------------


def test_any_centre_process_serves_any_operator_and_display(store_location):
    one, two = Accounts(store_location), Accounts(store_location)  # two centre processes
    try:
        one.add("anh", "mat-khau-dai", Role.OPERATOR)
        with pytest.raises(AccountError, match="exists"):
            two.add("anh", "mat-khau-khac", Role.VIEWER)
        token, session = one.open_session("anh", 60)
        assert two.session(token) == session  # signed in on one, known to the other
        two.add("anh", "mat-khau-moi", Role.VIEWER, replace=True)
        assert one.session(token) is None and one.verify("anh", "mat-khau-moi") is Role.VIEWER

        invite = one.issue_display("tuong-1")
        with pytest.raises(DisplayExists):
            two.issue_display("tuong-1")
        opened = two.open_display(invite)
        assert opened is not None and one.session(opened[0]) == opened[1]
        assert one.open_display(invite) is None  # an invitation opens one screen, once
        again = one.issue_display("tuong-1", replace=True)
        assert two.session(opened[0]) is None  # issued again: the old screen is out
        assert [(d.name, d.invited) for d in two.displays()] == [("tuong-1", True)]
        assert two.open_display(again) is not None
    finally:
        one.close()
        two.close()


def test_the_page_command_log_is_shared_by_centre_processes(store_location):
    one, two = Log(store_location), Log(store_location)
    try:
        base = {"command_id": "cmd-1", "operator": "anh", "action": "identify", "reason": ""}
        for site in ("s1", "s2"):
            one.add(base | {"at": 1.0, "site_id": site, "status": "sent", "deadline": 61.0})
        two.add(base | {"at": 2.0, "site_id": "s1", "status": "succeeded"})
        sent = two.sent("cmd-1")
        assert sent is not None and sent.request.sites == ("s1", "s2")
        assert [s.request.command_id for s in two.waiting()] == ["cmd-1"]  # s2 has not answered
        assert [r["status"] for r in one.recent("s1")] == ["succeeded", "sent"]
        assert one.sent("other") is None
    finally:
        one.close()
        two.close()


def test_the_centres_broker_link_is_read_from_every_process_row(store_location):
    store = Store(store_location)
    assert link.read(store.db, 100.0) == link.NOT_RUNNING  # no serve has run yet
    a, b = link.open_link(store_location), link.open_link(store_location)
    try:
        link.record(a, "a", up=True, since=10.0, judged_at=None, now=100.0)
        link.record(b, "b", up=False, since=50.0, judged_at=40.0, now=100.0)
        link.record(b, "b", up=False, since=50.0, judged_at=45.0, now=101.0)  # one row each
        assert link.read(store.db, 101.0) == link.CentreLink("up", 10.0, None)
        link.forget(a, "a")
        assert link.read(store.db, 101.0) == link.CentreLink("down", 50.0, 45.0)
        assert link.read(store.db, 101.0 + link.STALE_S + 1) == link.NOT_RUNNING
    finally:
        a.close()
        b.close()
        store.close()


# ---- every centre command on the store centre.toml names -----------------------------------


def test_the_centre_commands_run_on_the_store_centre_toml_names(store_location, tmp_path, capsys):
    if isinstance(store_location, str):
        where = store_location + "&password=s3cret"  # trust auth ignores it; never printed
        line = f'db_url = "{where}"'
    else:
        where, line = str(store_location), f'db_path = "{store_location}"'
    config = tmp_path / "centre.toml"
    config.write_text(line + "\n")
    status = ["centre", "status", "--config", str(config)]
    # Nothing made yet: a clear "not found" naming the store, no new empty store.
    for command in (status, ["centre", "alerts", "list", "--config", str(config)]):
        assert main(command) != 0
        err = capsys.readouterr().err
        assert "fleet database" in err and "not found" in err and "s3cret" not in err
    assert main(["centre", "sites", "list", "--config", str(config)]) == 0
    assert isinstance(store_location, str) or not store_location.exists()

    roster = tmp_path / "roster.csv"
    roster.write_text("id,name,tier,parent,summoned\nc1,Xã Một,commune,,\n")
    assert main(["centre", "sites", "import", str(roster), "--config", str(config)]) == 0
    store = Store(store_location)
    feed(store, *SimSite("c2").birth())
    store.close()
    capsys.readouterr()
    main([*status, "--json", "--events", "0"])
    view = json.loads(capsys.readouterr().out)
    assert view["total"] == 2 and view["counts"]["never_seen"] == 1  # c1 on the roster only
    assert main(["centre", "alerts", "list", "--config", str(config)]) == 0
    assert main(["centre", "contacts", "list", "--config", str(config)]) == 0
    assert main(["centre", "notify", "queue", "--config", str(config)]) == 0
    assert main(["centre", "display", "issue", "tuong-1", "--config", str(config)]) == 0
    assert main(["centre", "display", "list", "--config", str(config)]) == 0
    assert "tuong-1" in capsys.readouterr().out
    assert "s3cret" not in "".join(capsys.readouterr())


def test_one_serve_per_instance_on_a_postgresql_store(pg_url):
    settings = settings_on(pg_url)
    held = _hold_instance(settings, "a")
    try:
        with pytest.raises(AlreadyRunning) as err:
            _hold_instance(settings, "a")  # another process, maybe on another host
        assert f"pid {os.getpid()}@{socket.gethostname()}" in err.value.message
        other = _hold_instance(settings, "b")  # another instance shares the store by design
        other.release()  # type: ignore[attr-defined]
    finally:
        held.release()  # type: ignore[attr-defined]
    _hold_instance(settings, "a").release()  # type: ignore[attr-defined]  # free once it ends


def settings_on(store_location: Path | str, **extra: Any) -> CentreSettings:
    where = "db_url" if isinstance(store_location, str) else "db_path"
    return CentreSettings.model_validate({where: str(store_location), **extra})


def test_two_centre_processes_enforce_one_login_limit(store_location):
    settings = settings_on(store_location, web_login_failures=3)
    accounts = Accounts(store_location)
    accounts.add("anh", "mat-khau-dai", Role.OPERATOR)
    accounts.close()
    one = Dashboard(settings, "127.0.0.1:0", with_broker=False).start()
    two = Dashboard(settings, "127.0.0.1:0", with_broker=False).start()
    try:
        a, b = Client(one.url), Client(two.url)
        # Three wrong guesses spread over the two processes: the limit is the shared one.
        assert [c.login("anh", "sai-mat-khau")[0] for c in (a, b, a)] == [401, 401, 401]
        assert b.login("anh", "mat-khau-dai")[0] == 429  # even the right password
        assert a.login("anh", "mat-khau-dai")[0] == 429
    finally:
        one.stop()
        two.stop()


def test_a_store_url_is_shown_without_its_password():
    assert shown("postgresql://edge:pw@db.example.vn:5433/edge?password=x&sslmode=require") == (
        "postgresql://edge@db.example.vn:5433/edge?sslmode=require"
    )
    assert (
        shown("postgresql:///edge?host=/run/postgresql")
        == "postgresql:///edge?host=/run/postgresql"
    )
    assert shown(Path("/var/lib/c.sqlite")) == "/var/lib/c.sqlite"


# ---- opening an SQLite store ------------------------------------------------------------------


def _open_at_the_same_moment(path: str, barrier: Any) -> None:
    from agent.centre import db  # noqa: PLC0415 - in the child process

    barrier.wait()
    db.connect(Path(path), "CREATE TABLE IF NOT EXISTS t (a INTEGER);").close()


def test_centre_processes_opening_a_new_sqlite_store_together_all_open(tmp_path):
    """Two centre processes started together on a new file race to switch it to WAL; SQLite
    answers the loser 'database is locked' at once, without its busy wait (bench/scale.py's
    second centre died so, one time in four)."""
    import multiprocessing  # noqa: PLC0415

    fork = multiprocessing.get_context("fork")
    for round_ in range(12):
        path = tmp_path / f"r{round_}.sqlite"
        barrier = fork.Barrier(4)
        procs = [
            fork.Process(target=_open_at_the_same_moment, args=(str(path), barrier))
            for _ in range(4)
        ]
        for p in procs:
            p.start()
        for p in procs:
            p.join(60)
        assert [p.exitcode for p in procs] == [0, 0, 0, 0], f"round {round_}"


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path, capsys):
    where = tmp_path / "centre.sqlite"
    where.write_bytes(b"not a database, " * 200)
    with pytest.raises(StoreError) as caught:
        Store(where)
    assert str(where) in caught.value.message and "no other program" in caught.value.hint
    config = tmp_path / "centre.toml"
    config.write_text(f'db_path = "{where}"\n')
    assert main(["centre", "status", "--config", str(config)]) != 0
    err = capsys.readouterr().err
    assert "cannot open the centre's database" in err and "Traceback" not in err
