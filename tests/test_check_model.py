"""Verdict rules and exit codes: pure."""

from datetime import UTC, datetime

import pytest

from agent.checks.model import CheckResult, ExitCode, Status, Verdict, exit_code, site_verdict

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
