"""The site's reports built from what the agent knows (agent.runtime.reports): the saved last
check and the attendance payload keep the bytes earlier versions wrote."""

from pathlib import Path

import pytest

from agent.attendance.burst import summarise_burst
from agent.attendance.report import AttendanceSession
from agent.checks.model import CheckResult, CheckRun, Status, Verdict
from agent.config import Settings
from agent.runtime.control_handlers import status_snapshot
from agent.runtime.daemon import Agent
from agent.runtime.reports import (
    attendance_payload,
    checks_payload,
    last_check_bytes,
    last_check_from_bytes,
)
from agent.transport.outbox import Outbox
from tests.test_check_model import T0, camera_ok, sample_run

# The last-check file exactly as the previous version (LastCheck.to_bytes) wrote it: an agent
# upgraded in place reads it, and writes the same bytes for the same check.
_SAVED = (
    b'{"verdict": "degraded", "results": [{"component": "camera", "status": "ok", '
    b'"reason": "1080p at 30 fps", "hint": "", "metrics": {"fps": 30.0, "width": 1920}, '
    b'"started_at": "2026-11-24T07:00:00Z", "duration_s": 1.25}, {"component": "codec", '
    b'"status": "warn", "reason": "SIP not registered", "hint": "check the SIP account", '
    b'"metrics": {}, "started_at": "2026-11-24T07:00:00Z", "duration_s": 0.5}], '
    b'"at": "2026-11-24T07:00:00+00:00"}'
)

# The attendance payload as the previous version built it, field by field from the report.
_ATTENDANCE = (
    b'{"schema":"edge-agent/attendance/1","site_id":"s1","seq":0,"boot":0,'
    b'"ts":"2026-11-24T07:00:00Z","historical":false,"session_id":"s-1","count":20,'
    b'"spread":0.5,"detector":"centerface","expected":40,"rate":0.5,"peak":20,"median":20.0,'
    b'"codec_count":19,"tiled":true,"burst_count":20,"frames":3,"frames_used":3,'
    b'"unknown_reason":null,"unknown_reason_msg":null}'
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "site": {"site_id": "s1", "name": "Site 1", "tier": "commune"},
            "paths": {"state_dir": str(tmp_path)},
        }
    )


def _results() -> list[CheckResult]:
    return [
        camera_ok(),
        CheckResult(
            component="codec",
            status=Status.WARN,
            reason="SIP not registered",
            hint="check the SIP account",
            started_at=T0,
            duration_s=0.5,
        ),
    ]


def test_the_saved_last_check_keeps_its_bytes():
    run = sample_run(_results(), Verdict.DEGRADED, "interval", 3.2)
    assert last_check_bytes(run) == _SAVED
    restored = last_check_from_bytes(_SAVED)
    # When it ran is kept; why and how long are not (the file never held them).
    assert restored == run.model_copy(update={"trigger": None, "duration_s": None})
    assert last_check_bytes(restored) == _SAVED


@pytest.mark.parametrize(
    "data", [b"{}", b'{"verdict": "fine", "results": [], "at": "2026-11-24T07:00:00Z"}', b"[1]"]
)
def test_a_bad_saved_check_is_a_clear_error(data):
    with pytest.raises((ValueError, KeyError, TypeError)):
        last_check_from_bytes(data)


def test_checks_payload_carries_the_run(settings):
    run = sample_run(_results(), Verdict.DEGRADED, "pre-session", 3.2)
    payload = checks_payload(settings, run)
    assert payload.site_id == "s1"
    assert CheckRun.model_validate(payload.model_dump(include=set(CheckRun.model_fields))) == run


def test_attendance_payload_is_built_from_the_report(settings):
    session = AttendanceSession("s-1", "centerface", expected=40)
    burst = summarise_burst([20, 21, 20], (), expected_frames=3)
    report = session.add(burst, tiled=True, people_count_codec=19, at=T0)
    payload = attendance_payload(settings, report)
    assert payload.model_copy(update={"ts": T0}).to_bytes() == _ATTENDANCE


def test_an_agent_upgraded_in_place_shows_the_check_its_predecessor_saved(settings):
    box = Outbox.from_settings(settings)
    box.put_kv("last_check", _SAVED)
    box.close()
    agent = Agent(settings)
    try:
        snapshot = status_snapshot(agent)
        state = agent.publish_state("birth")
    finally:
        agent.outbox.close()
    assert (snapshot.verdict, snapshot.checked_at) == (Verdict.DEGRADED, T0)
    assert snapshot.results == _results()
    assert (state.verdict, state.last_check) == (Verdict.DEGRADED, T0)
    assert state.components["codec"].hint == "check the SIP account"


def test_the_saved_last_check_keeps_the_form_older_versions_read():
    """Reasons given as messages are saved as their English only."""
    from agent.checks.network_metrics import judge_network  # noqa: PLC0415
    from agent.config import NetworkSettings  # noqa: PLC0415

    told = CheckResult.from_outcome("network", judge_network([], NetworkSettings()), T0, 0.1)
    assert told.reason_msg is not None
    run = sample_run([*_results(), told], Verdict.DEGRADED, "interval", 3.2)
    saved = last_check_bytes(run)
    assert b"_msg" not in saved
    (restored,) = last_check_from_bytes(saved).results[2:]
    assert (restored.reason, restored.reason_msg) == ("no network targets configured", None)
