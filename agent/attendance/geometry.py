"""Boxes, tiles and regions. Pure functions over plain values and numpy arrays.

A detection is a row [x1, y1, x2, y2, score] in frame pixels; a set of them is an (N, 5)
float32 array.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Boxes = npt.NDArray[np.float32]
Point = tuple[float, float]
Overlap = Literal["iou", "ios"]


def empty_boxes() -> Boxes:
    return np.zeros((0, 5), dtype=np.float32)


def as_boxes(rows: Sequence[Sequence[float]]) -> Boxes:
    if not rows:
        return empty_boxes()
    arr = np.asarray(rows, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 5:
        raise ValueError(f"boxes must be rows of [x1, y1, x2, y2, score], got {arr.shape}")
    return arr


def overlap_matrix(a: Boxes, b: Boxes, kind: Overlap = "iou") -> npt.NDArray[np.float64]:
    """Pairwise overlap of a's boxes with b's: intersection over union ("iou") or over the
    smaller box ("ios": 1.0 when one box lies inside the other)."""
    ax1, ay1, ax2, ay2 = (a[:, i, None].astype(np.float64) for i in range(4))
    bx1, by1, bx2, by2 = (b[None, :, i].astype(np.float64) for i in range(4))
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    inter = iw * ih
    area_a = np.clip(ax2 - ax1, 0, None) * np.clip(ay2 - ay1, 0, None)
    area_b = np.clip(bx2 - bx1, 0, None) * np.clip(by2 - by1, 0, None)
    denom = area_a + area_b - inter if kind == "iou" else np.minimum(area_a, area_b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(denom > 0, inter / denom, 0.0)
    return np.asarray(out, dtype=np.float64)


def nms(
    boxes: Boxes,
    iou: float = 0.3,
    *,
    ios: float | None = None,
) -> Boxes:
    """Greedy non-maximum suppression, highest score first.

    A box is dropped when it overlaps a kept one by more than `iou` (intersection over
    union) or, if given, by more than `ios` (intersection over the smaller box). The second
    rule merges a face cut by a tile border (a partial box inside the whole one), which IoU
    alone keeps as a second face.
    """
    if len(boxes) == 0:
        return empty_boxes()
    order = np.argsort(-boxes[:, 4], kind="stable")
    ordered = boxes[order]
    by_iou = overlap_matrix(ordered, ordered, "iou") > iou
    if ios is not None:
        by_iou |= overlap_matrix(ordered, ordered, "ios") > ios
    keep: list[int] = []
    suppressed = np.zeros(len(ordered), dtype=bool)
    for i in range(len(ordered)):
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= by_iou[i]
    return ordered[keep].astype(np.float32, copy=False)


@dataclass(frozen=True)
class Tile:
    """A window of the frame, in frame pixels (x, y: top-left corner)."""

    x: int
    y: int
    width: int
    height: int


def _span(length: int, tile: int, overlap: int) -> tuple[int, list[int]]:
    """Tile length and start offsets along one axis: as few tiles as fit, all the same
    length, sharing at least `overlap`."""
    if length <= tile:
        return length, [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    # Equal tiles just long enough: less area than full-size tiles with a wide overlap.
    size = min(tile, math.ceil((length + (count - 1) * overlap) / count))
    return size, [round(i * (length - size) / (count - 1)) for i in range(count)]


def tile_grid(width: int, height: int, tile: int, overlap: int) -> list[Tile]:
    """Overlapping tiles of at most tile x tile pixels, all the same size, covering a
    width x height frame.

    Adjacent tiles share at least `overlap` pixels, so any face no larger than that lies
    whole inside some tile.
    """
    if width <= 0 or height <= 0:
        raise ValueError(f"frame {width}x{height} is empty")
    if tile <= 0 or not 0 <= overlap < tile:
        raise ValueError(f"need 0 <= overlap ({overlap}) < tile ({tile})")
    tw, xs = _span(width, tile, overlap)
    th, ys = _span(height, tile, overlap)
    return [Tile(x, y, tw, th) for y in ys for x in xs]


def point_in_polygon(x: float, y: float, polygon: Sequence[Point]) -> bool:
    """Even-odd rule (ray casting to the right)."""
    inside = False
    n = len(polygon)
    for i in range(n):
        x1, y1 = polygon[i]
        x2, y2 = polygon[(i + 1) % n]
        if (y1 > y) != (y2 > y):
            cross_x = x1 + (y - y1) * (x2 - x1) / (y2 - y1)
            if x < cross_x:
                inside = not inside
    return inside


@dataclass(frozen=True)
class RegionFilter:
    """Which faces count, by where their centre is: normalised polygons to include (none:
    everywhere) and to exclude."""

    include: tuple[tuple[Point, ...], ...] = ()
    exclude: tuple[tuple[Point, ...], ...] = ()

    def counts(self, x: float, y: float) -> bool:
        """Whether a face centred at normalised (x, y) counts."""
        if self.include and not any(point_in_polygon(x, y, p) for p in self.include):
            return False
        return not any(point_in_polygon(x, y, p) for p in self.exclude)

    def split(self, boxes: Boxes, width: int, height: int) -> tuple[Boxes, Boxes]:
        """(counted, excluded) boxes of a width x height frame."""
        if len(boxes) == 0 or (not self.include and not self.exclude):
            return boxes, empty_boxes()
        cx = (boxes[:, 0] + boxes[:, 2]) / 2 / width
        cy = (boxes[:, 1] + boxes[:, 3]) / 2 / height
        mask = np.array([self.counts(float(x), float(y)) for x, y in zip(cx, cy, strict=True)])
        return boxes[mask], boxes[~mask]

    def tile_needed(self, tile: Tile, width: int, height: int) -> bool:
        """False when no face centred anywhere in the tile could count (the tile lies
        outside every include region, or inside one exclude region): it is not analysed."""
        x1, y1 = tile.x / width, tile.y / height
        x2, y2 = (tile.x + tile.width) / width, (tile.y + tile.height) / height
        rect = (x1, y1, x2, y2)
        if self.include and not any(rect_meets_polygon(rect, p) for p in self.include):
            return False
        return not any(rect_inside_polygon(rect, p) for p in self.exclude)


Rect = tuple[float, float, float, float]


def _segments_cross(a: Point, b: Point, c: Point, d: Point) -> bool:
    def side(p: Point, q: Point, r: Point) -> float:
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    d1, d2 = side(c, d, a), side(c, d, b)
    d3, d4 = side(a, b, c), side(a, b, d)
    # Proper crossings only: segments that merely touch do not share any area.
    return d1 * d2 < 0 and d3 * d4 < 0


def _rect_corners(rect: Rect) -> list[Point]:
    x1, y1, x2, y2 = rect
    return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]


def _edges_cross(rect: Rect, polygon: Sequence[Point]) -> bool:
    corners = _rect_corners(rect)
    rect_edges = [(corners[i], corners[(i + 1) % 4]) for i in range(4)]
    n = len(polygon)
    return any(
        _segments_cross(a, b, polygon[i], polygon[(i + 1) % n])
        for a, b in rect_edges
        for i in range(n)
    )


def rect_meets_polygon(rect: Rect, polygon: Sequence[Point]) -> bool:
    """Whether a rectangle and a polygon share any area (touching edges aside)."""
    x1, y1, x2, y2 = rect
    if any(point_in_polygon(x, y, polygon) for x, y in _rect_corners(rect)):
        return True
    if any(x1 < x < x2 and y1 < y < y2 for x, y in polygon):
        return True
    return _edges_cross(rect, polygon)


def rect_inside_polygon(rect: Rect, polygon: Sequence[Point]) -> bool:
    """Whether a rectangle lies wholly inside a polygon."""
    if not all(point_in_polygon(x, y, polygon) for x, y in _rect_corners(rect)):
        return False
    x1, y1, x2, y2 = rect
    # A concave polygon can have all four corners inside and still bite into the rectangle.
    if any(x1 < x < x2 and y1 < y < y2 for x, y in polygon):
        return False
    return not _edges_cross(rect, polygon)
