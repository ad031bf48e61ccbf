"""Microphone metrics and verdict. Pure: float samples in [-1, 1] in, numbers and an outcome out.

Levels are plain RMS dBFS: a full-scale square wave is 0 dBFS, a full-scale sine -3.01 dBFS
(not the AES-17 convention, which would call that sine 0 dBFS). Silence has no logarithm, so
every dB value is floored at `FLOOR_DB`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from agent.checks.model import MetricValue, Outcome, Status, said
from agent.config import MicrophoneSettings
from agent.messages import Message, message

Samples = npt.NDArray[np.floating]

FLOOR_DB = -120.0
CLIP_LEVEL = 0.999
NOISE_WINDOW_S = 0.02  # short-window RMS for the noise floor: one syllable is longer
NOISE_PERCENTILE = 10.0
HUM_MAX_HZ = 400.0  # harmonics above this are buried in speech and room noise anyway
HUM_HALF_BAND_HZ = 3.0  # mains drifts by a fraction of a hertz; leave room for the window
TONE_MIN_SNR_DB = 12.0
LOOP_MIN_RISE_DB = 10.0  # the loop tone must lift its bins this far above the room
_TONE_NEIGHBOURHOOD_HZ = 200.0
_EPS = 1e-20


def _db(power_ratio: float) -> float:
    """10*log10 floored at FLOOR_DB; for amplitude ratios pass the square."""
    if power_ratio <= 0.0 or not math.isfinite(power_ratio):
        return FLOOR_DB
    return max(FLOOR_DB, 10.0 * math.log10(power_ratio))


def as_mono(samples: Samples) -> npt.NDArray[np.float64]:
    """One channel to analyse: a 1-D signal as is; of several, the loudest.

    A mono microphone on a stereo input often feeds one channel only; averaging would lose
    6 dB and hide nothing useful.
    """
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        return x
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"samples must be 1-D or (frames, channels), got shape {x.shape}")
    loudest = int(np.argmax(np.mean(x * x, axis=0)))
    return np.ascontiguousarray(x[:, loudest])


def rms_dbfs(x: Samples) -> float:
    return _db(float(np.mean(np.square(x, dtype=np.float64)))) if len(x) else FLOOR_DB


def peak_dbfs(x: Samples) -> float:
    return _db(float(np.max(np.abs(x))) ** 2) if len(x) else FLOOR_DB


def clip_ratio(x: Samples) -> float:
    return float(np.mean(np.abs(x) >= CLIP_LEVEL)) if len(x) else 0.0


def dc_offset(x: Samples) -> float:
    return float(np.mean(x)) if len(x) else 0.0


def noise_floor_dbfs(x: Samples, rate: float) -> float:
    """A low percentile of short-window RMS: the level between words, of the room itself."""
    win = max(1, round(rate * NOISE_WINDOW_S))
    n = len(x) // win
    if n == 0:
        return rms_dbfs(x)
    centred = x[: n * win] - np.mean(x)
    window_power = np.mean(np.square(centred).reshape(n, win), axis=1)
    return _db(float(np.percentile(window_power, NOISE_PERCENTILE)))


def _power_spectrum(x: Samples, rate: float) -> tuple[npt.NDArray[np.float64], float]:
    """One-sided power spectrum of the Hann-windowed, DC-free signal, and its bin width."""
    centred = np.asarray(x, dtype=np.float64) - np.mean(x)
    spectrum = np.fft.rfft(centred * np.hanning(len(centred)))
    return np.square(np.abs(spectrum)), rate / len(centred)


def _band(freq: float, half_hz: float, bin_hz: float, n_bins: int) -> slice:
    # At least two bins each side: the Hann main lobe is four bins wide.
    half = max(2, math.ceil(half_hz / bin_hz))
    centre = round(freq / bin_hz)
    return slice(max(1, centre - half), min(n_bins, centre + half + 1))


def hum_db(x: Samples, rate: float, mains_hz: float = 50.0) -> float:
    """Power at mains and its harmonics up to HUM_MAX_HZ, in dB relative to all power.

    0 dB: the signal is nothing but hum; a clean voice or tone is far below -20 dB.
    """
    if len(x) < 4:
        return FLOOR_DB
    power, bin_hz = _power_spectrum(x, rate)
    total = float(np.sum(power[1:]))
    if total <= _EPS:
        return FLOOR_DB
    in_band = np.zeros(len(power), dtype=bool)
    harmonic = mains_hz
    while harmonic <= min(HUM_MAX_HZ, rate / 2):
        in_band[_band(harmonic, HUM_HALF_BAND_HZ, bin_hz, len(power))] = True
        harmonic += mains_hz
    return _db(float(np.sum(power[in_band])) / total)


def tone_present(
    samples: Samples, rate: float, freq: float, min_snr_db: float = TONE_MIN_SNR_DB
) -> tuple[bool, float]:
    """Is a sine at `freq` in the signal? Returns (heard, snr_db).

    The SNR compares the power in the tone's few bins with what the same number of bins
    carries around it (median over +-200 Hz), so speech or fan noise elsewhere in the
    spectrum does not mask a tone that stands clearly above its neighbourhood.
    """
    x = as_mono(samples)
    if len(x) < 16 or not 0 < freq < rate / 2:
        return False, 0.0
    power, bin_hz = _power_spectrum(x, rate)
    band = _band(freq, 5.0, bin_hz, len(power))
    tone = float(np.sum(power[band]))
    near = _band(freq, _TONE_NEIGHBOURHOOD_HZ, bin_hz, len(power))
    mask = np.zeros(len(power), dtype=bool)
    mask[near] = True
    # Keep the tone's own skirts out of the noise estimate.
    skirt = _band(freq, 15.0, bin_hz, len(power))
    mask[skirt] = False
    n_band = band.stop - band.start
    noise_per_bin = float(np.median(power[mask])) if mask.any() else 0.0
    snr = _db((tone + _EPS) / (noise_per_bin * n_band + _EPS))
    snr = round(snr, 1)
    return snr >= min_snr_db, snr


@dataclass(frozen=True)
class AudioMetrics:
    rate: float
    duration_s: float
    rms_dbfs: float
    peak_dbfs: float
    clip_ratio: float
    dc_offset: float
    noise_floor_dbfs: float
    hum_db: float

    def as_metrics(self) -> dict[str, MetricValue]:
        return {
            "rate_hz": self.rate,
            "duration_s": round(self.duration_s, 3),
            "rms_dbfs": round(self.rms_dbfs, 2),
            "peak_dbfs": round(self.peak_dbfs, 2),
            "clip_ratio": round(self.clip_ratio, 5),
            "dc_offset": round(self.dc_offset, 5),
            "noise_floor_dbfs": round(self.noise_floor_dbfs, 2),
            "hum_db": round(self.hum_db, 2),
        }


def measure(samples: Samples, rate: float, mains_hz: float = 50.0) -> AudioMetrics:
    """Every level metric of one recording (mono, or the loudest channel of several)."""
    if rate <= 0:
        raise ValueError(f"sample rate must be positive, got {rate}")
    x = as_mono(samples)
    x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    return AudioMetrics(
        rate=float(rate),
        duration_s=len(x) / rate,
        rms_dbfs=rms_dbfs(x),
        peak_dbfs=peak_dbfs(x),
        clip_ratio=clip_ratio(x),
        dc_offset=dc_offset(x),
        noise_floor_dbfs=noise_floor_dbfs(x, rate),
        hum_db=hum_db(x, rate, mains_hz),
    )


@dataclass(frozen=True)
class LoopResult:
    """The acoustic loop test: a tone played on the speaker, listened for in the microphone."""

    freq: float
    heard: bool
    snr_db: float
    ambient_snr_db: float | None = None  # the same measure before the tone was played
    problem: Message | None = None  # the test could not run (no speaker, cannot open it): why
    hint: Message | None = None

    @property
    def masked(self) -> bool:
        """The room already had a sound at the tone's frequency: cannot tell them apart."""
        return (
            self.ambient_snr_db is not None
            and self.ambient_snr_db >= TONE_MIN_SNR_DB
            and self.snr_db - self.ambient_snr_db < LOOP_MIN_RISE_DB
        )


def loop_result(ambient: Samples, looped: Samples, rate: float, freq: float) -> LoopResult:
    """Heard = the tone stands out in the looped recording *and* was not already there:
    a projector fan whining at the test frequency must not pass for a working speaker."""
    _, before = tone_present(ambient, rate, freq)
    present, snr = tone_present(looped, rate, freq)
    heard = present and snr - max(before, 0.0) >= LOOP_MIN_RISE_DB
    return LoopResult(freq, heard, snr, before)


def judge_microphone(
    metrics: AudioMetrics, cfg: MicrophoneSettings, loop: LoopResult | None = None
) -> Outcome:
    """silent -> fail; quiet, clipping, DC offset, hum, unheard loop tone -> warn; else ok."""
    values = metrics.as_metrics()
    if loop is not None:
        values |= {
            "loop_tone_hz": loop.freq,
            "loop_heard": loop.heard,
            "loop_snr_db": loop.snr_db,
            "loop_ambient_snr_db": loop.ambient_snr_db,
        }
    level = message("microphone.level", rms=metrics.rms_dbfs, peak=metrics.peak_dbfs)
    if metrics.rms_dbfs < cfg.silent_dbfs:
        return said(
            Status.FAIL,
            message("microphone.silent", level=level),
            message("microphone.hint.silent"),
            values,
        )
    problems: list[tuple[Message, Message | None]] = []
    if metrics.rms_dbfs < cfg.quiet_dbfs:
        problems.append(
            (
                message("microphone.quiet", level=level, quiet=cfg.quiet_dbfs),
                message("microphone.hint.quiet"),
            )
        )
    if metrics.clip_ratio > cfg.max_clip_ratio:
        problems.append(
            (
                message("microphone.clipping", ratio=metrics.clip_ratio),
                message("microphone.hint.clipping"),
            )
        )
    if abs(metrics.dc_offset) > cfg.max_dc_offset:
        problems.append(
            (
                message("microphone.dc_offset", offset=metrics.dc_offset),
                message("microphone.hint.dc_offset"),
            )
        )
    if metrics.hum_db > cfg.max_hum_db:
        problems.append(
            (
                message("microphone.hum", hum=metrics.hum_db, mains=cfg.mains_hz),
                message("microphone.hint.hum"),
            )
        )
    if loop is not None and loop.problem is not None:
        problems.append((loop.problem, loop.hint))
    elif loop is not None and loop.masked:
        problems.append(
            (
                message(
                    "microphone.tone_masked", freq=loop.freq, ambient=loop.ambient_snr_db or 0.0
                ),
                message("microphone.hint.tone_masked"),
            )
        )
    elif loop is not None and not loop.heard:
        problems.append(
            (
                message("microphone.tone_unheard", freq=loop.freq, snr=loop.snr_db),
                message("microphone.hint.tone_unheard"),
            )
        )
    if problems:
        hints = [hint for _, hint in problems if hint is not None]
        return said(
            Status.WARN,
            message("microphone.problems", problems=[reason for reason, _ in problems]),
            message("microphone.hints", hints=hints) if hints else None,
            values,
        )
    noise = metrics.noise_floor_dbfs
    if loop is not None:
        summary = message("microphone.ok_loop", level=level, noise=noise, snr=loop.snr_db)
    else:
        summary = message("microphone.ok", level=level, noise=noise)
    return said(Status.OK, summary, None, values)
