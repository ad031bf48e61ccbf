"""`centre report SESSION` on a real fleet database written by the centre's own store: the
text in English and Vietnamese, the CSV, the printable HTML and the PDF read back with
pdftotext, and a clear error when WeasyPrint is not installed."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.centre.alerts.model import Alert, AlertKind, Severity
from agent.centre.alerts.store import AlertStore
from agent.centre.ingest import parse
from agent.centre.store import Incoming, PublishedSchedule, RosterEntry, Store
from agent.checks.live import LiveVerdict
from agent.checks.model import Status
from agent.cli import main
from agent.contract.payloads import LiveEventPayload, SessionRef
from agent.contract.topics import topic_for
from agent.messages import message
from agent.schedule.model import SchedulePayload, Session
from agent.sim.fleet_site import Message, SimSite
from agent.transport.listener import Received
from tests.test_cli_vietnamese import assert_vietnamese, cli, vi_env

NOW = float(int(time.time()))
START = NOW - 600  # the session began ten minutes ago
END = START + 3600
# the sim's site names ("Site <id>") before the ids they hold
NAMES = ("Site tinh", "Site huyen-1", "Site xa-1", "Site xa-2", "giao-ban", "Giao ban", "tinh",
         "huyen-1", "xa-1", "xa-2")  # fmt: skip


def _at(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _apply(store: Store, messages: list[Message], at: float) -> None:
    store.apply_batch(
        [
            Incoming(parse("vc", Received(t, body, retain)), retain, at)
            for t, body, retain in messages
        ]
    )


def _live_event(site: SimSite, at: float, before: LiveVerdict, after: LiveVerdict) -> Message:
    ref = SessionRef(session_id="giao-ban", title="Giao ban", start=_at(START), end=_at(END))
    payload = LiveEventPayload(site_id=site.site_id, seq=site._next(), boot=site.boot,
                               ts=_at(at), session=ref, before=before, after=after)  # fmt: skip
    return topic_for("vc", site.site_id, "live_event"), payload.to_bytes(), False


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A province, a district and a commune site whose camera failed before T-60 and was
    fixed at T-10 (then dropped out of the call for two minutes), and a listed commune
    never heard from (summoned 15: absent)."""
    path = tmp_path / "centre.sqlite"
    store = Store(path)
    try:
        store.import_roster([RosterEntry("xa-2", "", "commune", "huyen-1", 15)], START - 5000)
        tinh = SimSite("tinh", tier="province", heartbeat_s=60, expected=25)
        huyen = SimSite("huyen-1", tier="district", parent="tinh", heartbeat_s=60)
        xa = SimSite("xa-1", tier="commune", parent="huyen-1", heartbeat_s=60)
        xa.statuses["camera"] = Status.FAIL
        session = Session(session_id="giao-ban", title="Giao ban", start=_at(START),
                          end=_at(END))  # fmt: skip
        store.apply_batch([PublishedSchedule("", SchedulePayload(entries=[session]), START - 4000)])
        for site in (tinh, huyen, xa):
            _apply(store, site.birth(), START - 4000)
        store.record_conditions(START - 4000, 1000.0, 60.0, 0.0)
        xa.statuses["camera"] = Status.OK
        _apply(store, [xa.state()], START - 600)
        store.record_conditions(START - 600, 1000.0, 60.0, 0.0)
        _apply(store, [tinh.attendance("giao-ban", 20), huyen.attendance("giao-ban", 1)], NOW)
        _apply(store, [_live_event(xa, START + 60, LiveVerdict.IN_CALL, LiveVerdict.DROPPED),
                       _live_event(xa, START + 180, LiveVerdict.DROPPED, LiveVerdict.IN_CALL)],
               NOW)  # fmt: skip
    finally:
        store.close()
    alerts = AlertStore(path)  # the camera's alert, fired at T-50 and recovered at T-10
    try:
        reason = message("alerts.check_failed", site="xa-1", minutes=60, session="giao-ban",
                         components="camera")  # fmt: skip
        alerts.raised(Alert(key="cam:xa-1", rule="cam", kind=AlertKind.CHECK_FAILED,
                            severity=Severity.WARNING, site_id="xa-1", district="huyen-1",
                            since=START - 4000, fired_at=START - 3000, reason=reason))  # fmt: skip
        alerts.resolved("cam:xa-1", START - 600)
    finally:
        alerts.close()
    cfg = tmp_path / "centre.toml"
    cfg.write_text(f'db_path = "{path}"\n')
    return cfg


def test_the_report_in_english(config: Path) -> None:
    done = cli("centre", "report", "giao-ban", "--config", str(config),
               env=vi_env(LANG="en_US.UTF-8", TZ="UTC"))  # fmt: skip
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert out.startswith("session giao-ban: 2 of 4 summoned or counting sites reported"), out
    assert "T-60 (" in out and "2 of 4 sites ready; fault 1, never seen 1, ready 2" in out
    assert "the start (" in out and "3 of 4 sites ready; never seen 1, ready 3" in out
    assert "Site xa-1: fault at T-60, ready at " in out and "(took 50 min)" in out
    assert "fixed before the start: 1 of the 2 sites not ready at T-60 or T-15" in out
    assert "1 call drop, median 2 min out of the call" in out
    assert "1 incident, median time to repair 40 min" in out
    assert "xa-1: not ready 60 min before session giao-ban: camera failing; opened " in out
    assert "huyen-1: 3 sites, 65 summoned, 1 counted, rate 2%, 2 absent" in out


def test_the_report_in_vietnamese(config: Path) -> None:
    done = cli("centre", "report", "giao-ban", "--config", str(config), env=vi_env(TZ="UTC"))
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "mức sẵn sàng trước phiên họp:" in out
    assert "60 phút trước (" in out and "2/4 điểm cầu sẵn sàng" in out
    assert "đã khắc phục trước giờ bắt đầu: 1/2 điểm cầu" in out
    assert "1 lần rớt cuộc gọi, trung vị 2 phút" in out
    assert "1 sự cố, thời gian khắc phục trung vị 40 phút" in out
    assert "xa-1: điểm cầu chưa sẵn sàng 60 phút trước phiên họp giao-ban: sự cố ở camera" in out
    assert_vietnamese(out, names=NAMES)


@pytest.mark.skipif(
    shutil.which("pdftotext") is None, reason="poppler-utils: ./run test installs it"
)
def test_csv_html_and_a_real_pdf_in_vietnamese(config: Path, tmp_path: Path) -> None:
    pdf, page, table = tmp_path / "r.pdf", tmp_path / "r.html", tmp_path / "r.csv"
    done = cli("centre", "report", "giao-ban", "--config", str(config), "--pdf", str(pdf),
               "--html", str(page), "--csv", str(table), env=vi_env(TZ="UTC"))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"đã ghi: {pdf}" in done.stdout
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and len(data) > 5000
    words = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                           text=True, check=True, timeout=60).stdout  # fmt: skip
    assert "Báo cáo phiên họp giao-ban" in words
    assert "Mức sẵn sàng trước phiên họp" in words and "rớt cuộc gọi" in words
    assert "Số người tham dự theo điểm cầu" in words and "vắng mặt" in words
    assert "<h1>Báo cáo phiên họp giao-ban</h1>" in page.read_text(encoding="utf-8")
    assert table.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(table.open(encoding="utf-8-sig")))
    assert {"readiness", "not_ready", "fixed", "drop", "attendance"} <= {r["section"] for r in rows}


def test_pdf_without_weasyprint_says_how_to_install_it(
    config: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # what an install without the extra has
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    page = tmp_path / "r.html"
    code = main(["centre", "report", "giao-ban", "--config", str(config),
                 "--html", str(page), "--pdf", str(tmp_path / "r.pdf")])  # fmt: skip
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert "cannot print the report to PDF here: WeasyPrint is not installed" in err
    assert "pip install 'edge-agent[report]'" in err and "--html" in err
    assert page.exists() and not (tmp_path / "r.pdf").exists()  # the page is kept
