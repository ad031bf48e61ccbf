"""`edge-agent status`: the snapshot's rendering in both languages, exit codes, and the
control socket it travels over."""

from datetime import UTC, datetime

import pytest

from agent.checks.model import CheckResult, ExitCode, Status, Verdict
from agent.cli import main
from agent.control import ControlServer, ask, socket_path
from agent.status import LinkView, OutboxView, SessionView, StatusSnapshot, exit_code, render_status

T0 = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


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
    assert "chưa kết nối (connection refused)" in text
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
