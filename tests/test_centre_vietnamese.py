"""The centre's and the counter's CLI under LANG=vi_VN.UTF-8 print no English sentence.

Each case runs the real command in a new interpreter, on a real fleet database written by the
centre's own store from the payloads sites send, and looks for English words with the
detector of tests/test_cli_vietnamese.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.centre.ingest import parse
from agent.centre.store import Incoming, Store
from agent.checks.model import Status
from agent.sim.fleet_site import Message, SimSite
from agent.transport.listener import Received
from tests.fixtures.broker import ROOT, Mosquitto, dump_toml
from tests.test_centre import centre_config
from tests.test_cli_vietnamese import _SUB_COMMAND, assert_vietnamese, cli, vi_env


def _store(store: Store, messages: list[Message], at: float) -> None:
    store.apply_batch(
        [
            Incoming(parse("vc", Received(t, body, retain)), retain, at)
            for t, body, retain in messages
        ]
    )


@pytest.fixture
def fleet_db(tmp_path: Path) -> Path:
    """A province with a ready site, a district site at fault, a commune site whose agent
    shut down, one gone silent, one never checked, and their changes recorded."""
    path = tmp_path / "centre.sqlite"
    now = time.time()
    store = Store(path)
    try:
        province = SimSite("tinh", tier="province", heartbeat_s=60)
        district = SimSite("huyen-1", tier="district", parent="tinh", heartbeat_s=60)
        district.statuses["camera"] = Status.FAIL
        commune = SimSite("xa-1", tier="commune", parent="huyen-1", heartbeat_s=60)
        quiet = SimSite("xa-2", tier="commune", parent="huyen-1", heartbeat_s=60)
        fresh = SimSite("xa-3", tier="commune", parent="huyen-1", heartbeat_s=60)
        for site in (province, district, commune, quiet):
            _store(store, [*site.birth(), site.state()], now - 900 if site is quiet else now)
        _store(store, fresh.birth()[:2], now)  # availability and meta: no check yet
        _store(store, [commune.availability("offline", "clean shutdown")], now)
        _store(
            store, [province.attendance("giao-ban", 20), district.attendance("giao-ban", 1)], now
        )
        store.record_conditions(now, 3.0, 60.0, 0.0)
    finally:
        store.close()
    config = tmp_path / "centre.toml"
    config.write_text(f'db_path = "{path}"\n')
    return config


def test_centre_status_of_a_fleet_is_vietnamese(fleet_db: Path) -> None:
    done = cli("centre", "status", "--config", str(fleet_db))
    assert done.returncode == 2, done.stdout + done.stderr  # a fault: critical
    text = done.stdout
    assert "toàn bộ điểm cầu lúc" in text and "MẤT LIÊN LẠC" in text and "NGỪNG BÁO CÁO" in text
    assert "SỰ CỐ" in text and "chưa có kết quả kiểm tra" in text
    assert "phần mềm giám sát đã tắt bình thường" in text
    # The simulated sites' own reasons are English by design (SimSite writes them so), and
    # the change log keeps the words it was recorded in: neither is the centre's sentence.
    head, _, changes = text.partition("lần thay đổi gần nhất:")
    assert changes, text
    head = head.replace("camera: simulated fail", " ").replace("check it", " ")
    ids = ("tinh", "huyen-1", "xa-1", "xa-2", "xa-3")
    assert_vietnamese(head, names=(*(f"Site {i}" for i in ids), *ids, "camera"))
    for line in changes.splitlines()[1:]:
        transition = line.partition(": ")[2]
        assert_vietnamese(transition.split("  ")[0])


@pytest.mark.parametrize(
    "command",
    [
        ("centre",),
        ("centre", "serve"),
        ("centre", "status"),
        ("centre", "report"),
        ("centre", "schedule"),
        ("centre", "schedule", "add"),
        ("centre", "schedule", "remove"),
        ("centre", "schedule", "list"),
        ("centre", "user"),
        ("centre", "user", "add"),
        ("centre", "user", "list"),
        ("centre", "user", "remove"),
        ("centre", "keygen"),
        ("centre", "send"),
        ("attendance",),
        ("attendance", "count"),
        ("attendance", "snapshot"),
    ],
)
def test_help_of_each_centre_and_attendance_command(command: tuple[str, ...]) -> None:
    done = cli(*command, "-h")
    assert done.returncode == 0, done.stderr
    # The sub-commands' names in the list of commands are what one types, not words.
    text = "\n".join(_SUB_COMMAND.sub(" ", line) for line in done.stdout.splitlines())
    assert_vietnamese(text, names=("edge-agent " + " ".join(command), "Ed25519", "PEM", "CA"))


@pytest.mark.broker
def test_centre_serve_and_its_refusals_read_in_vietnamese(
    broker: Mosquitto, tmp_path: Path
) -> None:
    config = tmp_path / "centre.toml"
    config.write_text(dump_toml(centre_config(broker, tmp_path)))
    serve = ("centre", "serve", "--config", str(config), "--instance", "a")
    first = subprocess.Popen(
        [sys.executable, "-m", "agent", *serve, "--seconds", "30"],
        cwd=ROOT, env=vi_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert first.stdout is not None
        line = first.stdout.readline()
        assert line.startswith("trung tâm: đang lưu vc/+/..."), line + first.stderr.read()
        assert_vietnamese(line)
        second = cli(*serve, "--seconds", "3")
        assert second.returncode == 3, second.stderr
        assert f"--instance 'a' đang chạy (pid {first.pid}," in second.stderr
        assert_vietnamese(second.stderr)
        bad = cli("centre", "serve", "--config", str(config), "--instance", "../x")
        assert bad.returncode == 2 and "chỉ dùng chữ cái" in bad.stderr, bad.stderr
        assert_vietnamese(bad.stderr)
    finally:
        first.terminate()
        out, err = first.communicate(timeout=15)
    assert "trung tâm: đã dừng; đã lưu" in out, out + err
    assert_vietnamese(out)


def test_centre_report_of_a_session_is_vietnamese(fleet_db: Path) -> None:
    done = cli("centre", "report", "giao-ban", "--config", str(fleet_db))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("phiên họp giao-ban: 2/5 điểm cầu"), done.stdout
    assert "tổng:" in done.stdout and "tỉnh" in done.stdout
    assert_vietnamese(done.stdout, names=("giao-ban", "tinh", "huyen-1"))
    # The longer Vietnamese heads keep the numbers under them.
    head, province = done.stdout.splitlines()[1:3]
    end = head.index("số người triệu tập") + len("số người triệu tập")
    assert province.startswith("  tinh ") and province[end - 3 : end] == " 25", done.stdout


def test_dashboard_accounts_cli_reads_in_vietnamese(tmp_path: Path) -> None:
    config = tmp_path / "centre.toml"
    config.write_text(f'db_path = "{tmp_path / "c.sqlite"}"\n')

    def user(*args: str, password: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent", "centre", "user", *args, "--config", str(config)],
            input=password + "\n", capture_output=True, text=True, env=vi_env(), cwd=ROOT,
            timeout=60, check=False,
        )  # fmt: skip

    said = [user("list"), user("add", "lan", "--role", "viewer", password="mat-khau-du-dai-1")]
    said += [user("add", "x", "--role", "viewer", password="ngan"), user("list")]
    said += [user("remove", "lan"), user("remove", "lan")]
    assert [d.returncode for d in said] == [0, 0, 3, 0, 0, 1], [d.stderr for d in said]
    assert said[0].stdout.startswith("chưa có tài khoản nào")
    assert said[1].stdout == "tài khoản lan: chỉ xem (viewer)\n"
    assert said[2].stderr.startswith("edge-agent: mật khẩu:"), said[2].stderr
    for done in said:
        assert_vietnamese(done.stdout + done.stderr, names=("lan", "viewer"))


@pytest.mark.broker
def test_schedule_publishing_reads_in_vietnamese(broker: Mosquitto, tmp_path: Path) -> None:
    config = tmp_path / "centre.toml"
    config.write_text(dump_toml(centre_config(broker, tmp_path)))
    schedule = ("centre", "schedule")
    cfg = ("--config", str(config))
    times = ("--start", "2026-03-10T08:00:00+07:00", "--end", "2026-03-10T11:00:00+07:00")
    said = [cli(*schedule, "add", "S1", *cfg, *times, "--expected", "30")]
    said += [cli(*schedule, "list", *cfg), cli(*schedule, "remove", "nope", *cfg)]
    said += [cli(*schedule, "remove", "S1", *cfg)]
    assert [d.returncode for d in said] == [0, 0, 1, 0], [d.stderr for d in said]
    assert said[0].stdout.startswith("đã công bố vc/schedule: đã thêm S1"), said[0].stdout
    assert "số người triệu tập 30" in said[1].stdout
    for done in said:
        assert_vietnamese(done.stdout + done.stderr, names=("S1", "nope"))
    no_offset = cli(*schedule, "add", "S2", *cfg, "--start", "2026-03-10T08:00", "--end", "x")
    assert no_offset.returncode == 2 and "thiếu múi giờ" in no_offset.stderr, no_offset.stderr
    assert_vietnamese(no_offset.stderr, names=("edge-agent centre schedule add",))
