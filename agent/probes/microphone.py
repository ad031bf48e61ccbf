"""Microphone check through PortAudio (sounddevice): record about a second, measure, judge.

With `loop_test` it also plays a tone on the site's output device and listens for it: the
proof that speaker -> room -> microphone works. Never run it during a session.

PortAudio enumerates devices once, when sounddevice is imported, and keeps that list. A
long-running agent would never see a USB microphone plugged in later, and a process that
imported sounddevice before its PulseAudio server came up (the simulated site, the tests)
would see no PulseAudio devices at all: PortAudio reaches PulseAudio through ALSA's `pulse`
plugin, which reads PULSE_SERVER when PortAudio scans. So when the configured device is
missing, or fails to open, the probe re-initialises PortAudio (a fresh scan, ~30 ms) and
tries once more. A lock keeps two checks from doing that under each other's open stream.
(sounddevice points fd 2 at /dev/null while it scans, to hide ALSA's complaints about
missing cards; what other threads write to stderr in those milliseconds is lost.)

Through PulseAudio the devices are called "pulse" and "default" (ALSA's pulse plugin; the
source is the server's default source), which is how the simulated site selects them.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from agent.checks.audio_metrics import LoopResult, judge_microphone, loop_result, measure
from agent.checks.model import MetricValue, Outcome
from agent.config import MicrophoneSettings, Settings
from agent.errors import DeviceNotFound, DeviceTimeout, ProbeError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

WARMUP_S = 0.05  # dropped: the first blocks after start can carry a click or AGC settling
START_MARGIN_S = 3.0  # a PulseAudio null sink nobody plays into delivers in 2 s blocks
LOOP_LEVEL = 0.35  # peak of the loop-test tone, about -12 dBFS RMS: audible, not painful
_LOCK_WAIT_S = 30.0
_INSTALL_HINT = (
    "install the PortAudio library: apt-get install libportaudio2 (then restart edge-agent)"
)

_portaudio_lock = threading.Lock()
_T = TypeVar("_T")


@dataclass(frozen=True)
class AudioDevice:
    index: int
    name: str
    inputs: int
    outputs: int
    default_rate: float


def import_sounddevice() -> ModuleType:
    """sounddevice, or a ProbeError that says which system package is missing."""
    try:
        import sounddevice  # noqa: PLC0415 - heavy, and its import can fail: only when needed
    except OSError as exc:  # "PortAudio library not found"
        raise ProbeError(f"audio: {exc}", _INSTALL_HINT) from None
    except ImportError as exc:
        raise ProbeError(
            f"audio: the sounddevice module is missing ({exc})",
            "reinstall edge-agent (pip install -e .); it brings sounddevice",
        ) from None
    except Exception as exc:  # PortAudioError from Pa_Initialize at import
        raise ProbeError(
            f"audio: PortAudio failed to start: {exc}",
            "check that the sound driver is loaded (aplay -l lists the cards)",
        ) from None
    module: ModuleType = sounddevice
    return module


def refresh_portaudio(sd: ModuleType) -> None:
    """Drop PortAudio's device list and scan again (PortAudio v19 has no rescan call)."""
    try:
        if sd._initialized:
            sd._terminate()
        sd._initialize()
    except sd.PortAudioError as exc:
        raise ProbeError(
            f"audio: PortAudio failed to restart: {exc}",
            "restart edge-agent; if it persists, check the sound driver (aplay -l)",
        ) from None


def list_devices(sd: ModuleType) -> list[AudioDevice]:
    if not sd._initialized:
        refresh_portaudio(sd)
    return [
        AudioDevice(
            index=i,
            name=str(d["name"]),
            inputs=int(d["max_input_channels"]),
            outputs=int(d["max_output_channels"]),
            default_rate=float(d["default_samplerate"]),
        )
        for i, d in enumerate(sd.query_devices())
    ]


def _describe(devices: list[AudioDevice]) -> str:
    return ", ".join(f"[{d.index}] {d.name!r}" for d in devices) or "none"


def find_device(devices: list[AudioDevice], wanted: str | int, kind: str) -> AudioDevice:
    """The input (kind="input") or output device named by index or by name.

    A name matches exactly (case-insensitive) first, then as a substring; a substring that
    names several devices is refused rather than guessed.
    """
    usable = [d for d in devices if (d.inputs if kind == "input" else d.outputs) > 0]
    role = "microphone" if kind == "input" else "loudspeaker"
    found_hint = (
        f"{kind} devices here: {_describe(usable)}; set the {role} device to one of these "
        "names (or its index); `edge-agent devices` lists them"
    )
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.strip().isdigit()):
        index = int(wanted)
        for d in usable:
            if d.index == index:
                return d
        raise DeviceNotFound(f"{role} device index {index}: no such {kind} device", found_hint)
    key = wanted.strip().lower()
    exact = [d for d in usable if d.name.lower() == key]
    if exact:
        return exact[0]
    partial = [d for d in usable if key in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        raise DeviceNotFound(
            f"{role} device {wanted!r}: matches several {kind} devices: {_describe(partial)}",
            "use a longer part of the name, or the index",
        )
    raise DeviceNotFound(
        f"{role} device {wanted!r}: not found; is it plugged in?",
        found_hint,
    )


def _record(
    sd: ModuleType, device: AudioDevice, rate: int, seconds: float
) -> npt.NDArray[np.float32]:
    """`seconds` of audio from an explicit InputStream (never sd.rec: one global stream).

    Callback mode, so a device that opens but never delivers is a timeout we control,
    not a blocking read stuck forever.
    """
    import numpy as np  # noqa: PLC0415

    channels = max(1, min(2, device.inputs))
    warmup = round(rate * WARMUP_S)
    total = warmup + max(1, round(rate * seconds))
    buf = np.zeros((total, channels), dtype=np.float32)
    filled = 0
    full = threading.Event()

    def on_block(indata: Any, frames: int, _time: Any, status: Any) -> None:
        nonlocal filled
        if status:
            log.debug("microphone stream status: %s", status)
        take = min(frames, total - filled)
        if take > 0:
            buf[filled : filled + take] = indata[:take]
            filled += take
        if filled >= total:
            full.set()

    stream = sd.InputStream(
        device=device.index,
        samplerate=rate,
        channels=channels,
        dtype="float32",
        latency="high",
        callback=on_block,
    )
    timeout = seconds + WARMUP_S + START_MARGIN_S
    with stream:
        if not full.wait(timeout):
            raise DeviceTimeout(
                f"microphone {device.name!r}: no sound data within {timeout:.1f} s "
                f"(got {filled} of {total} samples)",
                "the device exists but delivers nothing: unplug and replug it, and close "
                "any other program using it",
            )
    return buf[warmup:]


class _TonePlayer:
    """A sine on an OutputStream, phase-continuous across PortAudio's blocks."""

    def __init__(self, sd: ModuleType, device: AudioDevice, freq: float) -> None:
        import numpy as np  # noqa: PLC0415

        self._np = np
        self._rate = int(device.default_rate)
        self._step = 2 * math.pi * freq / self._rate
        self._phase = 0.0
        self.stream = sd.OutputStream(
            device=device.index,
            samplerate=self._rate,
            channels=max(1, min(2, device.outputs)),
            dtype="float32",
            latency="high",
            callback=self._fill,
        )

    def _fill(self, outdata: Any, frames: int, _time: Any, _status: Any) -> None:
        np = self._np
        phases = self._phase + self._step * np.arange(frames)
        outdata[:] = (LOOP_LEVEL * np.sin(phases))[:, None]
        self._phase = float((self._phase + self._step * frames) % (2 * math.pi))


def _open_error(device: AudioDevice, exc: Exception, role: str) -> ProbeError:
    return ProbeError(
        f"{role} {device.name!r}: cannot open: {exc}",
        "close other programs using the device, unplug and replug it; if a sample rate "
        "is set in the settings, try removing it",
    )


def _on_device(
    sd: ModuleType, wanted: str | int, kind: str, action: Callable[[AudioDevice], _T]
) -> tuple[AudioDevice, _T]:
    """Find the device and run `action` on it; on a miss or an open error, rescan PortAudio
    once and try again (see the module docstring)."""
    role = "microphone" if kind == "input" else "loudspeaker"
    try:
        device = find_device(list_devices(sd), wanted, kind)
        return device, action(device)
    except DeviceNotFound:
        log.info("%s %r: not in PortAudio's list; rescanning audio devices", role, wanted)
    except sd.PortAudioError as exc:
        log.info("%s %r: %s; rescanning audio devices", role, wanted, exc)
    refresh_portaudio(sd)
    device = find_device(list_devices(sd), wanted, kind)
    try:
        return device, action(device)
    except sd.PortAudioError as exc:
        raise _open_error(device, exc, role) from None


def _loop_test(
    sd: ModuleType, cfg: MicrophoneSettings, rate: int, ambient: npt.NDArray[np.float32]
) -> LoopResult:
    """Play the tone on the output device while recording; any trouble is a loop result
    (a warning), not a microphone failure: the level check already passed or failed."""
    wanted: str | int | None = cfg.output_device
    if wanted is None:
        default_out = sd.default.device[1]
        wanted = int(default_out) if default_out is not None and int(default_out) >= 0 else None
    if wanted is None:
        return LoopResult(
            cfg.loop_tone_hz,
            heard=False,
            snr_db=0.0,
            problem="loop test: no default output device",
            hint="set microphone.output_device in the settings; `edge-agent devices` lists "
            "the outputs",
        )

    def play_and_record(speaker: AudioDevice) -> npt.NDArray[np.float32]:
        # Found again: a rescan for the speaker may have renumbered the microphone.
        mic_now = find_device(list_devices(sd), cfg.device, "input")
        with _TonePlayer(sd, speaker, cfg.loop_tone_hz).stream:
            return _record(sd, mic_now, rate, cfg.sample_s)

    try:
        _speaker, samples = _on_device(sd, wanted, "output", play_and_record)
    except ProbeError as exc:
        return LoopResult(
            cfg.loop_tone_hz,
            heard=False,
            snr_db=0.0,
            problem=f"loop test: {exc.message}",
            hint=exc.hint,
        )
    return loop_result(ambient, samples, rate, cfg.loop_tone_hz)


def check_microphone(settings: Settings) -> Outcome:
    cfg = settings.microphone
    sd = import_sounddevice()
    if not _portaudio_lock.acquire(timeout=_LOCK_WAIT_S):
        raise DeviceTimeout(
            "microphone: an earlier audio check is still stuck in the sound driver",
            "restart edge-agent; if it happens again, replug the microphone",
        )
    try:

        def record(device: AudioDevice) -> tuple[int, npt.NDArray[np.float32]]:
            rate = cfg.samplerate or int(device.default_rate)
            return rate, _record(sd, device, rate, cfg.sample_s)

        mic, (rate, samples) = _on_device(sd, cfg.device, "input", record)
        metrics = measure(samples, rate, cfg.mains_hz)
        loop = _loop_test(sd, cfg, rate, samples) if cfg.loop_test else None
        outcome = judge_microphone(metrics, cfg, loop)
        extra: dict[str, MetricValue] = {"device": mic.name, "device_index": mic.index}
        return Outcome(outcome.status, outcome.reason, outcome.hint, {**outcome.metrics, **extra})
    finally:
        _portaudio_lock.release()
