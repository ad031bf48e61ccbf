"""Device faults through the real check path (agent.selftest.run_selftest: the probes, the
runner and its timeouts, the verdict), against real emulators: the agent reports each fault
within the component's check timeout, with a reason and a hint, and the next check after the
device comes back is ok.

- camera: the live MJPEG camera (an IP camera) is stopped mid-burst, then a new one is
  started on the same port;
- microphone: the PulseAudio server is killed (SIGKILL) while a check records, then a new
  server is started and the next check hears its tone;
- serial (the codec, Cisco RoomOS over a pty): the line is dropped mid-reply, replies are
  garbage or cut short, or the device never answers; the port is a by-id style symlink, and
  "plugging the device back in" points it at a healthy device.

Each test prints what it injected and what it observed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.checks.model import CheckResult, Status
from agent.config import Settings
from agent.selftest.suite import run_selftest
from agent.selftest.worker import run_selftest_isolated
from agent.sim.audio import MIC_DEVICE, PulseServer, TonePlayer
from agent.sim.serial_device import PtyDevice, load_recording
from agent.sim.video import MjpegServer

OFF = {"enabled": False}


def settings_for(tmp_path: Path, component: str, section: dict[str, Any]) -> Settings:
    """Settings whose only enabled component is `component`."""
    config: dict[str, Any] = {
        "site": {"site_id": "faults", "name": "faults", "tier": "commune"},
        "paths": {"state_dir": str(tmp_path / "state"), "sysfs_root": str(tmp_path / "sys")},
    }
    for name in ("camera", "microphone", "display", "codec", "ptz", "network"):
        config[name] = dict(OFF)
    config[component] = {"enabled": True, "required": True, **section}
    return Settings.model_validate(config)


def check(settings: Settings, component: str) -> tuple[CheckResult, float]:
    started = time.monotonic()
    test = run_selftest(settings, [component])
    (result,) = test.results
    return result, time.monotonic() - started


def report(injected: str, result: CheckResult, elapsed: float, timeout: float) -> None:
    print(
        f"\n[fault] injected: {injected} | status: {result.status.value} | "
        f"reason: {result.reason} | hint: {result.hint[:70]} | "
        f"elapsed {elapsed:.2f} s vs timeout {timeout:g} s"
    )


def assert_reported(result: CheckResult, elapsed: float, timeout: float) -> None:
    assert result.status in (Status.FAIL, Status.ERROR), result
    assert result.reason and result.hint, result
    assert "probe crashed" not in result.reason, result.reason
    assert elapsed < timeout + 0.5, f"{elapsed:.2f} s for a {timeout} s check"


def in_background(fn: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    return thread, out


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


# ---- camera --------------------------------------------------------------------------------

CAMERA_TIMEOUT = 5.0


def test_camera_vanishes_mid_burst_then_comes_back_on_the_same_port(tmp_path: Path) -> None:
    server = MjpegServer(fps=30).start()
    port = int(server.url.split(":")[2].split("/")[0])
    settings = settings_for(
        tmp_path,
        "camera",
        {"source": server.url, "width": 640, "height": 480, "fps": 30.0,
         "open_timeout_s": 2.0, "sample_s": 1.0, "timeout_s": CAMERA_TIMEOUT},
    )  # fmt: skip
    try:
        sent = server.frames_sent
        thread, out = in_background(lambda: check(settings, "camera"))
        # Mid-burst: the probe is reading frames when the camera goes away.
        assert wait_for(lambda: server.frames_sent >= sent + 8, 3.0)
        injected_at = time.monotonic()
        server.stop()
        thread.join(CAMERA_TIMEOUT + 2)
        result, _ = out[0]
        elapsed = time.monotonic() - injected_at
        report("MjpegServer stopped mid-read", result, elapsed, CAMERA_TIMEOUT)
        assert_reported(result, elapsed, CAMERA_TIMEOUT)
        assert result.status is Status.FAIL
        assert "camera" in result.reason

        # Still gone: the next check fails too, fast (connection refused).
        gone, gone_s = check(settings, "camera")
        report("camera still unplugged (port closed)", gone, gone_s, CAMERA_TIMEOUT)
        assert_reported(gone, gone_s, CAMERA_TIMEOUT)

        server = MjpegServer(fps=30, port=port).start()
        back, back_s = check(settings, "camera")
        report("camera back on the same port", back, back_s, CAMERA_TIMEOUT)
        assert back.status is Status.OK, back
    finally:
        server.stop()


# ---- microphone ------------------------------------------------------------------------------

MIC_TIMEOUT = 6.0


@pytest.fixture
def own_pulse(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], PulseServer]]:
    """start() -> a fresh PulseAudio server whose env is this process's (a new one replaces
    the last in the environment, as when the sound server restarts); all stopped after."""
    started: list[tuple[PulseServer, TonePlayer]] = []

    def start() -> PulseServer:
        server = PulseServer().start()
        for name, value in server.env.items():
            monkeypatch.setenv(name, value)
        started.append((server, TonePlayer(server, "tone").start()))
        return server

    yield start
    for server, player in started:
        player.stop()
        server.stop()


def test_sound_server_killed_mid_recording_then_restarted(
    tmp_path: Path, own_pulse: Callable[[], PulseServer]
) -> None:
    """Through the daemon's path (run_selftest_isolated: the probes in a child process).

    Seen once in about two dozen in-process runs: when the server dies just as the stream
    starts, PortAudio's ALSA thread spins on `self->capture.ready || self->playback.ready`,
    printing to stderr without end, and stopping the stream never returns. The daemon's
    worker process is what bounds that (the runner answers at the timeout, the worker exits);
    in-process it would hold the audio lock for good. The worker's stderr goes through a
    bounded tap here, so such a flood cannot fill the disk."""
    server = own_pulse()
    settings = settings_for(
        tmp_path, "microphone", {"device": MIC_DEVICE, "sample_s": 1.0, "timeout_s": MIC_TIMEOUT}
    )
    with stderr_tap() as tap:
        first, first_s = isolated_check(settings, "microphone")
        report("none (baseline)", first, first_s, MIC_TIMEOUT)
        assert first.status is Status.OK, first

        thread, out = in_background(lambda: isolated_check(settings, "microphone"))
        # Within the check: once the worker's capture stream is attached to the server.
        assert wait_for(lambda: _recording(server), 10.0)
        injected_at = time.monotonic()
        assert server.proc is not None
        server.proc.kill()
        server.proc.wait(5)
        thread.join(MIC_TIMEOUT + 20)
        result, _ = out[0]
        elapsed = time.monotonic() - injected_at
        report("pulseaudio SIGKILL while recording", result, elapsed, MIC_TIMEOUT)
        assert_reported(result, elapsed, MIC_TIMEOUT)

        down, down_s = isolated_check(settings, "microphone")
        report("sound server still down", down, down_s, MIC_TIMEOUT)
        assert down.status in (Status.FAIL, Status.ERROR) and down.reason and down.hint

        own_pulse()  # a new server (new socket), playing the tone again
        back, back_s = isolated_check(settings, "microphone")
        report("sound server restarted", back, back_s, MIC_TIMEOUT)
        assert back.status is Status.OK, back
    print(f"[fault] worker stderr: {tap.total} B")


def isolated_check(settings: Settings, component: str) -> tuple[CheckResult, float]:
    started = time.monotonic()
    (result,) = run_selftest_isolated(settings, [component]).results
    return result, time.monotonic() - started


class _Tap:
    total = 0
    head = b""


@contextlib.contextmanager
def stderr_tap(keep: int = 4096) -> Iterator[_Tap]:
    """fd 2 (which child processes inherit) into a pipe whose reader keeps `keep` bytes."""
    tap = _Tap()
    read_fd, write_fd = os.pipe()
    saved = os.dup(2)

    def drain() -> None:
        while chunk := os.read(read_fd, 65536):
            tap.total += len(chunk)
            if len(tap.head) < keep:
                tap.head += chunk[: keep - len(tap.head)]

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    os.dup2(write_fd, 2)
    os.close(write_fd)
    try:
        yield tap
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        reader.join(30)  # EOF once every child holding the write end has exited
        os.close(read_fd)
        if tap.head:
            sys.stderr.write(tap.head.decode(errors="replace")[:1000])


def _recording(server: PulseServer) -> bool:
    """The probe's capture stream is attached to the server (a source-output exists)."""
    return bool(server.pactl("list", "short", "source-outputs").strip())


# ---- serial (the codec) ------------------------------------------------------------------------

CODEC_TIMEOUT = 2.0
CODEC = "cisco-roomos_ce9.15"


@pytest.fixture
def codec_port(tmp_path: Path) -> Iterator[Callable[[str | None], PtyDevice]]:
    """plug(fault) -> a new emulated codec behind tmp/serial/by-id/usb-codec (the previous one
    is unplugged: stopped, its pty gone)."""
    link = tmp_path / "serial" / "by-id" / "usb-codec"
    link.parent.mkdir(parents=True)
    devices: list[PtyDevice] = []

    def plug(fault: str | None) -> PtyDevice:
        if devices:
            devices[-1].stop()
        device = PtyDevice(load_recording(CODEC), fault).start()
        devices.append(device)
        link.unlink(missing_ok=True)
        link.symlink_to(device.port)
        return device

    yield plug
    for device in devices:
        device.stop()


def codec_settings(tmp_path: Path) -> Settings:
    port = str(tmp_path / "serial" / "by-id" / "usb-codec")
    return settings_for(
        tmp_path,
        "codec",
        {"profile": "cisco-roomos", "port": port, "username": "admin", "password": "secret",
         "timeout_s": CODEC_TIMEOUT},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "words"),
    [
        ("disconnect", ("lost", "dropped", "line")),
        ("garbage", ("unexpected", "unrecognised", "garbage", "answer")),
        ("partial", ("incomplete", "no answer", "answer")),
        ("silent", ("no answer",)),
    ],
)
def test_serial_device_fault_then_replugged(
    tmp_path: Path,
    codec_port: Callable[[str | None], PtyDevice],
    fault: str,
    words: tuple[str, ...],
) -> None:
    settings = codec_settings(tmp_path)
    device = codec_port(fault)
    result, elapsed = check(settings, "codec")
    report(f"codec fault '{fault}'", result, elapsed, CODEC_TIMEOUT)
    assert_reported(result, elapsed, CODEC_TIMEOUT)
    assert any(w in result.reason.lower() for w in words), result.reason
    assert device.requests, "the agent never asked the device anything"

    codec_port(None)  # unplugged, and a healthy codec plugged in on the same name
    back, back_s = check(settings, "codec")
    report("codec replugged (healthy)", back, back_s, CODEC_TIMEOUT)
    assert back.status is Status.OK, back


def test_serial_device_unplugged_mid_reply_and_port_gone(
    tmp_path: Path, codec_port: Callable[[str | None], PtyDevice]
) -> None:
    settings = codec_settings(tmp_path)
    device = codec_port("disconnect")
    first, first_s = check(settings, "codec")
    report("codec drops the line mid-reply", first, first_s, CODEC_TIMEOUT)
    assert_reported(first, first_s, CODEC_TIMEOUT)
    # Unplugged for good: the adapter's device node is gone.
    device.stop()
    link = tmp_path / "serial" / "by-id" / "usb-codec"
    link.unlink()
    gone, gone_s = check(settings, "codec")
    report("codec adapter unplugged (no port)", gone, gone_s, CODEC_TIMEOUT)
    assert_reported(gone, gone_s, CODEC_TIMEOUT)
    assert "not found" in gone.reason and "plugged" in gone.hint
    codec_port(None)
    back, back_s = check(settings, "codec")
    report("codec plugged back in", back, back_s, CODEC_TIMEOUT)
    assert back.status is Status.OK, back
    assert os.path.islink(link)
