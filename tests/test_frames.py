"""The one frame grabber (agent.probes.frames) behind the camera check and attendance bursts:
real clips and the live MJPEG test camera on 127.0.0.1 through cv2.VideoCapture."""

import threading
import time

import pytest

from agent.attendance.counter import grab_burst
from agent.errors import DeviceTimeout
from agent.probes.frames import grab_frames, read_timeout_s, resolve_source
from tests.fixtures.video import camera_settings


def test_a_file_is_read_to_its_end_in_its_own_time(video_clips):
    cfg = camera_settings(video_clips["normal"]).camera
    stamps: list[float] = []

    def take(_frame, stamp):
        stamps.append(stamp)
        return False

    got = grab_frames(resolve_source(cfg.source), cfg, take, 5.0, "t")
    assert got.error is None and got.ended and not got.late and got.stopped == ""
    assert len(stamps) == 60  # 2 s at 30 fps, each with the file's own time
    assert stamps[-1] - stamps[0] == pytest.approx(59 / 30, abs=0.01)


def test_take_is_never_called_after_the_deadline(mjpeg_server):
    cfg = camera_settings(mjpeg_server.url).camera
    calls: list[float] = []
    lock = threading.Lock()

    def take(_frame, stamp):
        with lock:
            calls.append(stamp)
        return False  # never enough: only the deadline ends this grab

    started = time.monotonic()
    got = grab_frames(resolve_source(cfg.source), cfg, take, 0.3, "t")
    elapsed = time.monotonic() - started
    seen = len(calls)
    time.sleep(0.3)  # the live feed goes on sending
    assert got.late and got.error is None
    assert got.stopped == ""  # frames kept coming: late, not stalled
    assert seen > 5 and len(calls) == seen
    assert elapsed < 0.3 + read_timeout_s(cfg) + 0.5 + 1.0


def test_a_burst_from_a_stream_stalled_before_opening_says_so_in_time(mjpeg_server):
    mjpeg_server.set_mode("stall")
    cfg = camera_settings(mjpeg_server.url, open_timeout_s=1.0).camera
    started = time.monotonic()
    grabbed = grab_burst(cfg, count=3, spacing_s=0.1)
    assert time.monotonic() - started < 1.0 + 1.0
    assert grabbed.frames == []
    assert grabbed.error is not None and isinstance(grabbed.error, DeviceTimeout)
    assert "no stream within 1 s" in grabbed.error.message
    assert "network" in grabbed.error.hint


def test_a_burst_from_a_refused_stream_says_refused(mjpeg_server):
    mjpeg_server.set_mode("gone")
    grabbed = grab_burst(camera_settings(mjpeg_server.url).camera, count=3, spacing_s=0.1)
    assert grabbed.error is not None
    assert "refused" in grabbed.error.message


def test_a_burst_is_spaced_and_shrunk(mjpeg_server):
    grabbed = grab_burst(camera_settings(mjpeg_server.url).camera, 3, 0.2, max_width=320)
    assert grabbed.error is None and grabbed.stopped == ""
    assert [f.shape for f in grabbed.frames] == [(240, 320, 3)] * 3
    assert 0.4 <= grabbed.seconds < 2.0
    deadline = time.monotonic() + 2
    while mjpeg_server.clients and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mjpeg_server.clients == 0  # released: the self-test may open it next
