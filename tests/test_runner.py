"""The runner: concurrency, per-probe timeouts, exception isolation."""

import threading
import time

from agent.checks.model import Outcome, Status
from agent.errors import DeviceNotFound
from agent.selftest.runner import ProbeSpec, run_probes


def test_probes_run_concurrently_and_keep_order():
    def slow(name):
        def run():
            time.sleep(0.3)
            return Outcome(Status.OK, name)

        return run

    start = time.monotonic()
    results = run_probes([ProbeSpec(f"p{i}", slow(f"p{i}"), 5) for i in range(4)])
    elapsed = time.monotonic() - start
    assert [r.component for r in results] == ["p0", "p1", "p2", "p3"]
    assert [r.reason for r in results] == ["p0", "p1", "p2", "p3"]
    assert elapsed < 0.9  # 4 x 0.3 s would be 1.2 s in series


def test_hung_probe_times_out_without_stalling_others():
    release = threading.Event()

    def hung():
        release.wait(30)
        return Outcome(Status.OK, "never seen")

    start = time.monotonic()
    results = run_probes(
        [
            ProbeSpec("codec", hung, 0.4),
            ProbeSpec("camera", lambda: Outcome(Status.OK, "fine"), 5),
        ]
    )
    elapsed = time.monotonic() - start
    release.set()
    codec, camera = results
    assert codec.status is Status.ERROR
    assert "no answer within 0.4 s" in codec.reason
    assert codec.hint
    assert camera.status is Status.OK
    assert elapsed < 1.0


def test_crashing_probe_becomes_error_with_reason():
    def boom():
        raise ZeroDivisionError("division by zero")

    (result,) = run_probes([ProbeSpec("mic", boom, 5)])
    assert result.status is Status.ERROR
    assert "ZeroDivisionError: division by zero" in result.reason


def test_device_error_becomes_fail_with_its_hint():
    def missing():
        raise DeviceNotFound("camera /dev/video0: not found", "is it plugged in?")

    (result,) = run_probes([ProbeSpec("camera", missing, 5)])
    assert result.status is Status.FAIL
    assert result.reason == "camera /dev/video0: not found"
    assert result.hint == "is it plugged in?"


def test_result_records_duration_and_metrics():
    def probe():
        time.sleep(0.1)
        return Outcome(Status.WARN, "dim", "clean the lens", {"luma": 12.5})

    (result,) = run_probes([ProbeSpec("camera", probe, 5)])
    assert 0.09 <= result.duration_s < 1
    assert result.metrics == {"luma": 12.5}
    assert result.hint == "clean the lens"
