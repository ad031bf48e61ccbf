"""The daemon's self-test runs in a child process: same results, secrets passed safely,
a crashed or hung child becomes `error` results instead of taking the daemon down."""

import socket

import pytest

from agent.checks.model import Status, Verdict
from agent.config import Settings
from agent.selftest.worker import run_selftest_isolated


def settings(port, timeout_s=10.0, **extra):
    return Settings(
        site={"site_id": "w", "name": "w", "tier": "commune"},
        camera={"enabled": False},
        microphone={"enabled": False},
        display={"enabled": False},
        codec={"enabled": False, "password": "s3cret"},
        network={
            "targets": [{"name": "centre", "host": "127.0.0.1", "port": port}],
            "samples": 2,
            "timeout_s": timeout_s,
        },
        **extra,
    )


@pytest.fixture
def listener():
    with socket.create_server(("127.0.0.1", 0)) as server:
        yield server.getsockname()[1]


def test_child_runs_the_probes_and_judges(listener):
    test = run_selftest_isolated(settings(listener))
    assert [r.component for r in test.results] == ["network"]
    assert test.results[0].status is Status.OK
    assert test.verdict is Verdict.READY


def test_partial_check_in_child(listener, tmp_path):
    sysfs = tmp_path / "sys"
    test = run_selftest_isolated(
        settings(listener, paths={"sysfs_root": str(sysfs)}), only=["display"]
    )
    assert [r.component for r in test.results] == ["display"]
    assert test.results[0].status is Status.FAIL  # no DRM tree at all
    assert "no DRM connector" in test.results[0].reason
    # display is disabled in these settings: checked on request, it counts as optional
    assert test.verdict is Verdict.DEGRADED


def test_child_that_hangs_is_killed(listener, monkeypatch, tmp_path):
    hang = tmp_path / "hang"
    hang.write_text("#!/bin/sh\nexec sleep 30\n")
    hang.chmod(0o755)
    monkeypatch.setattr("agent.selftest.worker._STARTUP_ALLOWANCE_S", 0.5)
    monkeypatch.setattr("sys.executable", str(hang))
    test = run_selftest_isolated(settings(listener, timeout_s=0.5))
    assert test.results[0].status is Status.ERROR
    assert "hung" in test.results[0].reason
    assert test.verdict is Verdict.FAULT


def test_child_crash_becomes_error(listener, monkeypatch):
    monkeypatch.setattr("sys.executable", "/bin/false")
    test = run_selftest_isolated(settings(listener))
    assert test.results[0].status is Status.ERROR
    assert "crashed (exit code 1)" in test.results[0].reason


def test_a_child_flooding_stderr_is_cut_at_the_limit_and_still_answers(
    listener, monkeypatch, tmp_path, capfd, caplog
):
    # As PortAudio does when its server dies mid-recording: error lines in a tight loop.
    spew = tmp_path / "spew"
    spew.mkdir()
    (spew / "sitecustomize.py").write_text(
        "import sys\nfor _ in range(2000):\n    sys.stderr.write('PaError ' * 128 + '\\n')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(spew))
    test = run_selftest_isolated(settings(listener))
    assert test.results[0].status is Status.OK
    err = capfd.readouterr().err
    written = 2000 * (len("PaError ") * 128 + 1)
    assert err.count("PaError") > 0
    assert len(err.encode()) <= 64 * 1024 + 4096  # the limit, plus our own log line
    assert f"wrote {written - 64 * 1024} more bytes to stderr; dropped" in caplog.text


def test_the_attendance_worker_has_the_same_stderr_bound(monkeypatch, tmp_path, capfd, caplog):
    # One worker mechanism (agent.system.workers) for both children: the bound is in it.
    from agent.system.workers import run_worker  # noqa: PLC0415

    spew = tmp_path / "spew"
    spew.mkdir()
    (spew / "sitecustomize.py").write_text(
        "import sys\nfor _ in range(2000):\n    sys.stderr.write('PaError ' * 128 + '\\n')\n"
    )
    monkeypatch.setenv("PYTHONPATH", str(spew))
    run_worker("agent.attendance.worker", b"{}", 60, tmp_path)
    err = capfd.readouterr().err
    assert err.count("PaError") > 0
    assert len(err.encode()) <= 64 * 1024 + 4096
    assert "agent.attendance.worker wrote" in caplog.text and "more bytes to stderr" in caplog.text
