"""Verdict rules and exit codes: pure."""

from datetime import UTC, datetime
from typing import get_args

import pytest
from pydantic import ValidationError

from agent.checks.model import (
    CheckResult,
    CheckRun,
    ExitCode,
    Status,
    Trigger,
    Verdict,
    exit_code,
    site_verdict,
)
from agent.contract.payloads import ChecksPayload

T0 = datetime(2026, 11, 24, 7, 0, tzinfo=UTC)


def r(component: str, status: str) -> CheckResult:
    return CheckResult(
        component=component, status=Status(status), reason="x", started_at=T0, duration_s=0.1
    )


REQ = ["camera", "codec"]


@pytest.mark.parametrize(
    ("statuses", "verdict"),
    [
        ({"camera": "ok", "codec": "ok", "ptz": "ok"}, Verdict.READY),
        ({"camera": "ok", "codec": "ok", "ptz": "fail"}, Verdict.DEGRADED),
        ({"camera": "ok", "codec": "ok", "ptz": "error"}, Verdict.DEGRADED),
        ({"camera": "warn", "codec": "ok"}, Verdict.DEGRADED),
        ({"camera": "ok", "codec": "ok", "ptz": "warn"}, Verdict.DEGRADED),
        ({"camera": "fail", "codec": "ok"}, Verdict.FAULT),
        ({"camera": "ok", "codec": "error"}, Verdict.FAULT),
        ({"camera": "skipped", "codec": "ok"}, Verdict.DEGRADED),
        ({"camera": "ok"}, Verdict.FAULT),  # required codec never checked
        ({"camera": "ok", "codec": "ok", "ptz": "skipped"}, Verdict.READY),
        ({"camera": "fail", "codec": "ok", "ptz": "fail"}, Verdict.FAULT),
    ],
)
def test_site_verdict(statuses, verdict):
    assert site_verdict([r(c, s) for c, s in statuses.items()], REQ) is verdict


@pytest.mark.parametrize(
    ("statuses", "code"),
    [
        (["ok", "ok"], ExitCode.OK),
        (["ok", "skipped"], ExitCode.OK),
        (["ok", "warn"], ExitCode.WARNING),
        (["warn", "fail"], ExitCode.CRITICAL),
        (["ok", "error"], ExitCode.CRITICAL),
        ([], ExitCode.UNKNOWN),
        (["skipped"], ExitCode.UNKNOWN),
    ],
)
def test_exit_code(statuses, code):
    assert exit_code([r(f"c{i}", s) for i, s in enumerate(statuses)]) is code


def test_result_rejects_unknown_status():
    with pytest.raises(ValueError, match="status"):
        CheckResult(component="c", status="broken", reason="", started_at=T0, duration_s=0)


# A check run as the main branch published it before CheckRun existed (ChecksPayload had its
# own fields): the JSON must stay byte for byte the same.
_CHECKS_BYTES = (
    b'{"schema":"edge-agent/checks/1","site_id":"s1","seq":0,"boot":0,'
    b'"ts":"2026-11-24T07:00:00Z","historical":false,"trigger":"command","verdict":"ready",'
    b'"started_at":"2026-11-24T07:00:00Z","duration_s":2.5,"results":[{"component":"camera",'
    b'"status":"ok","reason":"1080p at 30 fps","hint":"","metrics":{"fps":30.0,"width":1920},'
    b'"started_at":"2026-11-24T07:00:00Z","duration_s":1.25,"reason_msg":null,"hint_msg":null}]}'
)


def camera_ok() -> CheckResult:
    return CheckResult(
        component="camera",
        status=Status.OK,
        reason="1080p at 30 fps",
        metrics={"fps": 30.0, "width": 1920},
        started_at=T0,
        duration_s=1.25,
    )


def sample_run(
    results: list[CheckResult], verdict: Verdict, trigger: Trigger = "interval", duration_s=1.0
) -> CheckRun:
    return CheckRun(
        trigger=trigger, verdict=verdict, started_at=T0, duration_s=duration_s, results=results
    )


def test_checks_payload_is_the_run_with_its_envelope():
    run = sample_run([camera_ok()], Verdict.READY, "command", 2.5)
    payload = ChecksPayload(site_id="s1", ts=T0, **dict(run))
    assert isinstance(payload, CheckRun)
    assert payload.to_bytes() == _CHECKS_BYTES
    assert ChecksPayload.model_validate_json(_CHECKS_BYTES) == payload
    assert get_args(ChecksPayload.model_fields["trigger"].annotation) == get_args(Trigger)


def test_a_published_run_says_why_when_and_how_long():
    judged = CheckRun(verdict=Verdict.READY, results=[])  # as the probes' side returns it
    with pytest.raises(ValidationError) as info:
        ChecksPayload(site_id="s1", ts=T0, **dict(judged))
    assert {e["loc"][0] for e in info.value.errors()} == {"trigger", "started_at", "duration_s"}


def test_summary_is_the_verdict_then_the_results_as_json():
    run = sample_run([camera_ok(), r("codec", "warn")], Verdict.DEGRADED)
    summary = run.summary()
    assert list(summary) == ["verdict", "results"]
    assert summary["verdict"] == "degraded"
    assert summary["results"][0]["started_at"] == "2026-11-24T07:00:00Z"
    assert [x["component"] for x in summary["results"]] == ["camera", "codec"]
    assert CheckRun.model_validate(summary) == run.model_copy(
        update={"trigger": None, "started_at": None, "duration_s": None}
    )
