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
from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from agent.checks.audio_metrics import LoopResult, judge_microphone, loop_result, measure
from agent.checks.model import MetricValue, Outcome
from agent.config import MicrophoneSettings, Settings
from agent.errors import DeviceNotFound, DeviceTimeout, ProbeError
from agent.messages import Message, message

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

log = logging.getLogger(__name__)

WARMUP_S = 0.05  # dropped: the first blocks after start can carry a click or AGC settling
START_MARGIN_S = 3.0  # a PulseAudio null sink nobody plays into delivers in 2 s blocks
LOOP_LEVEL = 0.35  # peak of the loop-test tone, about -12 dBFS RMS: audible, not painful
_LOCK_WAIT_S = 30.0

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
        raise ProbeError(
            message("microphone.portaudio_missing", error=str(exc)),
            message("microphone.hint.install_portaudio"),
        ) from None
    except ImportError as exc:
        raise ProbeError(
            message("microphone.sounddevice_missing", error=str(exc)),
            message("microphone.hint.reinstall"),
        ) from None
    except Exception as exc:  # PortAudioError from Pa_Initialize at import
        raise ProbeError(
            message("microphone.portaudio_failed", error=str(exc)),
            message("microphone.hint.sound_driver"),
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
            message("microphone.portaudio_restart_failed", error=str(exc)),
            message("microphone.hint.restart_driver"),
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


def _describe(devices: list[AudioDevice]) -> str | Message:
    return ", ".join(f"[{d.index}] {d.name!r}" for d in devices) or message("microphone.none")


def _role(kind: str) -> Message:
    """ "microphone" for an input, "loudspeaker" for an output, in the reader's language."""
    if kind == "input":
        return message("microphone.role.input")
    return message("microphone.role.output")


def _kind(kind: str) -> Message:
    if kind == "input":
        return message("microphone.kind.input")
    return message("microphone.kind.output")


def find_device(devices: list[AudioDevice], wanted: str | int, kind: str) -> AudioDevice:
    """The input (kind="input") or output device named by index or by name.

    A name matches exactly (case-insensitive) first, then as a substring; a substring that
    names several devices is refused rather than guessed.
    """
    usable = [d for d in devices if (d.inputs if kind == "input" else d.outputs) > 0]
    role = _role(kind)
    kind_msg = _kind(kind)
    found_hint = message(
        "microphone.hint.choose_device", kind=kind_msg, devices=_describe(usable), role=role
    )
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.strip().isdigit()):
        index = int(wanted)
        for d in usable:
            if d.index == index:
                return d
        raise DeviceNotFound(
            message("microphone.no_index", role=role, index=index, kind=kind_msg), found_hint
        )
    key = wanted.strip().lower()
    exact = [d for d in usable if d.name.lower() == key]
    if exact:
        return exact[0]
    partial = [d for d in usable if key in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        raise DeviceNotFound(
            message(
                "microphone.ambiguous",
                role=role,
                wanted=wanted,
                kind=kind_msg,
                devices=_describe(partial),
            ),
            message("microphone.hint.longer_name"),
        )
    raise DeviceNotFound(message("microphone.not_found", role=role, wanted=wanted), found_hint)


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
                message(
                    "microphone.no_data",
                    device=device.name,
                    seconds=timeout,
                    got=filled,
                    total=total,
                ),
                message("microphone.hint.replug_no_data"),
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


def _open_error(device: AudioDevice, exc: Exception, kind: str) -> ProbeError:
    return ProbeError(
        message("microphone.cannot_open", role=_role(kind), device=device.name, error=str(exc)),
        message("microphone.hint.cannot_open"),
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
        raise _open_error(device, exc, kind) from None


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
            problem=message("microphone.loop_no_output"),
            hint=message("microphone.hint.set_output"),
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
            problem=message("microphone.loop_problem", problem=exc.msg or exc.message),
            hint=exc.hint_msg or message("microphone.hints", hints=exc.hint),
        )
    return loop_result(ambient, samples, rate, cfg.loop_tone_hz)


def check_microphone(settings: Settings) -> Outcome:
    cfg = settings.microphone
    sd = import_sounddevice()
    if not _portaudio_lock.acquire(timeout=_LOCK_WAIT_S):
        raise DeviceTimeout(message("microphone.stuck"), message("microphone.hint.stuck"))
    try:

        def record(device: AudioDevice) -> tuple[int, npt.NDArray[np.float32]]:
            rate = cfg.samplerate or int(device.default_rate)
            return rate, _record(sd, device, rate, cfg.sample_s)

        mic, (rate, samples) = _on_device(sd, cfg.device, "input", record)
        metrics = measure(samples, rate, cfg.mains_hz)
        loop = _loop_test(sd, cfg, rate, samples) if cfg.loop_test else None
        outcome = judge_microphone(metrics, cfg, loop)
        extra: dict[str, MetricValue] = {"device": mic.name, "device_index": mic.index}
        return replace(outcome, metrics={**outcome.metrics, **extra})
    finally:
        _portaudio_lock.release()
