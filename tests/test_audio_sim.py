"""The simulated audio room: PulseAudio lifecycle and the signals the player produces."""

import os
import shutil
import stat
import subprocess

import numpy as np
import pytest

from agent.sim.audio import KINDS, PulseServer, TonePlayer, make_signal

pytestmark = pytest.mark.audio


def test_signals_loop_seamlessly_at_their_levels():
    for kind in KINDS:
        x = make_signal(kind)
        assert x.dtype == np.float32 and len(x) == 48000
        assert np.max(np.abs(x)) <= 1.0
    tone = make_signal("tone").astype(np.float64)
    assert 20 * np.log10(np.sqrt(np.mean(tone**2))) == pytest.approx(-9.0, abs=0.01)
    # the seam: last sample -> first sample is one ordinary step of the sine
    assert abs(tone[0] - tone[-1]) < 0.1
    with pytest.raises(ValueError, match="unknown signal"):
        make_signal("whistle")


@pytest.mark.skipif(shutil.which("pulseaudio") is None, reason="pulseaudio not installed")
def test_server_starts_private_and_stops_without_leftovers():
    server = PulseServer(sink="leaktest")
    with server:
        runtime = server.runtime_dir
        pid = server.proc.pid
        assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
        assert server.env["PULSE_SERVER"] == f"unix:{runtime}/pulse/native"
        assert "leaktest" in server.pactl("list", "short", "sinks")
        assert server.sink_latency_s() < 0.1  # the keep-alive holds render-ahead down
        player = TonePlayer(server, "tone").start()
        pacat_pid = player._proc.pid
        assert len(server.sink_inputs()) == 2  # keep-alive + tone
        player.stop()
        assert not player.playing()
        assert not os.path.exists(f"/proc/{pacat_pid}")
        assert len(server.sink_inputs()) == 1
    assert not os.path.exists(f"/proc/{pid}")
    assert not runtime.exists()
    server.stop()  # twice is harmless


def test_player_signal_reaches_the_monitor_and_switches(pulse_server, play):
    player = play("tone")
    rms = _record_rms_dbfs(pulse_server)
    assert rms == pytest.approx(-9.0, abs=0.3)
    player.set_kind("hum")
    rms = _record_rms_dbfs(pulse_server, skip_s=0.1)
    assert rms == pytest.approx(-20.0, abs=0.3)


def _record_rms_dbfs(server, seconds=0.3, skip_s=0.0):
    proc = subprocess.Popen(
        ["parec", "--raw", "--format=float32le", "--rate=48000", "--channels=1"],
        env={**os.environ, **server.env},
        stdout=subprocess.PIPE,
    )
    try:
        want = int(48000 * (seconds + skip_s)) * 4
        data = b""
        while len(data) < want:
            chunk = proc.stdout.read1(want - len(data))
            assert chunk, "parec ended early"
            data += chunk
    finally:
        proc.terminate()
        proc.wait()
    x = np.frombuffer(data, dtype="<f4")[int(48000 * skip_s) :].astype(np.float64)
    return 10 * np.log10(np.mean(x**2))
