"""Pure geometry of attendance counting: non-maximum suppression, tiles, regions of interest,
and CenterFace's output decoding."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from agent.attendance.detector import decode_centerface, touches_inner_edge
from agent.attendance.geometry import (
    RegionFilter,
    Tile,
    as_boxes,
    nms,
    overlap_matrix,
    point_in_polygon,
    rect_inside_polygon,
    rect_meets_polygon,
    tile_grid,
)
from agent.attendance.settings import AttendanceSettings, Region

# --- non-maximum suppression ----------------------------------------------------------------


def test_nms_keeps_the_best_of_overlapping_boxes_and_all_separate_ones():
    boxes = as_boxes(
        [
            [0, 0, 10, 10, 0.6],
            [1, 1, 11, 11, 0.9],  # same face, better score
            [50, 50, 60, 60, 0.5],  # another face
        ]
    )
    kept = nms(boxes, 0.3)
    assert kept.tolist() == [[1, 1, 11, 11, pytest.approx(0.9)], [50, 50, 60, 60, 0.5]]


def test_nms_of_nothing_is_nothing():
    assert nms(as_boxes([]), 0.3).shape == (0, 5)


def test_touching_faces_side_by_side_both_stay():
    boxes = as_boxes([[0, 0, 10, 10, 0.9], [10, 0, 20, 10, 0.8]])
    assert len(nms(boxes, 0.3, ios=0.7)) == 2


def test_a_face_cut_by_a_tile_border_merges_only_with_the_ios_rule():
    whole = [100, 100, 140, 150, 0.8]
    cut = [100, 100, 110, 150, 0.85]  # left part of the same face, from another tile
    boxes = as_boxes([whole, cut])
    assert overlap_matrix(boxes[:1], boxes[1:], "iou")[0, 0] < 0.3
    assert len(nms(boxes, 0.3)) == 2  # IoU alone counts one face twice
    assert len(nms(boxes, 0.3, ios=0.7)) == 1


def test_overlap_measures():
    a = as_boxes([[0, 0, 10, 10, 1]])
    b = as_boxes([[5, 0, 15, 10, 1], [2, 2, 4, 4, 1], [20, 20, 30, 30, 1]])
    iou = overlap_matrix(a, b, "iou")[0]
    ios = overlap_matrix(a, b, "ios")[0]
    assert iou.tolist() == pytest.approx([50 / 150, 4 / 100, 0.0])
    assert ios.tolist() == pytest.approx([0.5, 1.0, 0.0])


_box = st.tuples(
    st.floats(0, 200), st.floats(0, 200), st.floats(2, 60), st.floats(2, 60), st.floats(0.01, 1)
).map(lambda t: [t[0], t[1], t[0] + t[2], t[1] + t[3], t[4]])


@given(st.lists(_box, max_size=30), st.floats(0.1, 0.9))
@settings(max_examples=150, deadline=None)
def test_nms_properties(rows, threshold):
    boxes = as_boxes(rows)
    kept = nms(boxes, threshold)
    # No two kept boxes overlap beyond the threshold.
    if len(kept) > 1:
        pairwise = overlap_matrix(kept, kept, "iou")
        np.fill_diagonal(pairwise, 0)
        assert pairwise.max() <= threshold + 1e-6
    # Every dropped box overlaps a kept box with at least its score.
    for row in boxes:
        if any(np.array_equal(row, k) for k in kept):
            continue
        over = overlap_matrix(row[None], kept, "iou")[0]
        assert any(o > threshold and k[4] >= row[4] for o, k in zip(over, kept, strict=True))


# --- tiles ----------------------------------------------------------------------------------


def test_tiles_cover_a_1080p_frame_with_equal_tiles_and_the_overlap_asked():
    tiles = tile_grid(1920, 1080, 960, 96)
    # 3 x 2 tiles just large enough, rather than 960-px tiles overlapping by 840 px.
    assert {(t.width, t.height) for t in tiles} == {(704, 588)}
    xs = sorted({t.x for t in tiles})
    ys = sorted({t.y for t in tiles})
    assert xs == [0, 608, 1216] and ys == [0, 492]
    assert all(a + 704 - b >= 96 for a, b in itertools.pairwise(xs))
    assert ys[0] + 588 - ys[1] >= 96


def test_boxes_cut_by_a_shared_tile_edge_are_recognised():
    # The middle tile of a 1000 x 300 frame: its left and right edges are shared.
    tile = Tile(300, 0, 400, 300)
    boxes = as_boxes(
        [
            [0, 100, 20, 140, 0.9],  # cut by the left edge (a neighbour sees it whole)
            [380, 100, 400, 140, 0.9],  # cut by the right edge
            [100, 0, 140, 40, 0.9],  # at the top, but that is the frame's own edge
            [100, 100, 140, 140, 0.9],  # inside
        ]
    )
    assert touches_inner_edge(boxes, tile, 1000, 300).tolist() == [True, True, False, False]
    first = Tile(0, 0, 400, 300)
    assert touches_inner_edge(boxes, first, 1000, 300).tolist() == [False, True, False, False]


def test_a_frame_smaller_than_a_tile_is_one_tile():
    assert tile_grid(640, 480, 960, 96) == [Tile(0, 0, 640, 480)]


@pytest.mark.parametrize(("width", "height", "tile", "overlap"), [(0, 10, 5, 1), (10, 10, 5, 5)])
def test_impossible_tilings_are_refused(width, height, tile, overlap):
    with pytest.raises(ValueError):
        tile_grid(width, height, tile, overlap)


@given(
    st.integers(50, 4000),
    st.integers(50, 3000),
    st.integers(64, 1200),
    st.data(),
)
@settings(max_examples=200, deadline=None)
def test_every_face_up_to_the_overlap_lies_whole_in_some_tile(width, height, tile, data):
    overlap = data.draw(st.integers(0, tile - 1))
    tiles = tile_grid(width, height, tile, overlap)
    assert all(t.x >= 0 and t.x + t.width <= width for t in tiles)
    assert all(t.y >= 0 and t.y + t.height <= height for t in tiles)
    assert all(t.width <= tile and t.height <= tile for t in tiles)
    assert len({(t.width, t.height) for t in tiles}) == 1  # one network size for all
    size = min(overlap, width, height)
    fx = data.draw(st.integers(0, width - size))
    fy = data.draw(st.integers(0, height - size))
    assert any(
        t.x <= fx and fx + size <= t.x + t.width and t.y <= fy and fy + size <= t.y + t.height
        for t in tiles
    )


# --- regions of interest --------------------------------------------------------------------

TV = ((0.6, 0.0), (1.0, 0.0), (1.0, 0.4), (0.6, 0.4))
# An L shape: the room's floor plus a strip up the left wall (concave).
ELL = ((0.0, 0.0), (0.2, 0.0), (0.2, 0.6), (1.0, 0.6), (1.0, 1.0), (0.0, 1.0))


def test_point_in_polygon_handles_concave_shapes():
    assert point_in_polygon(0.1, 0.1, ELL)
    assert point_in_polygon(0.5, 0.8, ELL)
    assert not point_in_polygon(0.5, 0.3, ELL)
    assert not point_in_polygon(1.5, 0.8, ELL)


def test_excluded_faces_are_split_off_by_their_centre():
    regions = RegionFilter(exclude=(TV,))
    boxes = as_boxes(
        [
            [700, 50, 740, 100, 0.9],  # on the TV (1000 x 500 frame)
            [100, 300, 140, 350, 0.9],  # in the room
            [580, 150, 640, 200, 0.9],  # straddles the TV edge, centre (610, 175) on it
        ]
    )
    counted, excluded = regions.split(boxes, 1000, 500)
    assert counted[:, 0].tolist() == [100]
    assert sorted(excluded[:, 0].tolist()) == [580, 700]


def test_include_regions_limit_counting_and_exclusions_win():
    regions = RegionFilter(include=(ELL,), exclude=(((0.0, 0.8), (0.1, 0.8), (0.1, 1.0)),))
    assert regions.counts(0.5, 0.9)
    assert not regions.counts(0.5, 0.3)  # outside the L
    assert not regions.counts(0.08, 0.85)  # inside the L, but excluded


def test_no_regions_counts_everything():
    boxes = as_boxes([[0, 0, 5, 5, 0.5]])
    counted, excluded = RegionFilter().split(boxes, 10, 10)
    assert len(counted) == 1 and len(excluded) == 0


def test_tiles_wholly_excluded_or_outside_are_skipped():
    regions = RegionFilter(include=(ELL,), exclude=(TV,))
    w, h = 1000, 1000
    assert not regions.tile_needed(Tile(650, 20, 300, 300), w, h)  # inside the TV
    assert not regions.tile_needed(Tile(300, 100, 300, 300), w, h)  # in the L's notch
    assert regions.tile_needed(Tile(300, 500, 300, 300), w, h)  # crosses into the floor
    # A tile whose corners are all inside the concave L's hull but that reaches the floor
    assert regions.tile_needed(Tile(100, 100, 800, 800), w, h)


def test_rect_polygon_relations():
    square = ((0.2, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8))
    assert rect_inside_polygon((0.3, 0.3, 0.5, 0.5), square)
    assert not rect_inside_polygon((0.1, 0.3, 0.5, 0.5), square)
    assert rect_meets_polygon((0.0, 0.0, 0.25, 0.25), square)
    assert rect_meets_polygon((0.0, 0.0, 1.0, 1.0), square)  # polygon inside the rect
    assert not rect_meets_polygon((0.85, 0.0, 1.0, 1.0), square)
    # A notch: all four corners of the rect are in the U, but the notch bites into it.
    u_shape = ((0, 0), (0.4, 0), (0.4, 0.5), (0.6, 0.5), (0.6, 0), (1, 0), (1, 1), (0, 1))
    assert not rect_inside_polygon((0.1, 0.1, 0.9, 0.9), u_shape)


def test_region_settings_validate():
    rect = Region(rect=(0.6, 0.0, 1.0, 0.4))
    assert rect.corners() == [(0.6, 0.0), (1.0, 0.0), (1.0, 0.4), (0.6, 0.4)]
    for bad in (
        {"rect": (0.6, 0.0, 1.2, 0.4)},
        {"rect": (0.6, 0.5, 0.7, 0.4)},
        {"polygon": [(0, 0), (1, 1)]},
        {"rect": (0, 0, 1, 1), "polygon": [(0, 0), (1, 0), (1, 1)]},
        {},
        {"circle": 1},
    ):
        with pytest.raises(ValidationError):
            Region.model_validate(bad)
    cfg = AttendanceSettings.model_validate({"exclude": [{"rect": [0.6, 0, 1, 0.4]}]})
    assert cfg.exclude == [rect]
    with pytest.raises(ValidationError, match="extra"):
        AttendanceSettings.model_validate({"treshold": 0.3})


# --- CenterFace decoding --------------------------------------------------------------------


def test_centerface_outputs_decode_to_boxes_at_input_scale():
    heat = np.zeros((1, 1, 8, 10), np.float32)
    scale = np.zeros((1, 2, 8, 10), np.float32)
    offset = np.zeros((1, 2, 8, 10), np.float32)
    heat[0, 0, 3, 5] = 0.9
    scale[0, :, 3, 5] = (np.log(10.0), np.log(8.0))  # box 40 high, 32 wide (stride 4)
    offset[0, :, 3, 5] = (0.25, -0.5)
    heat[0, 0, 6, 1] = 0.2  # below the threshold
    [box] = decode_centerface(heat, scale, offset, 0.35).tolist()
    cx, cy = (5 - 0.5 + 0.5) * 4, (3 + 0.25 + 0.5) * 4
    assert box == pytest.approx([cx - 16, cy - 20, cx + 16, cy + 20, 0.9])
    assert decode_centerface(heat, scale, offset, 0.95).shape == (0, 5)
