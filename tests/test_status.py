"""`edge-agent status`: the snapshot's rendering in both languages, exit codes, and the
control socket it travels over."""

import json
import os
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from agent.checks.model import CheckResult, ExitCode, Status, Verdict
from agent.cli import main
from agent.config import Settings
from agent.runtime.control import ControlServer, ask, socket_path
from agent.runtime.daemon import Agent
from agent.runtime.status import (
    LinkView,
    OutboxView,
    SessionView,
    StatusSnapshot,
    exit_code,
    render_status,
)
from agent.sim.toml_writer import dump_toml
from tests.fixtures.broker import agent_config, wait_until

T0 = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)
HCM = ZoneInfo("Asia/Ho_Chi_Minh")


def snapshot(verdict=Verdict.DEGRADED, connected=True):
    return StatusSnapshot(
        site_id="hn-01",
        site_name="UBND xã Phúc Thọ",
        version="0.1.0",
        verdict=verdict,
        checked_at=T0,
        results=[
            CheckResult(
                component="camera", status=Status.OK, reason="1080p", started_at=T0, duration_s=1.0
            ),
            CheckResult(
                component="microphone",
                status=Status.WARN,
                reason="quiet",
                hint="move the mic closer",
                started_at=T0,
                duration_s=1.0,
            ),
        ],
        link=LinkView(
            broker="10.0.0.1:1883",
            connected=connected,
            protocol="5",
            last_error="" if connected else "connection refused",
        ),
        outbox=OutboxView(pending=3, dropped_checks=1),
        next_session=SessionView(session_id="s-42", title="Hội nghị tỉnh", start=T0),
        led="degraded",
    )


def test_render_english():
    text = render_status(snapshot(), "en")
    assert "site: UBND xã Phúc Thọ [hn-01]" in text
    assert "verdict: DEGRADED (last check 2026-11-24 07:00 UTC)" in text
    assert "microphone  warn       quiet" in text
    assert "-> move the mic closer" in text
    assert "broker: 10.0.0.1:1883 - connected, MQTT 5" in text
    assert "outbox: 3 reports waiting, 1 dropped" in text
    assert "next session: Hội nghị tỉnh 2026-11-24 07:00" in text
    assert "status LED: degraded" in text


def test_render_vietnamese():
    text = render_status(snapshot(connected=False), "vi")
    assert "Điểm cầu: UBND xã Phúc Thọ" in text
    assert "Đánh giá: SUY GIẢM" in text
    assert "Cảnh báo" in text
    assert "Máy chủ MQTT: 10.0.0.1:1883 - mất kết nối" in text
    assert "không kết nối được máy chủ MQTT (connection refused)" in text
    assert "Phiên họp tiếp theo" in text


@pytest.mark.parametrize(
    ("verdict", "code"),
    [
        (Verdict.READY, ExitCode.OK),
        (Verdict.DEGRADED, ExitCode.WARNING),
        (Verdict.FAULT, ExitCode.CRITICAL),
        (None, ExitCode.UNKNOWN),
    ],
)
def test_exit_codes(verdict, code):
    assert exit_code(snapshot(verdict)) is code


def test_control_socket_round_trip_and_bad_requests(tmp_path):
    server = ControlServer(
        socket_path(tmp_path), {"status": lambda _r: snapshot().model_dump(mode="json")}
    ).start()
    try:
        reply = ask(socket_path(tmp_path), {"op": "status"})
        assert reply["ok"]
        assert StatusSnapshot.model_validate(reply["result"]) == snapshot()
        assert ask(socket_path(tmp_path), {"op": "format-disk"}) == {
            "ok": False,
            "error": "bad request; ops: status",
        }
        assert server.handle(b"not json")["ok"] is False
        assert server.handle(b'["op"]')["ok"] is False
    finally:
        server.stop()
    assert ask(socket_path(tmp_path), {"op": "status"}) is None  # nobody listens


def test_failing_handler_is_an_error_reply_not_a_crash(tmp_path):
    def boom(_request):
        raise RuntimeError("camera busy")

    server = ControlServer(socket_path(tmp_path), {"check": boom}).start()
    try:
        assert ask(socket_path(tmp_path), {"op": "check"}) == {
            "ok": False,
            "error": "RuntimeError: camera busy",
        }
    finally:
        server.stop()


def test_status_cli_through_the_socket(tmp_path, capsys):
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[site]\nsite_id = "hn-01"\nname = "x"\ntier = "commune"\n'
        f'[paths]\nstate_dir = "{tmp_path}"\n'
    )
    assert main(["--config", str(config), "status"]) == 3
    assert "edge-agent is not running" in capsys.readouterr().err
    server = ControlServer(
        socket_path(tmp_path), {"status": lambda _r: snapshot().model_dump(mode="json")}
    ).start()
    try:
        assert main(["--config", str(config), "status", "--lang", "vi"]) == 1
        assert "Đánh giá: SUY GIẢM" in capsys.readouterr().out
        assert main(["--config", str(config), "status", "--json"]) == 1
        assert '"site_id": "hn-01"' in capsys.readouterr().out
    finally:
        server.stop()


def test_times_are_the_sites_and_the_running_session_is_shown():
    snap = snapshot().model_copy(
        update={
            "timezone": "Asia/Ho_Chi_Minh",
            "current_session": SessionView(
                session_id="s-41", title="Giao ban", start=T0, end=T0 + timedelta(hours=2)
            ),
            "next_session": SessionView(session_id="s-42", start=T0 + timedelta(days=1)),
        }
    )
    text = render_status(snap, "en")
    assert "verdict: DEGRADED (last check 2026-11-24 14:00 +07)" in text
    assert "current session: Giao ban, running since 2026-11-24 14:00 +07, ends 16:00" in text
    assert "next session: s-42 2026-11-25 14:00 +07" in text
    assert "time zone: Asia/Ho_Chi_Minh" in text
    assert "UTC" not in text
    vi = render_status(snap, "vi")
    assert "Phiên họp hiện tại: Giao ban, đang diễn ra từ 2026-11-24 14:00 +07" in vi


@pytest.mark.parametrize(
    ("verdict", "code"),
    [
        (Verdict.READY, ExitCode.WARNING),  # ready here is not ready for the centre
        (Verdict.DEGRADED, ExitCode.WARNING),
        (Verdict.FAULT, ExitCode.CRITICAL),
        (None, ExitCode.UNKNOWN),
    ],
)
def test_link_down_exit_codes(verdict, code):
    assert exit_code(snapshot(verdict, connected=False)) is code


def test_link_down_verdict_says_the_centre_cannot_see_the_site():
    snap = snapshot(Verdict.READY, connected=False)
    snap.link.down_since = T0 - timedelta(minutes=5)
    snap.timezone = "Asia/Ho_Chi_Minh"
    text = render_status(snap, "en")
    assert (
        "verdict: READY here, but the centre cannot see this site: broker unreachable since "
        "2026-11-24 13:55 +07 (connection refused)"
    ) in text
    assert "last check: 2026-11-24 14:00 +07" in text
    vi = render_status(snap, "vi")
    assert "SẴN SÀNG tại chỗ, nhưng trung tâm không thấy điểm cầu này" in vi


@pytest.mark.broker
def test_daemon_cut_off_from_the_broker_during_a_session(broker, tmp_path, capsys):
    """A real daemon with a session running now and one tomorrow (local schedule): checked
    ready with the broker up, then the broker stops."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    running = (now - timedelta(minutes=30), now + timedelta(minutes=90))
    later = (now + timedelta(days=1), now + timedelta(days=1, hours=2))
    (tmp_path / "schedule.toml").write_text(
        f'[[entries]]\nsession_id = "now"\ntitle = "Giao ban"\n'
        f'start = "{running[0].isoformat()}"\nend = "{running[1].isoformat()}"\n'
        f'[[entries]]\nsession_id = "later"\n'
        f'start = "{later[0].isoformat()}"\nend = "{later[1].isoformat()}"\n'
    )
    config = agent_config(broker, tmp_path / "state", "hn-01", check_interval_s=3600)
    config["site"]["timezone"] = "Asia/Ho_Chi_Minh"
    config["schedule"] = {"local_file": str(tmp_path / "schedule.toml")}
    path = tmp_path / "agent.toml"
    path.write_text(dump_toml(config))
    agent = Agent(Settings(**config))
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: agent.link.status().connected and agent.last_check, 30)
        assert main(["--config", str(path), "status", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert status["link"]["connected_since"].endswith("+07:00")
        assert status["current_session"]["session_id"] == "now"

        cut_at = datetime.now(UTC)
        broker.stop()
        # The drop first, then the reconnect attempts that find nobody.
        assert wait_until(lambda: "refused" in agent.link.status().last_error, 15)
        assert main(["--config", str(path), "status"]) == 1
        text = capsys.readouterr().out
        assert (
            "verdict: READY here, but the centre cannot see this site: broker unreachable" in text
        )
        assert "nothing answers on that port (connection refused)" in text
        start, end = (t.astimezone(HCM) for t in running)
        ends = f"{end:%H:%M}" if end.date() == start.date() else f"{end:%Y-%m-%d %H:%M} +07"
        assert (
            f"current session: Giao ban, running since {start:%Y-%m-%d %H:%M} +07, ends {ends}"
            in text
        )
        assert f"next session: later {later[0].astimezone(HCM):%Y-%m-%d %H:%M} +07" in text

        assert main(["--config", str(path), "status", "--lang", "vi"]) == 1
        assert "trung tâm không thấy điểm cầu này" in capsys.readouterr().out

        assert main(["--config", str(path), "status", "--json"]) == 1
        status = json.loads(capsys.readouterr().out)
        assert status["timezone"] == "Asia/Ho_Chi_Minh"
        assert status["verdict"] == "ready" and status["link"]["connected"] is False
        assert status["current_session"]["session_id"] == "now"
        assert status["next_session"]["session_id"] == "later"
        for when in (status["checked_at"], status["next_session"]["start"]):
            assert when.endswith("+07:00")
        down_since = datetime.fromisoformat(status["link"]["down_since"])
        assert down_since.utcoffset() == timedelta(hours=7)
        assert down_since >= cut_at
        assert datetime.fromisoformat(status["current_session"]["start"]) == running[0]
    finally:
        stop.set()
        thread.join(15)


def test_logs_without_journalctl_says_where_the_logs_are(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no journalctl on it
    assert main(["logs"]) == 3
    err = capsys.readouterr().err
    assert "no systemd journal" in err and "stderr" in err
    assert "Traceback" not in err


@pytest.mark.skipif(os.path.isdir("/run/systemd/system"), reason="systemd runs here")
def test_logs_where_systemd_does_not_run_says_where_the_logs_are(monkeypatch, capsys):
    # journalctl is installed here but PID 1 is not systemd: there is no journal to read.
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    assert main(["logs"]) == 3
    captured = capsys.readouterr()
    assert "stderr" in captured.err and "journal" in captured.err
    assert captured.out == ""


def test_a_zone_this_machine_does_not_know_shows_utc_and_says_so():
    snap = snapshot().model_copy(update={"timezone": "Mars/Olympus_Mons"})
    text = render_status(snap, "en")
    assert "(last check 2026-11-24 07:00 UTC)" in text
    assert "time zone: UTC" in text
    assert snap.localised().checked_at.utcoffset() == timedelta(0)


def test_status_renders_a_probes_message_in_the_chosen_language():
    """A result told as messages, through the control socket's JSON, shows in Vietnamese;
    one without (an older daemon's) keeps its English."""
    from agent.checks.network_metrics import judge_network  # noqa: PLC0415

    outcome = judge_network(
        [], Settings(site={"site_id": "t", "name": "t", "tier": "commune"}).network
    )
    told = CheckResult.from_outcome("network", outcome, T0, 0.1)
    base = snapshot()
    snap = StatusSnapshot.model_validate(
        base.model_copy(update={"results": [*base.results, told]}).model_dump(mode="json")
    )
    text = render_status(snap, "vi")
    assert "chưa cấu hình đích kiểm tra mạng nào" in text
    assert "-> thêm [[network.targets]] cho máy chủ MQTT của trung tâm và cho MCU" in text
    assert "no network targets configured" not in text
    assert "quiet" in text and "move the mic closer" in text  # no message: as given
    assert "no network targets configured" in render_status(snap, "en")
