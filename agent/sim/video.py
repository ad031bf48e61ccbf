"""Simulated video: generated clips and a live MJPEG-over-HTTP test camera.

No virtual /dev/video exists on these machines (no v4l2loopback), so the camera probe is
exercised the way an IP camera is used: `cv2.VideoCapture` on a file or on an HTTP URL
serving `multipart/x-mixed-replace` JPEG frames. The server can go black, freeze, stall
(connection open, no more frames) or vanish on cue, and runs for days in the simulated
site and the demo, so every connection thread is bounded in time and cleaned up.
"""

from __future__ import annotations

import contextlib
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import numpy.typing as npt

from agent.sim.service import Service

log = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]
Kind = Literal["normal", "black", "frozen", "blurred", "overexposed"]
Mode = Literal["normal", "black", "frozen", "blurred", "overexposed", "stall", "gone"]
KINDS: tuple[Kind, ...] = ("normal", "black", "frozen", "blurred", "overexposed")
MODES: tuple[Mode, ...] = (*KINDS, "stall", "gone")

_NOISE_BANK = 7  # prime, so the noise never lines up with the motion cycle
_BOUNDARY = "frame"


class Scene:
    """A deterministic picture of a meeting room: a textured wall, a person walking across,
    and sensor noise, so consecutive frames differ the way a real camera's do."""

    def __init__(self, width: int = 640, height: int = 480, *, period: int = 60, seed: int = 0):
        if width < 16 or height < 16:
            raise ValueError(f"frame {width}x{height} too small (minimum 16x16)")
        self.width, self.height, self.period = width, height, max(1, period)
        rng = np.random.default_rng(seed)
        # Random grey blocks with hard edges: plenty of high frequencies for the focus test.
        cell = max(4, width // 40)
        blocks = rng.integers(40, 200, size=(height // cell + 1, width // cell + 1, 3))
        wall = np.repeat(np.repeat(blocks, cell, axis=0), cell, axis=1)[:height, :width]
        wall[:: cell * 4, :] = 230
        wall[:, :: cell * 4] = 20
        self._wall = wall.astype(np.int16)
        self._noise = rng.integers(-4, 5, size=(_NOISE_BANK, height, width, 1), dtype=np.int16)

    def render(self, kind: Kind, index: int) -> Frame:
        if kind == "black":
            # A covered lens is not exactly zero: a little dark noise stays.
            dark = 3 + self._noise[index % _NOISE_BANK] // 2
            shape = (self.height, self.width, 3)
            black: Frame = np.broadcast_to(dark, shape).clip(0, 255).astype(np.uint8)
            return black
        if kind == "frozen":
            index = 0
        if kind == "blurred":
            # Noise-free, as from a camera that denoises (most webcams do): sensor noise
            # would otherwise add Laplacian variance and hide the blur at full scale.
            blurred = cv2.GaussianBlur(self._normal(index, noise=False), (0, 0), self.width / 80)
            return np.asarray(blurred, dtype=np.uint8)
        frame = self._normal(index)
        if kind == "overexposed":
            # Too much gain: most of the wall blows out, the person still shows and moves.
            return (frame.astype(np.float32) * 1.5 + 150).clip(0, 255).astype(np.uint8)
        return frame

    def _normal(self, index: int, *, noise: bool = True) -> Frame:
        frame = self._wall.copy()
        # A dark-clothed person crossing the room once per period: enough motion that even
        # the noise-free blurred picture never reads as frozen.
        pw, ph = max(8, self.width // 6), max(8, self.height // 2)
        x = int((index % self.period) / self.period * (self.width - pw))
        y = self.height - ph - self.height // 10
        frame[y : y + ph, x : x + pw] = (40, 30, 30)
        frame[y - pw // 2 : y, x + pw // 4 : x + 3 * pw // 4] = (120, 160, 200)  # a head
        if noise:
            frame += self._noise[index % _NOISE_BANK]
        out = frame.clip(0, 255).astype(np.uint8)
        scale = self.width / 900
        cv2.putText(
            out,
            f"{index:06d}",
            (8, int(36 * scale) + 4),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            max(1, int(2 * scale)),
        )
        return out


def frames(
    kind: Kind = "normal", width: int = 640, height: int = 480, *, seed: int = 0
) -> Iterator[Frame]:
    """An endless stream of BGR frames of one kind, without any file."""
    scene = Scene(width, height, seed=seed)
    index = 0
    while True:
        yield scene.render(kind, index)
        index += 1


def make_clip(  # noqa: PLR0917 - the positional signature other modules were promised
    path: str | Path,
    kind: Kind,
    width: int = 640,
    height: int = 480,
    fps: float = 30,
    seconds: float = 2,
    *,
    seed: int = 0,
) -> Path:
    """Write an MJPG .avi of one kind; return its path."""
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"unknown clip kind {kind!r}; choose from {', '.join(KINDS)}")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (width, height))
    if not writer.isOpened():
        raise OSError(f"cannot write video {path} (MJPG {width}x{height} @ {fps} fps)")
    try:
        scene = Scene(width, height, seed=seed)
        for index in range(max(1, round(fps * seconds))):
            writer.write(scene.render(kind, index))
    finally:
        writer.release()
    return path


def _encode(frame: Frame, quality: int) -> bytes:
    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise OSError("JPEG encoding failed")
    return bytes(buf)


def _read_clip(path: Path, quality: int, limit: int = 600) -> list[bytes]:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    try:
        jpegs: list[bytes] = []
        while len(jpegs) < limit:
            ok, frame = cap.read()
            if not ok:
                break
            jpegs.append(_encode(np.asarray(frame, dtype=np.uint8), quality))
    finally:
        cap.release()
    if not jpegs:
        raise OSError(f"clip {path}: no frame could be read")
    return jpegs


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True
    # Stalled or slow clients must never make stop() wait; handlers end on their own.
    block_on_close = False
    owner: MjpegServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Viewers hang up mid-frame all the time; that is not worth a traceback on stderr.
        log.debug("mjpeg viewer %s dropped", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    # A client that stops reading blocks sendall; give up on it rather than keep a thread.
    timeout = 5.0

    def handle(self) -> None:
        owner = self.server.owner
        if owner.mode == "gone":
            _reset(self.connection)
            return
        with owner.track(self.connection):
            super().handle()

    def do_GET(self) -> None:
        if self.path.split("?")[0] != self.server.owner.path:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        self.send_header("Cache-Control", "no-cache, private")
        self.send_header("Connection", "close")
        self.end_headers()
        with contextlib.suppress(OSError):
            self.server.owner.stream(self.connection, self.wfile)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("mjpeg %s: " + format, self.address_string(), *args)


def _reset(conn: socket.socket) -> None:
    """Close with RST, as a camera that lost power or its network does."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


def _peer_closed(conn: socket.socket) -> bool:
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


class MjpegServer(Service):
    """A live test camera: `http://127.0.0.1:PORT/video.mjpg`, paced at `fps`.

    `set_mode()` switches every viewer at once: a picture kind, "frozen" (repeats the
    frame each viewer last got), "stall" (connection stays open, nothing more is sent) or
    "gone" (connections are reset and new ones refused with a reset).
    One-shot: after stop() make a new server.
    """

    path = "/video.mjpg"

    def __init__(
        self,
        kind: Kind = "normal",
        *,
        clip: str | Path | None = None,
        fps: float = 30.0,
        width: int = 640,
        height: int = 480,
        quality: int = 80,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.fps, self.quality = fps, quality
        self._scene = Scene(width, height, period=max(2, round(fps * 2)))
        self._clip = Path(clip) if clip is not None else None
        self._encoded: dict[tuple[Kind, int], bytes] = {}
        self._clip_frames: list[bytes] | None = None
        self._cache_lock = threading.Lock()
        self._mode: Mode = kind
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._clients: set[socket.socket] = set()
        self._clients_lock = threading.Lock()
        self.frames_sent = 0
        self.connections = 0
        self._httpd = _HttpServer((host, port), _Handler, bind_and_activate=True)
        self._httpd.owner = self
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}{self.path}"

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def clients(self) -> int:
        """Connections being served now (to check that none leak)."""
        with self._clients_lock:
            return len(self._clients)

    def start(self) -> MjpegServer:
        if self._thread is None:
            self._jpeg(self._cycle_kind(self._mode), 0)  # a bad clip fails here, not later
            self._thread = threading.Thread(
                target=self._httpd.serve_forever,
                kwargs={"poll_interval": 0.1},
                name="mjpeg-server",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self, wait_s: float = 2.0) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(wait_s)
            self._thread = None
        self._httpd.server_close()
        with self._clients_lock:
            for conn in self._clients:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + wait_s
        while self.clients and time.monotonic() < deadline:
            time.sleep(0.01)

    def set_mode(self, mode: Mode) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
        # Each viewer's loop sees the new mode within one frame interval. For "gone" it resets
        # its own connection: a shutdown() from here would send a clean FIN instead.
        with self._changed:
            self._mode = mode
            self._changed.notify_all()

    @contextlib.contextmanager
    def track(self, conn: socket.socket) -> Iterator[None]:
        with self._clients_lock:
            self._clients.add(conn)
            self.connections += 1
        try:
            yield
        finally:
            with self._clients_lock:
                self._clients.discard(conn)

    @staticmethod
    def _cycle_kind(mode: Mode) -> Kind:
        # "frozen" repeats whatever was last sent; it needs a sequence only for a first frame.
        if mode in ("frozen", "stall", "gone"):
            return "normal"
        return mode  # type: ignore[return-value]  # the remaining modes are the kinds

    def warm(self, kind: Kind = "normal") -> None:
        """Encode a kind's whole loop now. Frames are otherwise encoded as they are first
        streamed, and on a busy machine that first loop comes out slower than `fps` (CI saw
        11.9 of 30 fps): a check run at once would then report a slow camera that is not."""
        for tick in range(self._scene.period):
            self._jpeg(kind, tick)

    def _jpeg(self, kind: Kind, tick: int) -> bytes:
        """Frame `tick` of a kind's loop. Each frame is rendered and encoded on first use and
        kept (one loop per kind: ~2 MB at 640x480), so a viewer costs a socket write."""
        with self._cache_lock:
            if self._clip is not None and kind == "normal":
                if self._clip_frames is None:
                    self._clip_frames = _read_clip(self._clip, self.quality)
                return self._clip_frames[tick % len(self._clip_frames)]
            key = (kind, 0 if kind == "black" else tick % self._scene.period)
            jpeg = self._encoded.get(key)
            if jpeg is None:
                frame = self._scene.render(kind, key[1])
                jpeg = self._encoded[key] = _encode(frame, self.quality)
            return jpeg

    def stream(self, conn: socket.socket, out: Any) -> None:
        """Send frames to one viewer until it leaves, the mode is "gone" or the server stops."""
        interval = 1.0 / self.fps
        next_at = time.monotonic()
        last: bytes | None = None
        while not self._stop.is_set():
            mode = self._mode
            if mode == "gone":
                _reset(conn)
                return
            if mode == "stall":
                # Nothing is sent, but a viewer that hung up must still free this thread.
                with self._changed:
                    self._changed.wait(0.2)
                if _peer_closed(conn):
                    return
                next_at = time.monotonic()
                continue
            if mode == "frozen" and last is not None:
                jpeg = last
            else:
                tick = int((time.monotonic() - self._t0) * self.fps)
                jpeg = self._jpeg(self._cycle_kind(mode), tick)
            out.write(
                f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                + jpeg
                + b"\r\n"
            )
            out.flush()
            last = jpeg
            self.frames_sent += 1
            next_at += interval
            delay = next_at - time.monotonic()
            if delay < -interval:
                next_at = time.monotonic()  # fell behind (slow client): do not burst
            elif delay > 0:
                self._stop.wait(delay)
