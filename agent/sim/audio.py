"""A simulated room for the microphone: a private PulseAudio server with a null sink, and a
player that keeps a signal (silence, tone, clipped tone, mains hum, noise) going into it.

What the agent's microphone probe sees: PortAudio (sounddevice) -> ALSA's `pulse` plugin ->
this server's default source, the null sink's monitor, i.e. whatever the player plays. The
PortAudio devices are named "pulse" and "default" (both reach the server), so a simulated
site selects its microphone with `[microphone] device = "pulse"` and, for the loop test,
`output_device = "pulse"`, with this server's `env` in the agent's environment. The loop
test's tone goes into the same sink the player feeds, so it is heard; play "noise" (not
"tone", which is already at the loop test's 1 kHz) while it runs, or it reports the tone
as indistinguishable from the room.

PortAudio scans devices when sounddevice is imported; a process that imported it before the
server was up finds the devices only after a rescan, which the probe does by itself when a
device is missing (agent.probes.microphone). Set `env` before starting the agent anyway.

The player runs `pacat --playback` fed from a thread, not a PortAudio stream: it must not
share the probe's PortAudio state, and PortAudio in one process is one global library.
A null sink renders ahead by its current latency: 2 s when nothing asks for less. A stream
that joins then is heard only once that block has passed, so a recording started right
after a new tone waits up to 2 s for its first sample (PortAudio spins a core meanwhile)
and may still hear the old signal. The server therefore keeps a silent 20 ms-latency
stream playing for its whole life, which holds the sink's render-ahead at 20 ms.

Why one file past 400 lines: the PulseAudio server, the tone player and the signals they
play are one simulated device; the traps above bind them (one stream held open for the
server's whole life).
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import math
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Literal, get_args

import numpy as np
import numpy.typing as npt

from agent.sim.service import Service

log = logging.getLogger(__name__)

Kind = Literal["silence", "tone", "clipped", "hum", "noise"]
KINDS: tuple[str, ...] = get_args(Kind)

# What the agent's settings name to reach this server through PortAudio (ALSA pulse plugin).
MIC_DEVICE = "pulse"
SPEAKER_DEVICE = "pulse"
RATE = 48000
TONE_HZ = 1000.0
TONE_DBFS = -9.0  # RMS, so the 1 kHz sine peaks at about -6 dBFS
CLIP_GAIN_DB = 12.0  # the tone pushed this far over: peaks at 2x full scale, flattened
HUM_DBFS = -20.0
NOISE_DBFS = -30.0
MAINS_HZ = 50.0
_HUM_HARMONICS = (1.0, 0.5, 0.35, 0.2, 0.15)  # 50, 100, ... 250 Hz: a transformer's buzz
_CHUNK_S = 0.02  # what the feeder writes at once: small, so stop and set_kind act fast
_PACAT_LATENCY_MS = 20
_PIPE_BYTES = 8192  # about 40 ms of float32 mono at 48 kHz


class AudioSimError(RuntimeError):
    """The simulated audio could not start (binary missing, daemon died, timed out)."""


def _find(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise AudioSimError(
            f"{binary} not found: apt-get install pulseaudio pulseaudio-utils libasound2-plugins"
        )
    return path


def _stop_process(proc: subprocess.Popen[bytes], name: str, timeout: float = 5.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) ignored SIGTERM; killing it", name, proc.pid)
            proc.kill()
            proc.wait()


def _pacat_cmd(server: PulseServer, client: str, stream: str) -> list[str]:
    return [
        _find("pacat"),
        "--playback",
        "--raw",
        f"--rate={server.rate}",
        "--channels=1",
        f"--device={server.sink}",
        f"--latency-msec={_PACAT_LATENCY_MS}",
        f"--client-name={client}",
        f"--stream-name={stream}",
    ]


def _wait_stream(
    server: PulseServer, client: str, proc: subprocess.Popen[bytes], wait_s: float
) -> None:
    """Until the server lists the client's stream, uncorked (i.e. playing)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AudioSimError(f"pacat ({client}) exited with {proc.returncode}")
        for stream in server.sink_inputs():
            props = stream.get("properties")
            mine = isinstance(props, dict) and props.get("application.name") == client
            if mine and not stream.get("corked"):
                return
        time.sleep(0.01)
    raise AudioSimError(f"the {client} stream did not start within {wait_s} s")


class PulseServer(Service):
    """A PulseAudio daemon in a private runtime directory, with one null sink.

    Use as a context manager, or start()/stop(). `env` holds what a client needs:
    PULSE_SERVER, XDG_RUNTIME_DIR and PULSE_COOKIE (so clients neither read nor write the
    real ~/.config/pulse). The daemon itself also gets HOME there.
    """

    def __init__(
        self, sink: str = "testsink", rate: int = RATE, start_timeout_s: float = 10.0
    ) -> None:
        self.sink = sink
        self.rate = rate
        self.start_timeout_s = start_timeout_s
        self.runtime_dir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._keepalive: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    @property
    def monitor(self) -> str:
        return f"{self.sink}.monitor"

    @property
    def socket_path(self) -> Path:
        if self.runtime_dir is None:
            raise AudioSimError("PulseServer is not started")
        return self.runtime_dir / "pulse" / "native"

    @property
    def env(self) -> dict[str, str]:
        if self.runtime_dir is None:
            raise AudioSimError("PulseServer is not started")
        return {
            "PULSE_SERVER": f"unix:{self.socket_path}",
            "XDG_RUNTIME_DIR": str(self.runtime_dir),
            "PULSE_COOKIE": str(self.runtime_dir / "cookie"),
        }

    @property
    def log_path(self) -> Path:
        if self.runtime_dir is None:
            raise AudioSimError("PulseServer is not started")
        return self.runtime_dir / "pulseaudio.log"

    def start(self) -> PulseServer:
        if self.proc is not None:
            return self
        binary = _find("pulseaudio")
        # mkdtemp makes it 0700: PulseAudio refuses a runtime dir others can enter.
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="edge-agent-pulse-"))
        daemon_env = {
            **os.environ,
            **self.env,
            "HOME": str(self.runtime_dir),
        }
        daemon_env.pop("PULSE_SERVER")  # the daemon must not think it is a client
        daemon_env.pop("DBUS_SESSION_BUS_ADDRESS", None)
        cmd = [
            binary,
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disallow-exit",
            "--use-pid-file=no",
            "--realtime=no",
            "--high-priority=no",
            "--no-cpu-limit",
            "-n",  # no default.pa: nothing but the two modules below
            f"--load=module-native-protocol-unix auth-cookie={self.runtime_dir / 'cookie'}",
            f"--load=module-null-sink sink_name={self.sink} rate={self.rate}",
            "--log-target=stderr",
        ]
        self._log_file = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            env=daemon_env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=self._log_file,
            cwd=self.runtime_dir,
        )
        atexit.register(self.stop)
        try:
            self._wait_ready()
            self._start_keepalive()
        except BaseException:
            self.stop()
            raise
        log.info("pulseaudio pid %d ready at %s", self.proc.pid, self.socket_path)
        return self

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AudioSimError(
                    f"pulseaudio exited with {self.proc.returncode}: {self._log_tail()}"
                )
            if self._socket_answers() and self.sink in self.pactl("list", "short", "sinks"):
                return
            time.sleep(0.01)
        raise AudioSimError(f"pulseaudio not ready in {self.start_timeout_s} s: {self._log_tail()}")

    def _start_keepalive(self) -> None:
        name = "edge-agent-sim-keepalive"
        with Path("/dev/zero").open("rb") as zeros:
            self._keepalive = subprocess.Popen(
                [*_pacat_cmd(self, name, "keepalive"), "--format=s16le"],
                env={**os.environ, **self.env},
                stdin=zeros,  # pacat reads only what the stream consumes: no busy loop
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        _wait_stream(self, name, self._keepalive, self.start_timeout_s)
        # The sink rendered its first 2 s block before any stream asked for less; a
        # suspend/resume restarts its clock at the 20 ms the keep-alive now asks for.
        self.pactl("suspend-sink", self.sink, "1")
        self.pactl("suspend-sink", self.sink, "0")
        deadline = time.monotonic() + self.start_timeout_s
        while self.sink_latency_s() > 0.1:
            if time.monotonic() > deadline:
                raise AudioSimError(f"sink latency still {self.sink_latency_s():.2f} s")
            time.sleep(0.01)

    def sink_latency_s(self) -> float:
        """How far ahead the sink has rendered: how late a new stream will be heard."""
        sinks = json.loads(self.pactl("--format=json", "list", "sinks"))
        for sink in sinks:
            if sink.get("name") == self.sink:
                return float(sink["latency"]["actual"]) / 1e6
        raise AudioSimError(f"sink {self.sink} is gone")

    def _socket_answers(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            try:
                sock.connect(str(self.socket_path))
            except OSError:
                return False
        return True

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-5:])

    def pactl(self, *args: str, timeout: float = 5.0) -> str:
        """Run pactl against this server; its stdout."""
        proc = subprocess.run(
            [_find("pactl"), *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise AudioSimError(f"pactl {' '.join(args)}: {proc.stderr.strip()}")
        return proc.stdout

    def sink_inputs(self) -> list[dict[str, object]]:
        """The streams playing into the server, as pactl's JSON (PulseAudio >= 16)."""
        found: list[dict[str, object]] = json.loads(
            self.pactl("--format=json", "list", "sink-inputs") or "[]"
        )
        return found

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._keepalive is not None:
            _stop_process(self._keepalive, "pacat")
            self._keepalive = None
        if self.proc is not None:
            _stop_process(self.proc, "pulseaudio")
            self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
            self.runtime_dir = None


def make_signal(
    kind: Kind | str, rate: int = RATE, level_dbfs: float | None = None, seed: int = 1
) -> npt.NDArray[np.float32]:
    """One second of the signal, which loops seamlessly (whole cycles of 1 kHz and 50 Hz)."""
    t = np.arange(rate, dtype=np.float64) / rate
    if kind == "silence":
        x = np.zeros(rate)
    elif kind in ("tone", "clipped"):
        level = TONE_DBFS if level_dbfs is None else level_dbfs
        if kind == "clipped":
            level += CLIP_GAIN_DB
        x = np.clip(math.sqrt(2) * 10 ** (level / 20) * np.sin(2 * np.pi * TONE_HZ * t), -1, 1)
    elif kind == "hum":
        x = sum(
            (
                a * np.sin(2 * np.pi * MAINS_HZ * (k + 1) * t + k)
                for k, a in enumerate(_HUM_HARMONICS)
            ),
            start=np.zeros(rate),
        )
        level = HUM_DBFS if level_dbfs is None else level_dbfs
        x *= 10 ** (level / 20) / math.sqrt(np.mean(x * x))
    elif kind == "noise":
        level = NOISE_DBFS if level_dbfs is None else level_dbfs
        x = np.random.default_rng(seed).normal(0.0, 10 ** (level / 20), rate)
        x = np.clip(x, -1, 1)
    else:
        raise ValueError(f"unknown signal kind {kind!r}; choose from {', '.join(KINDS)}")
    return x.astype(np.float32)


class TonePlayer(Service):
    """Plays a signal into the server's sink, looping, until stopped.

    `pacat --playback` reads raw float32 from a pipe; a feeder thread keeps the pipe full,
    and the pipe's back-pressure paces it in real time. `set_kind` switches the signal
    without reconnecting (a fault injected mid-demo).
    """

    def __init__(
        self,
        server: PulseServer,
        kind: Kind | str = "tone",
        level_dbfs: float | None = None,
    ) -> None:
        self.server = server
        self.kind = kind
        self.level_dbfs = level_dbfs
        self._signal = make_signal(kind, server.rate, level_dbfs)
        self._name = f"edge-agent-sim-{id(self):x}"
        self._stop = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def set_kind(self, kind: Kind | str, level_dbfs: float | None = None) -> None:
        self._signal = make_signal(kind, self.server.rate, level_dbfs)
        self.kind, self.level_dbfs = kind, level_dbfs

    def start(self, wait_s: float = 5.0) -> TonePlayer:
        """Start playing; return once the server lists the stream (0: do not wait)."""
        if self._proc is not None:
            return self
        cmd = [*_pacat_cmd(self.server, self._name, self.kind), "--format=float32le"]
        self._stop.clear()
        self._proc = subprocess.Popen(
            cmd,
            env={**os.environ, **self.server.env},
            stdin=subprocess.PIPE,
            bufsize=0,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        assert self._proc.stdin is not None
        # A small pipe (default 64 KiB = 0.34 s of signal) so set_kind is heard at once.
        fcntl.fcntl(self._proc.stdin.fileno(), fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        self._thread = threading.Thread(
            target=self._feed, args=(self._proc,), name=f"tone-{self.kind}", daemon=True
        )
        self._thread.start()
        atexit.register(self.stop)
        if wait_s > 0:
            try:
                _wait_stream(self.server, self._name, self._proc, wait_s)
            except BaseException:
                self.stop()
                raise
        return self

    def _feed(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdin is not None
        chunk = max(1, round(self.server.rate * _CHUNK_S))
        pos = 0
        try:
            while not self._stop.is_set():
                signal = self._signal
                pos %= len(signal)
                block = signal[pos : pos + chunk]
                proc.stdin.write(block.tobytes())
                pos += len(block)
        except (BrokenPipeError, ValueError, OSError):
            pass  # pacat stopped (by stop(), or it died: playing() says so)

    def playing(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        atexit.unregister(self.stop)
        self._stop.set()
        proc, self._proc = self._proc, None
        if proc is not None:
            # SIGTERM, not closing stdin: pacat would first play out what the pipe holds,
            # and the next test would hear the previous signal.
            _stop_process(proc, "pacat")
        if self._thread is not None:
            self._thread.join(5.0)  # its write fails with EPIPE now that pacat is gone
            self._thread = None
        if proc is not None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
