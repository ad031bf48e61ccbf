"""The roster of expected sites: `centre sites import|list|remove` run as real processes on a
real fleet database; a listed site never heard from in `centre status` and the page's
snapshot; and the attendance rate that counts absent sites against the summoned numbers."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.centre import fleet, report
from agent.centre.fleet import Condition, SiteRow
from agent.centre.roster import parse_roster
from agent.centre.settings import CentreSettings
from agent.centre.store import AttendanceRow, Incoming, RosterEntry, Store
from agent.centre.web import views
from agent.centre.web.accounts import Accounts, Role
from agent.centre.web.server import Dashboard
from agent.contract.payloads import PAYLOADS, Envelope
from agent.sim.fleet_site import Message, SimSite

ROOT = Path(__file__).resolve().parent.parent
HEADER = "id,name,tier,parent,summoned\n"
GOOD = (
    HEADER + "hb,UBND tỉnh Hòa Bình,province,,40\n"
    "hb-ls,UBND huyện Lạc Sơn,district,hb,30\n"
    "hb-ls-qt,UBND xã Quyết Thắng,commune,hb-ls,12\n"
    'hb-ls-vt,"UBND xã Văn Sơn, Lạc Sơn",commune,hb-ls,\n'
)


def cli(tmp_path: Path, *args: str, lang: str = "C.UTF-8") -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "LANG": lang, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "agent", "centre", *args, "--config", str(tmp_path / "c.toml")],
        check=False, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
    )  # fmt: skip


@pytest.fixture
def centre(tmp_path: Path) -> Path:
    (tmp_path / "c.toml").write_text(
        f'db_path = "{tmp_path / "centre.sqlite"}"\nreport_interval_s = 5.0\n'
    )
    return tmp_path


def write(path: Path, data: str | bytes) -> Path:
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def listed(tmp_path: Path) -> dict[str, dict[str, object]]:
    out = cli(tmp_path, "sites", "list", "--json")
    assert out.returncode == 0, out.stderr
    return {r["id"]: r for r in json.loads(out.stdout)}


def roster_table(tmp_path: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(tmp_path / "centre.sqlite")
    try:
        return db.execute("SELECT * FROM roster ORDER BY site_id").fetchall()
    finally:
        db.close()


def feed(store: Store, *messages: Message) -> None:
    def payload(m: Message) -> Envelope:
        return PAYLOADS[json.loads(m[1])["schema"].split("/")[1]].model_validate_json(m[1])

    touched = store.apply_batch(Incoming(payload(m), False, time.time()) for m in messages)
    store.record_conditions(time.time(), 3.0, 5.0, 30.0, touched)


# ---- the CLI -----------------------------------------------------------------------------


def test_import_with_a_bom_lists_the_sites_never_seen_and_reimport_updates(centre):
    bom = write(centre / "r.csv", b"\xef\xbb\xbf" + GOOD.encode())
    out = cli(centre, "sites", "import", str(bom))
    assert out.returncode == 0, out.stderr
    assert "4 added, 0 updated" in out.stdout
    rows = listed(centre)
    assert rows["hb-ls-vt"]["name"] == "UBND xã Văn Sơn, Lạc Sơn"  # a quoted comma
    assert rows["hb-ls-qt"]["summoned"] == 12 and rows["hb-ls-vt"]["summoned"] is None
    assert rows["hb"]["parent"] is None and rows["hb-ls"]["tier"] == "district"
    assert {r["condition"] for r in rows.values()} == {"never_seen"}
    assert all(isinstance(r["since"], float) for r in rows.values())
    # again, changed: updated in place, the others kept
    write(centre / "r2.csv", HEADER + "hb-ls-qt,UBND xã Quyết Thắng,commune,hb-ls,15\n")
    assert "0 added, 1 updated" in cli(centre, "sites", "import", str(centre / "r2.csv")).stdout
    rows = listed(centre)
    assert len(rows) == 4 and rows["hb-ls-qt"]["summoned"] == 15
    # the table, in Vietnamese
    table = cli(centre, "sites", "list", lang="vi_VN.UTF-8").stdout
    assert "số người triệu tập" in table and "chưa từng liên lạc" in table
    assert "UBND xã Quyết Thắng" in table


def test_replace_takes_off_the_sites_the_file_does_not_list_and_remove_says_what_it_did(centre):
    cli(centre, "sites", "import", str(write(centre / "r.csv", GOOD)))
    only = write(centre / "only.csv", HEADER + "hb,UBND tỉnh Hòa Bình,province,,40\n")
    out = cli(centre, "sites", "import", str(only), "--replace")
    assert "3 taken off; 1 sites listed" in out.stdout
    assert set(listed(centre)) == {"hb"}
    out = cli(centre, "sites", "remove", "hb", "nope")
    assert out.returncode == 1
    assert "taken off the roster: hb" in out.stdout and "not on the roster: nope" in out.stdout
    assert listed(centre) == {}
    # never heard from, so nothing is left of them: not in `centre status` either
    status = json.loads(cli(centre, "status", "--json").stdout)
    assert status["total"] == 0


BAD = {
    "missing column": (HEADER.replace(",summoned", "") + "x1,A,commune,\n",
                       "line 1: column missing: summoned"),
    "bad tier": (HEADER + "x1,A,commune,,1\nx2,B,town,,1\n",
                 "line 3, column tier: 'town' is not a tier"),
    "negative summoned": (HEADER + "x1,A,commune,,-3\n",
                          "line 2, column summoned: -3 people summoned"),
    "summoned not a number": (HEADER + "x1,A,commune,,ten\n",
                              "line 2, column summoned: 'ten' is not a whole number"),
    "duplicate id": (HEADER + "x1,A,commune,,1\nx2,B,commune,,1\nx1,C,commune,,1\n",
                     "line 4, column id: site 'x1' is already on line 2"),
    "unquoted comma": (HEADER + "x1,UBND xã A, B,commune,,1\n",
                       "line 2: 6 fields, but the first line names 5"),
    "bad id": (HEADER + "X 1,A,commune,,1\n", "line 2, column id: 'X 1' is not a site id"),
    "empty name": (HEADER + "x1,,commune,,1\n", "line 2, column name: the name is empty"),
    "short row": (HEADER + "x1,A,commune\n", "line 2: 3 fields, but the first line names 5"),
    "not UTF-8": ((HEADER + "x1,UBND xã ").encode() + "Đông,commune,,1\n".encode("cp1258"),
                  "line 2: not UTF-8 text"),
    "no rows": (HEADER, "the file lists no site"),
}  # fmt: skip


@pytest.mark.parametrize("kind", BAD)
def test_a_bad_file_names_line_and_column_and_imports_nothing(centre, kind):
    store = Store(centre / "centre.sqlite")
    store.import_roster(parse_roster(GOOD.encode()), time.time())
    store.close()
    before = roster_table(centre)
    data, said = BAD[kind]  # most carry good new rows before the bad one: none may land
    out = cli(centre, "sites", "import", str(write(centre / "bad.csv", data)))
    assert out.returncode == 3, out
    assert said in out.stderr and "nothing was imported" in out.stderr
    assert "Traceback" not in out.stderr
    assert roster_table(centre) == before


def test_a_bad_file_is_refused_in_vietnamese_too(centre):
    out = cli(centre, "sites", "import", str(write(centre / "bad.csv", BAD["bad tier"][0])),
              lang="vi_VN.UTF-8")  # fmt: skip
    assert "dòng 3, cột tier" in out.stderr and "chưa nhập gì" in out.stderr


def test_a_missing_file_is_a_clear_error(centre):
    out = cli(centre, "sites", "import", str(centre / "nowhere.csv"))
    assert out.returncode == 3 and "nowhere.csv: cannot read the file" in out.stderr


# ---- never seen, since, the roster's names -----------------------------------------------


def test_status_counts_never_seen_and_a_report_turns_it_ready_under_the_rosters_names(centre):
    cli(centre, "sites", "import", str(write(centre / "r.csv", GOOD)))
    out = cli(centre, "status", "--json")
    assert out.returncode == 2  # a summoned site that never came is not fine
    data = json.loads(out.stdout)
    assert data["counts"]["never_seen"] == 4
    assert {n["condition"] for n in data["not_ready"]} == {"never_seen"}
    text = cli(centre, "status").stdout
    assert "never seen   4" in text and "on the roster, never heard from" in text
    # the commune reports under its own settings' name and parent: the roster's win
    store = Store(centre / "centre.sqlite")
    try:
        # a listed site is the province's own: a command may name it, a typo still may not
        assert store.known({"hb-ls-qt", "hb-ls-qtt"}) == {"hb-ls-qt"}
        site = SimSite("hb-ls-qt", parent="wrong", expected=99)
        before = time.time()
        feed(store, *site.birth())
        rows = {r.site_id: r for r in store.sites(time.time(), 5.0, 30.0)}
        qt = rows["hb-ls-qt"]
        assert fleet.condition(qt, time.time(), 3.0) is Condition.READY
        assert (qt.name, qt.parent, qt.summoned, qt.on_roster) == (
            "UBND xã Quyết Thắng", "hb-ls", 12, True)  # fmt: skip
        assert qt.since is not None and qt.since >= before
        assert [(e.old, e.new) for e in store.events("hb-ls-qt")] == [
            (None, "never_seen"), ("never_seen", "ready")]  # fmt: skip
        # taken off the roster, a site heard from stays, under what it reported
        assert store.remove_from_roster(["hb-ls-qt"]) == (["hb-ls-qt"], [])
        (qt,) = store.sites(time.time(), 5.0, 30.0, {"hb-ls-qt"})
        assert (qt.name, qt.parent, qt.summoned) == ("Site hb-ls-qt", "wrong", 99)
        assert not qt.on_roster
    finally:
        store.close()


def test_the_page_snapshot_shows_the_never_seen_sites(centre):
    cli(centre, "sites", "import", str(write(centre / "r.csv", GOOD)))
    settings = CentreSettings.model_validate(
        {"db_path": str(centre / "centre.sqlite"), "report_interval_s": 5.0}
    )
    store = Store(settings.db_path)
    feed(store, *SimSite("hb", tier="province").birth())
    store.close()
    accounts = Accounts(settings.db_path)
    accounts.add("view", "correct horse battery", Role.VIEWER)
    accounts.close()
    from tests.test_dashboard import Client  # noqa: PLC0415

    dash = Dashboard(settings, "127.0.0.1:0", with_broker=False).start()
    try:
        c = Client(dash.url)
        assert c.login("view", "correct horse battery")[0] == 200
        status, data, _ = c.call("GET", "/api/fleet")
    finally:
        dash.stop()
    assert status == 200
    tiles = {t["id"]: t for t in data["tiles"]}
    never = {"hb-ls", "hb-ls-qt", "hb-ls-vt"}
    assert {k: t["c"] for k, t in tiles.items()} == {"hb": "ready"} | dict.fromkeys(
        never, "never_seen"
    )
    assert tiles["hb-ls"]["name"] == "UBND huyện Lạc Sơn"
    assert tiles["hb-ls"]["why_msg"]["code"] == "fleet.problem.never_seen"
    assert data["counters"]["counts"]["never_seen"] == 3


def test_an_older_database_gets_the_roster_and_each_sites_since_from_its_events(tmp_path):
    path = tmp_path / "centre.sqlite"
    store = Store(path)
    feed(store, *SimSite("c1").birth())
    (at,) = [e.at for e in store.events("c1")]
    store.close()
    db = sqlite3.connect(path)  # back to the release before: no roster, no cond_since
    db.execute("DROP TABLE roster")
    db.execute("DROP TABLE schema_version")  # nor a versioned schema
    db.execute("ALTER TABLE sites DROP COLUMN cond_since")
    db.commit()
    db.close()
    store = Store(path)
    try:
        (row,) = store.sites(time.time(), 5.0, 30.0)
        assert row.since == at and not row.on_roster
        store.import_roster([RosterEntry("c2", "Xã Hai", "commune", None, 3)], time.time())
        assert [r.site_id for r in store.roster()] == ["c2"]
    finally:
        store.close()
    Store(path).close()  # opening it again adds nothing twice


def test_never_seen_comes_before_offline_and_says_why():
    bare = SiteRow("x", on_roster=True)
    assert fleet.condition(bare, 1e9, 3) is Condition.NEVER_SEEN
    assert fleet.problems(bare, Condition.NEVER_SEEN, 1e9, 3) == ["on the roster, never heard from"]
    will = SiteRow("x", availability="offline", avail_reason="connection lost (will)")
    assert fleet.condition(will, 1e9, 3) is Condition.OFFLINE


# ---- the attendance rate -----------------------------------------------------------------


def sample(site: str, count: int | None, expected: int | None = None) -> AttendanceRow:
    return AttendanceRow(site, "S", 1000.0, count, expected, None, None)


def test_the_rate_counts_absent_sites_as_zero_against_the_summoned_numbers():
    sites: dict[str, report.SiteInfo] = {
        "p": ("province", 40, True),  # came: 38 of 40
        "d": ("district", 30, True),  # the roster's 30 wins over the 50 its samples say
        "c1": ("commune", 20, True),  # offline: absent
        "c2": ("commune", None, False),  # never seen and no number: cannot be over or under
        "c3": ("commune", 10, False),  # no roster number: its samples' 12 wins over meta's 10
        "c4": ("commune", 10, False),  # silent since before the session: absent
    }
    rows = [sample("p", 30), sample("p", 38), sample("d", 27, 50), sample("c3", 6, 12)]
    rep = report.session_report("S", rows, sites)
    by = {s.site_id: s for s in rep.sites}
    assert set(by) == {"p", "d", "c1", "c3", "c4"}
    assert by["d"].expected == 30 and by["d"].rate == 0.9
    assert by["c3"].expected == 12
    assert (by["c1"].absent, by["c1"].peak, by["c1"].rate, by["c1"].samples) == (True, None, 0.0, 0)
    p = rep.province
    assert (p.expected, p.counted, p.absent, p.sites) == (40 + 30 + 20 + 12 + 10, 38 + 27 + 6, 2, 5)
    assert p.rate == round(71 / 112, 3)
    communes = next(t for t in rep.tiers if t.label == "commune")
    assert (communes.expected, communes.counted, communes.absent) == (42, 6, 2)
    att = views.attendance(rep)
    assert att.to_json() == {"session": "S", "counted": 71, "expected": 112, "sites": 5,
                             "rate": round(71 / 112, 4), "absent": 2}  # fmt: skip
    assert "absent" in report.to_csv(rep).splitlines()[0]
    text = report.render(rep, "en")
    assert "session S: 3 of 5 summoned or counting sites reported" in text
    assert "whole province: 5 sites, 112 summoned, 71 counted, rate 63%, 2 absent" in text
    c1 = next(line for line in text.splitlines() if line.strip().startswith("c1 "))
    assert c1.split()[-3:] == ["0%", "0", "absent"]
    vi = report.render(rep, "vi")
    assert "toàn tỉnh: 5 điểm cầu, 112 người triệu tập, đếm được 71" in vi
    assert "2 điểm cầu vắng mặt" in vi and "absent" not in vi


def test_without_absent_sites_or_a_roster_the_rate_is_what_it_was():
    rows = [sample("a", 18, 20), sample("b", 45, 50)]
    rep = report.session_report("S", rows, {"a": ("commune", 25), "b": ("district", None)})
    assert (rep.province.counted, rep.province.expected, rep.province.rate) == (63, 70, 0.9)
    assert rep.province.absent == 0
