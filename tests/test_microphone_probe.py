"""The microphone probe through the real path: PulseAudio null sink -> its monitor ->
ALSA pulse plugin -> PortAudio -> sounddevice -> the probe."""

import ctypes.util
import sys

import pytest

from agent.checks.model import Status
from agent.config import Settings
from agent.errors import ProbeError
from agent.probes.microphone import check_microphone, import_sounddevice
from agent.selftest.runner import build_probes, run_probes

pytestmark = pytest.mark.audio

SAMPLE_S = 0.3  # enough for every metric; keeps the file at a few seconds


def settings(**mic):
    return Settings(
        site={"site_id": "t", "name": "t", "tier": "commune"},
        microphone={"device": "pulse", "sample_s": SAMPLE_S, **mic},
    )


def test_silence_fails_with_a_hint(audio_silence):
    outcome = check_microphone(settings())
    assert outcome.status is Status.FAIL
    assert "no signal" in outcome.reason
    assert "mute" in outcome.hint
    assert outcome.metrics["rms_dbfs"] < -70


def test_tone_is_ok_at_its_level(audio_tone):
    outcome = check_microphone(settings())
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.metrics["rms_dbfs"] == pytest.approx(-9.0, abs=0.3)
    assert outcome.metrics["peak_dbfs"] == pytest.approx(-6.0, abs=0.3)
    assert outcome.metrics["clip_ratio"] == 0.0
    assert outcome.metrics["hum_db"] < -40
    assert outcome.metrics["device"] == "pulse"
    # the device's default rate, 44100 for ALSA's pulse plugin
    assert outcome.metrics["rate_hz"] == 44100.0


def test_clipped_tone_warns(audio_clipped):
    outcome = check_microphone(settings(samplerate=48000))
    assert outcome.status is Status.WARN
    assert "clipping" in outcome.reason
    assert outcome.metrics["clip_ratio"] > 0.3
    assert outcome.metrics["rate_hz"] == 48000.0


def test_hum_warns(audio_hum):
    outcome = check_microphone(settings())
    assert outcome.status is Status.WARN
    assert "hum" in outcome.reason
    assert "power cables" in outcome.hint
    assert outcome.metrics["hum_db"] > -3
    assert outcome.metrics["rms_dbfs"] == pytest.approx(-20.0, abs=0.5)


def test_device_by_index(audio_tone):
    by_name = check_microphone(settings(device="default"))
    by_index = check_microphone(settings(device=by_name.metrics["device_index"]))
    assert by_index.status is Status.OK
    assert by_index.metrics["device"] == "default"


def test_unknown_device_fails_through_the_runner_with_the_list(pulse_server):
    s = settings(device="USB Conference Mic")
    [result] = run_probes(build_probes(s, only=["microphone"]))
    assert result.status is Status.FAIL
    assert "'USB Conference Mic': not found" in result.reason
    assert "'pulse'" in result.hint and "'default'" in result.hint


def test_loop_test_hears_its_tone(audio_noise):
    outcome = check_microphone(settings(loop_test=True, output_device="pulse"))
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.metrics["loop_heard"] is True
    assert outcome.metrics["loop_snr_db"] > 30
    assert "test tone heard" in outcome.reason


def test_loop_test_with_a_missing_speaker_warns(audio_noise):
    outcome = check_microphone(settings(loop_test=True, output_device="HDMI speaker"))
    assert outcome.status is Status.WARN
    assert "loop test" in outcome.reason and "'HDMI speaker'" in outcome.reason
    assert "'pulse'" in outcome.hint
    assert outcome.metrics["rms_dbfs"] == pytest.approx(-30.0, abs=1.5)  # level still measured


def test_devices_scanned_before_the_server_are_found_after_a_rescan(audio_tone, monkeypatch):
    """The trap: PortAudio lists devices once. Scan while the server is unreachable, then
    make it reachable again: the probe must rescan by itself."""
    sd = import_sounddevice()
    with monkeypatch.context() as m:
        m.setenv("PULSE_SERVER", "unix:/nonexistent/pulse/native")
        sd._terminate()
        sd._initialize()
        assert "pulse" not in [d["name"] for d in sd.query_devices()]
    outcome = check_microphone(settings())
    assert outcome.status is Status.OK
    assert "pulse" in [d["name"] for d in sd.query_devices()]


def test_missing_portaudio_is_a_fail_with_the_fix(monkeypatch):
    """sounddevice imported on a machine without libportaudio2 (the real import code runs;
    only the library lookup comes back empty, as it does when the package is absent)."""
    real_find = ctypes.util.find_library
    monkeypatch.setattr(
        ctypes.util, "find_library", lambda name: None if name == "portaudio" else real_find(name)
    )
    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    with pytest.raises(ProbeError) as err:
        check_microphone(settings())
    assert "PortAudio library not found" in err.value.message
    assert "apt-get install libportaudio2" in err.value.hint
