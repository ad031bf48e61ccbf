"""Microphone metrics and verdict on synthetic signals: no audio server needed."""

import math

import numpy as np
import pytest

from agent.checks.audio_metrics import (
    FLOOR_DB,
    AudioMetrics,
    LoopResult,
    as_mono,
    judge_microphone,
    loop_result,
    measure,
    tone_present,
)
from agent.checks.model import Status
from agent.config import MicrophoneSettings
from agent.messages import message, render

RATE = 48000
T = np.arange(RATE) / RATE
CFG = MicrophoneSettings()


def sine(freq, rms_dbfs, t=T):
    return math.sqrt(2) * 10 ** (rms_dbfs / 20) * np.sin(2 * np.pi * freq * t)


def hum(rms_dbfs, mains=50.0):
    x = sum(np.sin(2 * np.pi * mains * k * T + k) / k for k in range(1, 6))
    return x * 10 ** (rms_dbfs / 20) / np.sqrt(np.mean(x * x))


def noise(rms_dbfs, seed=3):
    return np.random.default_rng(seed).normal(0, 10 ** (rms_dbfs / 20), RATE)


def test_tone_level_is_exact():
    m = measure(sine(1000, -9.0), RATE)
    assert m.rms_dbfs == pytest.approx(-9.0, abs=0.01)
    assert m.peak_dbfs == pytest.approx(-9.0 + 3.01, abs=0.01)
    assert m.clip_ratio == 0.0
    assert abs(m.dc_offset) < 1e-9
    assert m.hum_db < -60
    assert m.duration_s == 1.0


def test_float32_and_int_like_input_give_the_same_level():
    m = measure(sine(440, -20.0).astype(np.float32), RATE)
    assert m.rms_dbfs == pytest.approx(-20.0, abs=0.01)


def test_digital_silence_is_floored_not_nan():
    m = measure(np.zeros(RATE), RATE)
    assert m.rms_dbfs == m.peak_dbfs == m.noise_floor_dbfs == m.hum_db == FLOOR_DB


def test_clipping_ratio_counts_samples_at_full_scale():
    x = np.clip(sine(997, -9.0 + 12), -1, 1)  # peaks at 2x full scale
    m = measure(x, RATE)
    # |2 sin| >= 0.999 for 2/3 of each cycle
    assert m.clip_ratio == pytest.approx(2 / 3, abs=0.02)
    assert m.peak_dbfs == pytest.approx(0.0, abs=0.01)


def test_dc_offset():
    m = measure(sine(1000, -20) + 0.1, RATE)
    assert m.dc_offset == pytest.approx(0.1, abs=1e-6)
    assert m.hum_db < -60  # the spectrum is taken without the DC


def test_noise_floor_is_the_quiet_between_bursts():
    x = noise(-60.0)
    x[: RATE // 2] += sine(300, -10.0)[: RATE // 2]  # speech-like burst in the first half
    m = measure(x, RATE)
    assert m.noise_floor_dbfs == pytest.approx(-60.0, abs=1.0)
    assert m.rms_dbfs > -20


def test_hum_alone_is_about_0_db_and_a_tone_is_far_below():
    assert measure(hum(-30), RATE).hum_db == pytest.approx(0.0, abs=0.1)
    assert measure(sine(1000, -10), RATE).hum_db < -60


def test_hum_under_a_louder_tone_is_measured_relative_to_total():
    # hum 20 dB below the tone: about -20 dB of the total power
    m = measure(sine(1000, -10) + hum(-30), RATE)
    assert m.hum_db == pytest.approx(-20.0, abs=0.5)


def test_60_hz_mains():
    x = hum(-30, mains=60.0)
    assert measure(x, RATE, mains_hz=60.0).hum_db > -1
    assert measure(x, RATE, mains_hz=50.0).hum_db < -10


def test_tone_detection():
    heard, snr = tone_present(noise(-30) + sine(1000, -40), RATE, 1000)
    assert heard and snr > 20  # 10 dB under broadband noise, still plain in its bins
    heard, snr = tone_present(noise(-30), RATE, 1000)
    assert not heard and snr < 6
    heard, _ = tone_present(sine(1500, -10), RATE, 1000)  # another frequency
    assert not heard
    assert tone_present(np.zeros(RATE), RATE, 1000) == (False, 0.0)


def test_tone_detection_at_44k1_and_short_recording():
    t = np.arange(int(44100 * 0.3)) / 44100
    heard, _ = tone_present(sine(1000, -20, t) + noise(-40)[: len(t)], 44100, 1000)
    assert heard


def test_loudest_channel_is_analysed():
    stereo = np.stack([np.zeros(RATE), sine(1000, -9)], axis=1)
    assert measure(stereo, RATE).rms_dbfs == pytest.approx(-9.0, abs=0.01)
    assert as_mono(stereo).shape == (RATE,)
    with pytest.raises(ValueError, match="shape"):
        as_mono(np.zeros((2, 2, 2)))


def test_garbage_values_do_not_crash():
    x = sine(1000, -9)
    x[100] = np.nan
    x[200] = np.inf
    m = measure(x, RATE)
    assert math.isfinite(m.rms_dbfs)
    assert measure(np.zeros(0), RATE).rms_dbfs == FLOOR_DB


def metrics(**over):
    base = dict(
        rate=48000.0,
        duration_s=1.0,
        rms_dbfs=-30.0,
        peak_dbfs=-15.0,
        clip_ratio=0.0,
        dc_offset=0.0,
        noise_floor_dbfs=-50.0,
        hum_db=-40.0,
    )
    return AudioMetrics(**(base | over))


def test_judge_ok_has_numbers_and_no_hint():
    outcome = judge_microphone(metrics(), CFG)
    assert outcome.status is Status.OK
    assert "-30.0 dBFS" in outcome.reason
    assert outcome.metrics["rms_dbfs"] == -30.0
    assert outcome.hint == ""


@pytest.mark.parametrize(
    ("over", "status", "words"),
    [
        ({"rms_dbfs": -80.0}, Status.FAIL, "no signal: is the mic muted or unplugged?"),
        ({"rms_dbfs": -60.0}, Status.WARN, "very quiet"),
        ({"clip_ratio": 0.01}, Status.WARN, "clipping"),
        ({"dc_offset": -0.2}, Status.WARN, "DC offset"),
        ({"hum_db": -3.0}, Status.WARN, "mains hum"),
    ],
)
def test_judge_each_problem_has_reason_and_hint(over, status, words):
    outcome = judge_microphone(metrics(**over), CFG)
    assert outcome.status is status
    assert words in outcome.reason
    assert outcome.hint


def test_silence_fails_even_when_other_things_are_wrong_too():
    outcome = judge_microphone(metrics(rms_dbfs=-100.0, hum_db=0.0), CFG)
    assert outcome.status is Status.FAIL


def test_several_warnings_are_all_reported():
    outcome = judge_microphone(metrics(clip_ratio=0.2, hum_db=-1.0), CFG)
    assert outcome.status is Status.WARN
    assert "clipping" in outcome.reason and "hum" in outcome.reason
    assert "gain" in outcome.hint and "power cables" in outcome.hint


def test_thresholds_come_from_settings():
    strict = MicrophoneSettings(quiet_dbfs=-20.0)
    assert judge_microphone(metrics(), strict).status is Status.WARN


def test_loop_result_heard_and_not_heard():
    heard = judge_microphone(metrics(), CFG, LoopResult(1000.0, True, 40.0))
    assert heard.status is Status.OK
    assert heard.metrics["loop_heard"] is True
    missed = judge_microphone(metrics(), CFG, LoopResult(1000.0, False, 1.2))
    assert missed.status is Status.WARN
    assert "not heard" in missed.reason and "loudspeaker" in missed.hint
    broken = LoopResult(
        1000.0,
        False,
        0.0,
        problem=message("microphone.loop_no_output"),
        hint=message("microphone.hint.set_output"),
    )
    outcome = judge_microphone(metrics(), CFG, broken)
    assert outcome.status is Status.WARN
    assert outcome.reason == "loop test: no default output device"
    assert outcome.hint.startswith("set microphone.output_device in the settings")
    assert outcome.reason_msg is not None and outcome.hint_msg is not None
    assert render(outcome.reason_msg, "vi").startswith("thử vòng loa-micrô:")


def test_loop_result_needs_the_tone_to_rise_above_the_room():
    room = noise(-40)
    heard = loop_result(room, room + sine(1000, -20), RATE, 1000)
    assert heard.heard and not heard.masked
    assert heard.snr_db > 30 and heard.ambient_snr_db < 6
    assert not loop_result(room, room, RATE, 1000).heard


def test_loop_tone_masked_by_a_room_sound_at_the_same_frequency_warns():
    whine = noise(-40) + sine(1000, -15)  # a fan whining at the test frequency
    result = loop_result(whine, whine + sine(1000, -20), RATE, 1000)
    assert not result.heard and result.masked
    outcome = judge_microphone(metrics(), CFG, result)
    assert outcome.status is Status.WARN
    assert "already has a sound" in outcome.reason and "loop_tone_hz" in outcome.hint
