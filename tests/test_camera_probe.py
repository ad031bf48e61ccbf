"""Camera probe through the real path: frames through cv2.VideoCapture from generated clips
and from the live MJPEG test camera on 127.0.0.1."""

import contextlib
import os
import threading
import time

import pytest

from agent.checks.model import Status
from agent.errors import BadReply, ConfigError, DeviceNotFound, DeviceTimeout, ProbeError
from agent.probes.camera import check_camera
from agent.probes.frames import read_timeout_s, redact_url, resolve_source
from agent.selftest.runner import build_probes, run_probes
from tests.fixtures.video import camera_settings

# --- source resolution -------------------------------------------------------------------


def test_missing_device_fails_with_hint_through_the_runner():
    settings = camera_settings("/dev/video9")
    with pytest.raises(DeviceNotFound) as err:
        check_camera(settings)
    assert err.value.message == "camera /dev/video9: not found"
    assert "`edge-agent devices` lists cameras" in err.value.hint

    [result] = run_probes(build_probes(settings, ["camera"]))
    assert result.status is Status.FAIL
    assert result.reason == "camera /dev/video9: not found"
    assert "plugged in" in result.hint


def test_index_means_dev_video():
    with pytest.raises(DeviceNotFound, match="/dev/video9"):
        resolve_source("9")


def test_by_id_name_resolves_to_its_device(tmp_path):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    target = tmp_path / "video2"
    target.write_bytes(b"")
    (by_id / "usb-Logitech_C920_AB12-video-index0").symlink_to(target)
    src = resolve_source("usb-Logitech_C920_AB12-video-index0", by_id)
    assert (src.kind, src.target) == ("device", str(target))
    assert src.label == f"usb-Logitech_C920_AB12-video-index0 ({target})"


def test_by_id_name_of_an_unplugged_camera(tmp_path):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (by_id / "usb-Cam-video-index0").symlink_to(tmp_path / "video5")  # dangling
    with pytest.raises(DeviceNotFound, match="unplugged") as err:
        resolve_source("usb-Cam-video-index0", by_id)
    assert "plugged in" in err.value.hint
    with pytest.raises(DeviceNotFound, match="not found under"):
        resolve_source("usb-Other-video-index0", by_id)


def test_urls_and_files(tmp_path):
    assert resolve_source("rtsp://cam.local:554/stream1").kind == "url"
    clip = tmp_path / "a.avi"
    clip.write_bytes(b"x")
    assert resolve_source(str(clip)).kind == "file"
    with pytest.raises(ConfigError, match="unsupported URL scheme 'ftp'"):
        resolve_source("ftp://cam/x")
    with pytest.raises(DeviceNotFound, match="no such file"):
        resolve_source(str(tmp_path / "missing.avi"))


def test_url_password_never_reaches_the_reason():
    url = "rtsp://admin:s3cret@10.0.0.9:554/Streaming/Channels/101"
    assert redact_url(url) == "rtsp://***@10.0.0.9:554/Streaming/Channels/101"
    assert resolve_source(url).label == redact_url(url)
    assert resolve_source(url).target == url


def test_a_device_node_that_is_not_a_camera_fails_quickly():
    start = time.monotonic()
    with pytest.raises(ProbeError, match="cannot be opened") as err:
        check_camera(camera_settings("/dev/null"))
    assert time.monotonic() - start < 2
    assert err.value.hint


def test_a_source_that_blocks_inside_opencv_still_fails_on_time(tmp_path):
    """FFMPEG opening a named pipe with no writer blocks in the kernel and ignores its own
    open timeout: only the probe's wall deadline stands between that and a hang."""
    fifo = tmp_path / "cam.fifo"
    os.mkfifo(fifo)
    start = time.monotonic()
    try:
        with pytest.raises(DeviceTimeout, match=r"did not open within 0\.5 s") as err:
            check_camera(camera_settings(fifo, open_timeout_s=0.5))
        assert time.monotonic() - start < 0.5 + 1.0 + 0.3
        assert err.value.hint
    finally:
        # A writer that hangs up gives the abandoned capture EOF, so its thread ends.
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


# --- generated clips through cv2.VideoCapture --------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "words", "hint_words"),
    [
        ("normal", Status.OK, "ok, 640x480 at 30.0 fps", ""),
        ("black", Status.FAIL, "picture is black", "lens"),
        ("frozen", Status.FAIL, "picture is frozen", "replug"),
        ("blurred", Status.WARN, "out of focus", "focus"),
        ("overexposed", Status.WARN, "overexposed", "window"),
    ],
)
def test_clip_verdicts(video_clips, kind, status, words, hint_words):
    outcome = check_camera(camera_settings(video_clips[kind]))
    assert outcome.status is status, outcome.reason
    assert words in outcome.reason
    assert hint_words in outcome.hint
    assert (outcome.metrics["width"], outcome.metrics["height"]) == (640, 480)
    # A file is decoded as fast as possible; its own timestamps give its frame rate.
    assert outcome.metrics["fps"] == pytest.approx(30.0, abs=0.1)
    assert outcome.metrics["frames"] == 31  # 1 s of a 30 fps clip, both ends included
    assert outcome.metrics["source"] == "file"


def test_clip_below_expected_resolution_warns(make_video_clip):
    clip = make_video_clip("normal", width=320, height=240, seconds=1)
    outcome = check_camera(camera_settings(clip))
    assert outcome.status is Status.WARN
    assert "resolution 320x240 below the expected 640x480" in outcome.reason
    assert "resolution" in outcome.hint


def test_a_damaged_video_file_fails(tmp_path):
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"RIFF\x00\x00garbage" * 500)
    with pytest.raises(BadReply, match="not a readable video"):
        check_camera(camera_settings(junk))


# --- the live MJPEG test camera ----------------------------------------------------------


def test_live_stream_is_ok_at_the_servers_pace(mjpeg_server):
    start = time.monotonic()
    outcome = check_camera(camera_settings(mjpeg_server.url))
    elapsed = time.monotonic() - start
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.metrics["fps"] == pytest.approx(30.0, rel=0.1)
    assert outcome.metrics["backend"] == "FFMPEG"
    assert 1.0 <= elapsed < 2.0  # about sample_s of frames, plus a fast open


def test_slow_stream_measures_its_pace_and_warns(mjpeg_server_factory):
    server = mjpeg_server_factory(fps=10)
    outcome = check_camera(camera_settings(server.url, sample_s=0.8))
    assert outcome.status is Status.WARN
    assert outcome.metrics["fps"] == pytest.approx(10.0, rel=0.15)
    assert "fps, expected 30" in outcome.reason


@pytest.mark.parametrize(("mode", "words"), [("black", "black"), ("frozen", "frozen")])
def test_live_picture_faults_fail(mjpeg_server, mode, words):
    mjpeg_server.set_mode(mode)
    outcome = check_camera(camera_settings(mjpeg_server.url, sample_s=0.5))
    assert outcome.status is Status.FAIL
    assert words in outcome.reason


def test_stream_that_stalls_mid_check_fails_without_hanging(mjpeg_server):
    settings = camera_settings(mjpeg_server.url)
    timer = threading.Timer(0.3, mjpeg_server.set_mode, args=("stall",))
    timer.start()
    start = time.monotonic()
    outcome = check_camera(settings)
    elapsed = time.monotonic() - start
    timer.join()
    assert outcome.status is Status.FAIL
    assert "feed stopped after" in outcome.reason
    assert "stopped sending" in outcome.hint
    assert elapsed < settings.camera.sample_s + read_timeout_s(settings.camera) + 0.6


def test_stream_stalled_before_opening_fails_within_open_timeout(mjpeg_server):
    mjpeg_server.set_mode("stall")
    settings = camera_settings(mjpeg_server.url, open_timeout_s=1.0)
    start = time.monotonic()
    [result] = run_probes(build_probes(settings, ["camera"]))
    elapsed = time.monotonic() - start
    assert result.status is Status.FAIL
    assert "no stream within 1 s" in result.reason
    assert result.hint
    assert elapsed < 1.0 + 1.0


def test_camera_that_is_gone_fails_fast(mjpeg_server):
    mjpeg_server.set_mode("gone")
    start = time.monotonic()
    with pytest.raises(ProbeError) as err:
        check_camera(camera_settings(mjpeg_server.url))
    assert time.monotonic() - start < 1.0
    assert not isinstance(err.value, DeviceTimeout)
    assert "refused" in err.value.message
    assert err.value.hint


def test_checks_leave_no_connection_behind(mjpeg_server):
    for _ in range(2):
        assert check_camera(camera_settings(mjpeg_server.url, sample_s=0.2)).status is Status.OK
    deadline = time.monotonic() + 2
    while mjpeg_server.clients and time.monotonic() < deadline:
        time.sleep(0.02)
    assert mjpeg_server.clients == 0
    assert mjpeg_server.connections == 2


def test_check_in_vietnamese_renders_the_camera_reason_and_hint(mjpeg_server, tmp_path, capsys):
    """`edge-agent check --lang vi` on a black live picture: the probe (in its child process)
    sends message ids, the table renders them in Vietnamese."""
    from agent.cli import main  # noqa: PLC0415

    config = tmp_path / "agent.toml"
    config.write_text(
        '[site]\nsite_id = "hn-01"\nname = "x"\ntier = "commune"\n'
        f'[paths]\nstate_dir = "{tmp_path}"\n'
        f'[camera]\nsource = "{mjpeg_server.url}"\nwidth = 640\nheight = 480\nfps = 30.0\n'
        "sample_s = 0.5\n"
    )
    mjpeg_server.set_mode("black")
    code = main(["--config", str(config), "check", "--local", "--lang", "vi", "camera"])
    out = capsys.readouterr().out
    assert code == 2
    assert "hình ảnh bị đen (độ sáng trung bình" in out
    assert "-> tháo nắp ống kính hoặc vật che camera; bật đèn phòng họp" in out
    assert "picture is black" not in out and "lens cap" not in out
    # English stays the English it always was.
    assert main(["--config", str(config), "check", "--local", "--lang", "en", "camera"]) == 2
    out = capsys.readouterr().out
    assert "picture is black (mean luma" in out
    assert "-> remove the lens cap or whatever covers the camera" in out
