"""`centre alerts list|ack|silence|silences|unsilence` and `centre incidents [list]|show|ack|
stats` on a database prepared with the real AlertStore: in this process through the CLI's
main (English and --lang vi), and as real processes under LANG=vi_VN.UTF-8 for what a
technician reads and for the exit codes of bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent.centre.alerts.model import Alert, AlertKind, Severity
from agent.centre.alerts.store import AlertStore, Scope
from agent.cli import main
from agent.messages import catalogue, message
from tests.test_cli_vietnamese import assert_vietnamese, cli

NOW = time.time()
# Ids and names shown as they are: a rule's id is the operator's own word, and a usage line
# or a help list names the commands to type.
NAMES = (
    "down-t15", "dropped", "hb-ls-qt", "hb-ls-vs", "hb-mc-pl", "hb-ls", "hb-mc", "lan", "minh",
    "alerts", "incidents", "unsilence", "silences", "silence", "list", "ack", "show", "stats",
    "test",
)  # fmt: skip


def alert(site: str, rule: str = "down-t15", *, district: str = "hb-ls", ago: float = 600) -> Alert:
    critical = rule == "dropped"
    return Alert(
        key=f"{rule}:{site}",
        rule=rule,
        kind=AlertKind.CALL_DROPPED if critical else AlertKind.SITE_DOWN,
        severity=Severity.CRITICAL if critical else Severity.WARNING,
        site_id=site,
        district=district,
        since=NOW - ago - 120,
        fired_at=NOW - ago,
        reason=message("fleet.problem.offline_nowhy", last_seen="09:58"),
    )


@pytest.fixture
def centre(tmp_path: Path) -> Path:
    """A centre whose database has two alerts firing (one acknowledged) and one incident
    closed: hb-mc-pl, down 300 s, repaired after 200 s."""
    config = tmp_path / "centre.toml"
    config.write_text(f'db_path = "{tmp_path / "centre.sqlite"}"\n')
    store = AlertStore(tmp_path / "centre.sqlite")
    try:
        store.raised(alert("hb-ls-qt", ago=600))
        store.raised(alert("hb-ls-vs", "dropped", ago=120))
        store.ack("dropped:hb-ls-vs", "lan", NOW - 60)
        store.raised(alert("hb-mc-pl", district="hb-mc", ago=300))
        store.resolved("down-t15:hb-mc-pl", NOW - 100)
    finally:
        store.close()
    return config


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["centre", *args, "--config", str(config)])
    except SystemExit as exc:  # argparse's refusal of an argument, or --help
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def opened(config: Path) -> AlertStore:
    return AlertStore(config.parent / "centre.sqlite")


def test_alerts_list_in_english_and_vietnamese(
    centre: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, centre, "alerts", "list", "--lang", "en")
    assert code == 0
    head, first, second = out.splitlines()
    assert head.split()[:3] == ["KEY", "SEVERITY", "SITE"]
    assert first.split()[:3] == ["down-t15:hb-ls-qt", "warning", "hb-ls-qt"]
    assert first.endswith("offline; last heard 09:58") and " - " in first  # not acknowledged
    assert second.split()[:3] == ["dropped:hb-ls-vs", "critical", "hb-ls-vs"] and " lan " in second
    code, out, _ = run(capsys, centre, "alerts", "list", "--lang", "vi")
    assert code == 0 and "nghiêm trọng" in out and "mất liên lạc; liên lạc lần cuối: 09:58" in out
    assert_vietnamese(out, NAMES)
    code, out, _ = run(capsys, centre, "alerts", "list", "--json")
    keys = [(a["key"], a["acked_by"]) for a in json.loads(out)]
    assert keys == [("down-t15:hb-ls-qt", None), ("dropped:hb-ls-vs", "lan")]


def test_ack_by_key_then_by_number_keeps_the_first(
    centre: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = time.time()
    code, out, _ = run(capsys, centre, "alerts", "ack", "down-t15:hb-ls-qt", "--by", "minh")
    after = time.time()
    assert code == 0 and out == "Incident 1 (down-t15:hb-ls-qt) acknowledged by minh.\n"
    code, out, _ = run(capsys, centre, "incidents", "ack", "1", "--by", "lan", "--lang", "vi")
    assert code == 0 and "minh" in out and "giữ nguyên" in out
    assert_vietnamese(out, NAMES)
    code, out, _ = run(capsys, centre, "incidents", "ack", "3", "--lang", "en")
    assert code == 0 and "was closed at" in out and "nothing left to acknowledge" in out
    store = opened(centre)
    try:
        incident = store.incident(1)
        assert incident is not None and incident.acked_by == "minh"
        # acknowledged when the command ran, 600 s after it fired (NOW is when the module was
        # imported: a long test run sits between)
        assert incident.acked_at is not None and before <= incident.acked_at <= after
        assert incident.time_to_ack_s == pytest.approx(incident.acked_at - (NOW - 600))
    finally:
        store.close()


def test_silence_a_district_now_and_a_tier_later_then_end_one(
    centre: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, centre, "alerts", "silence", "--district", "hb-ls", "--for", "2h",
                       "--reason", "cắt điện", "--by", "lan", "--json")  # fmt: skip
    assert code == 0
    now_id = json.loads(out)["id"]
    code, out, _ = run(capsys, centre, "alerts", "silence", "--tier", "commune",
                       "--from", "2099-01-01 22:00", "--until", "2099-01-02T06:00+07:00",
                       "--reason", "bảo trì", "--lang", "vi")  # fmt: skip
    assert code == 0 and "mọi xã" in out and "2099-01-01 22:00" in out
    store = opened(centre)
    try:
        (qt,) = [a for a in store.firing() if a.site_id == "hb-ls-qt"]
        assert store.silenced(qt, time.time())
        assert not store.silenced(qt, time.time() + 2 * 3600 + 1)
        later = store.silences(time.time())[1]
        assert (later.scope, later.value, later.ends_at) == (Scope.TIER, "commune", 4070991600.0)
    finally:
        store.close()
    code, out, _ = run(capsys, centre, "alerts", "silences", "--lang", "en")
    assert code == 0 and "district hb-ls" in out and "every commune" in out and "cắt điện" in out
    code, out, _ = run(capsys, centre, "alerts", "unsilence", str(now_id), "--lang", "en")
    assert code == 0 and out == f"Silence {now_id} ended.\n"
    code, out, _ = run(capsys, centre, "alerts", "silences", "--json")
    assert [s["scope"] for s in json.loads(out)] == ["tier"]


def test_incidents_list_filters_and_show(centre: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, centre, "incidents", "--lang", "en")
    assert code == 0
    lines = out.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["2", "3", "1"]  # newest first
    assert "closed" in lines[2] and "3m20s" in lines[2]
    code, out, _ = run(capsys, centre, "incidents", "list", "--open", "--json")
    assert sorted(i["site_id"] for i in json.loads(out)) == ["hb-ls-qt", "hb-ls-vs"]
    code, out, _ = run(capsys, centre, "incidents", "--district", "hb-mc", "--json")
    assert [i["time_to_repair_s"] for i in json.loads(out)] == [200.0]
    code, out, _ = run(capsys, centre, "incidents", "--since", "1m", "--json")
    assert [i["id"] for i in json.loads(out)] == [2, 1]  # the closed one is older; open stay
    code, out, _ = run(capsys, centre, "incidents", "show", "3", "--lang", "en")
    assert code == 0 and out.startswith("Incident 3\n")
    assert "repaired in 3m20s" in out and "not yet" in out and "site down before a session" in out
    code, out, _ = run(capsys, centre, "incidents", "show", "2", "--lang", "vi")
    assert code == 0 and "rớt cuộc gọi" in out and "bởi lan (sau 1m00s)" in out
    assert_vietnamese(out, NAMES)


def test_stats_by_district_and_site(centre: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, centre, "incidents", "stats", "--json")
    data = json.loads(out)
    assert code == 0 and data["by"] == "district"
    groups = {g["group"]: g for g in data["groups"]}
    assert (groups["hb-ls"]["incidents"], groups["hb-ls"]["open"]) == (2, 2)
    assert groups["hb-ls"]["time_to_ack"] == {"count": 1, "median_s": 60.0, "p90_s": 60.0}
    assert groups["hb-mc"]["time_to_repair"] == {"count": 1, "median_s": 200.0, "p90_s": 200.0}
    code, out, _ = run(capsys, centre, "incidents", "stats", "--by", "site", "--lang", "en")
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    assert rows["hb-mc-pl"] == ["1", "0", "-", "-", "3m20s", "3m20s"]
    assert rows["hb-ls-vs"] == ["1", "1", "1m00s", "1m00s", "-", "-"]


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (("alerts", "ack", "down-t15:nowhere"), "'down-t15:nowhere'"),
        (("incidents", "show", "99"), "'99'"),
        (("incidents", "ack", "99"), "'99'"),
        (("alerts", "unsilence", "42"), " 42 "),
        (("alerts", "silence", "--site", "hb-ls-qt", "--for", "2x", "--reason", "x"), "'2x'"),
        (("alerts", "silence", "--all", "--for", "9999999w", "--reason", "x"), "'9999999w'"),
        (("alerts", "silence", "--site", "hb-ls-qt", "--reason", "x"), "--for"),
        (("alerts", "silence", "--all", "--until", "2001-01-01 00:00", "--reason", "x"), "--until"),
        (("alerts", "silence", "--all", "--from", "tomorrow", "--for", "1h", "--reason", "x"),
         "'tomorrow'"),
        (("incidents", "stats", "--since", "0d"), "'0d'"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_the_fix_in_vietnamese(
    centre: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], where: str
) -> None:
    code, out, err = run(capsys, centre, *args, "--lang", "vi")
    assert code == 2, err
    assert where in err and out == ""
    assert_vietnamese(err, NAMES)


def test_bad_input_from_a_real_process(centre: Path) -> None:
    done = cli("centre", "alerts", "ack", "down-t15:nowhere", "--config", str(centre))
    assert done.returncode == 2 and "'down-t15:nowhere'" in done.stderr and done.stdout == ""
    assert_vietnamese(done.stderr, NAMES)


def test_without_a_database_it_says_where_it_looked(tmp_path: Path) -> None:
    config = tmp_path / "centre.toml"
    config.write_text(f'db_path = "{tmp_path / "none" / "centre.sqlite"}"\n')
    done = cli("centre", "incidents", "--config", str(config))
    assert done.returncode == 3 and "centre.sqlite" in done.stderr
    assert_vietnamese(done.stderr)
    assert not (tmp_path / "none").exists()  # a wrong --config makes no new database


def test_a_technician_reads_vietnamese_everywhere(
    centre: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # LANG=vi_VN.UTF-8 in a real process: what a technician's shell gives.
    for args in (("alerts", "list"), ("incidents", "stats"), ("alerts", "silence", "--help")):
        done = cli("centre", *args, "--config", str(centre))
        assert done.returncode == 0, (args, done.stderr)
        assert_vietnamese(done.stdout, NAMES)
    for args in (("alerts", "silences"), ("incidents",), ("incidents", "show", "1"),
                 ("alerts", "--help"), ("incidents", "--help"), ("incidents", "stats", "--help"),
                 ("alerts", "ack", "--help")):  # fmt: skip
        code, out, err = run(capsys, centre, *args, "--lang", "vi")
        assert code == 0, (args, err)
        assert_vietnamese(out, NAMES)


def test_every_id_made_from_data_is_in_the_catalogue() -> None:
    ids = [f"incidents.severity.{s.value}" for s in Severity]
    ids += [f"incidents.kind.{k.value}" for k in AlertKind]
    ids += [f"incidents.scope.{s.value}" for s in Scope]
    ids += [f"incidents.state.{s}" for s in ("open", "acked", "closed")]
    fields = ["alert", "rule", "kind", "severity", "site", "district", "tier", "opened", "acked",
              "closed", "reason"]  # fmt: skip
    ids += [f"incidents.cli.field.{f}" for f in fields]
    entries = catalogue()
    assert [i for i in ids if i not in entries or not entries[i].get("vi")] == []
