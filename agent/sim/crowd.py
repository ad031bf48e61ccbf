"""Simulated audiences with a known head count: rooms composed from real face photographs.

A face detector trained on photographs does not see procedurally drawn faces, so seated
people are composed from real, freely licensed portraits (agent/sim/faces/README.md gives
the source and licence of each): rows of shoulders and heads behind desks, smaller towards
the back, plus an optional TV showing other sites' participants, which must never count.
Every picture is made here at run time from the small crops; the true count is known by
construction. `Room.render(i)` differs from frame to frame (people sway a pixel or two,
sensor noise) as a live camera's frames do.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

Frame = npt.NDArray[np.uint8]
Rect = tuple[float, float, float, float]

FACES_DIR = Path(__file__).resolve().parent / "faces"
# Face box (x1, y1, x2, y2) inside each crop, from the detector run on the source image.
FACE_BOXES: dict[str, tuple[int, int, int, int]] = {
    "astronaut": (41, 38, 121, 146),
    "grace_hopper": (49, 38, 145, 146),
    "cameraman": (28, 28, 84, 106),
}
# Images with no human face, for false-positive checks (a cat's face among them).
NO_FACE_IMAGES = ("chelsea", "coffee")
_NOISE_BANK = 5


@dataclass(frozen=True)
class FaceSource:
    name: str
    image: Frame
    box: tuple[int, int, int, int]

    @property
    def face_height(self) -> int:
        return self.box[3] - self.box[1]


def _read(path: Path) -> Frame:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"{path}: missing or unreadable (agent/sim/faces)")
    return np.asarray(image, dtype=np.uint8)


@functools.cache
def face_sources() -> tuple[FaceSource, ...]:
    return tuple(
        FaceSource(name, _read(FACES_DIR / f"{name}.jpg"), box) for name, box in FACE_BOXES.items()
    )


def portrait(name: str) -> Frame:
    """One of the face crops as it is (one face)."""
    return _read(FACES_DIR / f"{name}.jpg").copy()


def no_face_image(name: str) -> Frame:
    if name not in NO_FACE_IMAGES:
        raise ValueError(f"unknown image {name!r}; choose from {', '.join(NO_FACE_IMAGES)}")
    return _read(FACES_DIR / f"{name}.jpg").copy()


@dataclass(frozen=True)
class RoomSpec:
    """A meeting room seen from the front. Sizes are face heights in frame pixels."""

    width: int = 1280
    height: int = 720
    rows: int = 3
    seats: int = 8  # per row
    present: int | None = None  # people seated (None: every seat)
    face_front: float = 64.0
    face_back: float = 36.0
    tv_faces: int = 0  # participants of other sites on the TV (never counted)
    tv: Rect = (0.64, 0.04, 0.97, 0.36)  # normalised x1, y1, x2, y2
    rows_span: tuple[float, float] = (0.42, 0.80)  # face centres of back and front rows
    light: float = 1.0  # below 1: a dim room
    blur: float = 0.0  # Gaussian sigma in pixels: soft focus
    noise: float = 2.5  # sensor noise, standard deviation in grey levels
    seed: int = 0

    @property
    def seat_count(self) -> int:
        return self.rows * self.seats

    @property
    def people(self) -> int:
        return self.seat_count if self.present is None else min(self.present, self.seat_count)


@dataclass(frozen=True)
class _Sprite:
    """A pre-scaled picture with its alpha, placed at (x, y) in the frame."""

    rgb: npt.NDArray[np.float32]
    alpha: npt.NDArray[np.float32]
    x: int
    y: int
    phase: float = 0.0  # sway: each person moves on their own rhythm
    amplitude: float = 0.0


def _ellipse_alpha(
    shape: tuple[int, int], centre: tuple[float, float], radii: tuple[float, float]
) -> npt.NDArray[np.float32]:
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    d = ((xx - centre[0]) / max(radii[0], 1.0)) ** 2 + ((yy - centre[1]) / max(radii[1], 1.0)) ** 2
    # Soft edge: fully opaque inside 0.7 of the radius, gone at the ellipse.
    alpha: npt.NDArray[np.float32] = np.clip((1.0 - d) / 0.3, 0.0, 1.0).astype(np.float32)
    return alpha


def _head_sprite(
    src: FaceSource, face_h: float, cx: float, cy: float, rng: np.random.Generator
) -> tuple[_Sprite, tuple[float, float, float, float]]:
    scale = face_h / src.face_height
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    img = cv2.resize(src.image, None, fx=scale, fy=scale, interpolation=interp)
    flip = bool(rng.integers(2))
    if flip:
        img = img[:, ::-1]
    h, w = img.shape[:2]
    x1, y1, x2, y2 = (v * scale for v in src.box)
    if flip:
        x1, x2 = w - x2, w - x1
    fcx, fcy, fw, fh = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    # Lighting and white balance differ from seat to seat.
    gain = rng.uniform(0.75, 1.15)
    tint = rng.uniform(0.9, 1.1, size=3)
    rgb = np.clip(img.astype(np.float32) * gain * tint, 0, 255).astype(np.float32)
    alpha = _ellipse_alpha((h, w), (fcx, fcy - 0.08 * fh), (0.78 * fw, 0.72 * fh))
    x, y = round(cx - fcx), round(cy - fcy)
    sprite = _Sprite(rgb, alpha, x, y, rng.uniform(0, 2 * math.pi), rng.uniform(0.5, 2.0))
    box = (x + x1, y + y1, x + x2, y + y2)
    return sprite, box


def _body_sprite(
    face_w: float, face_h: float, cx: float, top: float, rng: np.random.Generator
) -> _Sprite:
    w, h = round(face_w * 2.6), round(face_h * 1.6)
    colour = rng.uniform(20, 200, size=3).astype(np.float32)
    rgb = np.broadcast_to(colour, (h, w, 3)).copy()
    alpha = _ellipse_alpha((h, w), (w / 2, h * 0.95), (w / 2, h * 0.9))
    return _Sprite(rgb, alpha, round(cx - w / 2), round(top), 0.0, 0.0)


def _paste(canvas: npt.NDArray[np.float32], sprite: _Sprite, dx: int = 0, dy: int = 0) -> None:
    H, W = canvas.shape[:2]
    h, w = sprite.alpha.shape
    x0, y0 = sprite.x + dx, sprite.y + dy
    ax0, ay0, ax1, ay1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if ax0 >= ax1 or ay0 >= ay1:
        return
    a = sprite.alpha[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0, None]
    src = sprite.rgb[ay0 - y0 : ay1 - y0, ax0 - x0 : ax1 - x0]
    region = canvas[ay0:ay1, ax0:ax1]
    region *= 1.0 - a
    region += src * a


def _wall(spec: RoomSpec, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    h, w = spec.height, spec.width
    base = rng.uniform(110, 200, size=3).astype(np.float32)
    shade = np.linspace(1.1, 0.75, h, dtype=np.float32)[:, None, None]
    cell = max(8, w // 64)
    coarse = rng.normal(0, 6, size=(h // cell + 1, w // cell + 1)).astype(np.float32)
    blotches = np.asarray(cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC))
    floor = int(h * 0.55)
    wall: npt.NDArray[np.float32] = (
        np.broadcast_to(base, (h, w, 3)) * shade + blotches[:, :, None]
    ).astype(np.float32)
    wall[floor:] *= 0.7
    return np.ascontiguousarray(wall, dtype=np.float32)


def _tv(canvas: npt.NDArray[np.float32], spec: RoomSpec, rng: np.random.Generator) -> list[_Sprite]:
    """A TV on the wall showing a grid of other sites' participants."""
    h, w = spec.height, spec.width
    x1, y1, x2, y2 = (round(v * s) for v, s in zip(spec.tv, (w, h, w, h), strict=True))
    canvas[y1:y2, x1:x2] = (25, 25, 25)
    bezel = max(2, (x2 - x1) // 60)
    sx1, sy1, sx2, sy2 = x1 + bezel, y1 + bezel, x2 - bezel, y2 - bezel
    canvas[sy1:sy2, sx1:sx2] = rng.uniform(60, 140, size=3)
    sprites: list[_Sprite] = []
    n = spec.tv_faces
    if n <= 0:
        return sprites
    cols = math.ceil(math.sqrt(n * (sx2 - sx1) / max(1, sy2 - sy1)))
    rows = math.ceil(n / cols)
    cw, ch = (sx2 - sx1) / cols, (sy2 - sy1) / rows
    sources = face_sources()
    for i in range(n):
        r, c = divmod(i, cols)
        face_h = min(ch * 0.55, cw * 0.5)
        sprite, _ = _head_sprite(
            sources[int(rng.integers(len(sources)))],
            face_h,
            sx1 + (c + 0.5) * cw,
            sy1 + (r + 0.45) * ch,
            rng,
        )
        sprites.append(replace(sprite, amplitude=0.0))
    return sprites


@dataclass
class Room:
    """A composed room: `render(i)` gives frame i; `faces` are the true face boxes."""

    spec: RoomSpec
    faces: list[tuple[float, float, float, float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        spec = self.spec
        rng = np.random.default_rng(spec.seed)
        self._back = _wall(spec, rng)
        tv_sprites = _tv(self._back, spec, rng) if spec.tv_faces >= 0 else []
        for sprite in tv_sprites:
            _paste(self._back, sprite)
        occupied = set(rng.choice(spec.seat_count, size=spec.people, replace=False).tolist())
        sources = face_sources()
        self._layers: list[list[_Sprite]] = []  # per row, back to front: bodies, heads, desk
        self._desks: list[tuple[int, int, tuple[float, float, float]]] = []
        top_y, bottom_y = (v * spec.height for v in spec.rows_span)
        for r in range(spec.rows):
            t = r / max(1, spec.rows - 1)
            face_h = spec.face_back + (spec.face_front - spec.face_back) * t
            face_w = face_h * 0.78
            cy = top_y + (bottom_y - top_y) * t
            pitch = spec.width / (spec.seats + 0.5)
            if pitch < face_w * 1.9:
                raise ValueError(
                    f"row {r}: {spec.seats} seats of {face_h:.0f}-px faces do not fit in "
                    f"{spec.width} px; use fewer seats or smaller faces"
                )
            layer: list[_Sprite] = []
            for s in range(spec.seats):
                if r * spec.seats + s not in occupied:
                    continue
                cx = pitch * (s + 0.75) + rng.uniform(-0.15, 0.15) * pitch
                fy = cy + rng.uniform(-0.12, 0.12) * face_h
                fh = face_h * rng.uniform(0.92, 1.08)
                src = sources[int(rng.integers(len(sources)))]
                head, box = _head_sprite(src, fh, cx, fy, rng)
                body = _body_sprite(fh * 0.78, fh, cx, fy + 0.35 * fh, rng)
                body = replace(body, phase=head.phase, amplitude=head.amplitude)
                layer += [body, head]
                self.faces.append(box)
            self._layers.append(layer)
            desk_top = round(cy + 1.25 * face_h)
            blue, green, red = (float(v) for v in rng.uniform(50, 120, size=3) * (0.8, 0.7, 0.6))
            self._desks.append((desk_top, round(desk_top + 0.9 * face_h), (blue, green, red)))
        noise_rng = np.random.default_rng(spec.seed + 1)
        shape = (_NOISE_BANK, spec.height, spec.width, 1)
        self._noise = noise_rng.normal(0, spec.noise, size=shape).astype(np.float32)

    @property
    def count(self) -> int:
        return len(self.faces)

    def render(self, index: int = 0) -> Frame:
        canvas = self._back.copy()
        for layer, (d1, d2, colour) in zip(self._layers, self._desks, strict=True):
            for sprite in layer:
                sway = sprite.amplitude * math.sin(sprite.phase + index * 0.7)
                _paste(canvas, sprite, round(sway), round(sway * 0.3))
            canvas[d1:d2] = colour
        if self.spec.blur > 0:
            canvas = np.asarray(cv2.GaussianBlur(canvas, (0, 0), self.spec.blur), np.float32)
        if self.spec.light != 1.0:
            canvas *= self.spec.light
        canvas += self._noise[index % _NOISE_BANK]
        return np.clip(canvas, 0, 255).astype(np.uint8)


def make_room_clip(
    path: str | Path, spec: RoomSpec, *, seconds: float = 2.0, fps: float = 10.0
) -> Path:
    """An MJPG .avi of a room (for cv2.VideoCapture or MjpegServer(clip=...))."""
    path = Path(path)
    room = Room(spec)
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (spec.width, spec.height)
    )
    if not writer.isOpened():
        raise OSError(f"cannot write video {path}")
    try:
        for index in range(max(1, round(seconds * fps))):
            writer.write(room.render(index))
    finally:
        writer.release()
    return path
