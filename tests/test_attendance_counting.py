"""Attendance counting through the real path: rooms composed from real face photographs,
written as video, read back through cv2.VideoCapture (a file, and the live MJPEG test camera
on 127.0.0.1), counted by the real CenterFace model.

The model comes from `python -m agent.attendance.models install models` (./run does it).
"""

import time
from pathlib import Path

import pytest

from agent.attendance.counter import Counter, shrink
from agent.attendance.detector import CenterFace
from agent.attendance.models import ModelError, model_path
from agent.attendance.report import AttendanceSession, hysteresis_config
from agent.attendance.settings import AttendanceSettings, Region
from agent.config import CameraSettings
from agent.sim.crowd import Room, RoomSpec, make_room_clip
from agent.sim.video import MjpegServer

MODELS = Path(__file__).resolve().parents[1] / "models"
# A commune meeting room: 3 rows, faces 34-56 px, and a TV showing 5 people elsewhere.
ROOM = RoomSpec(960, 540, rows=3, seats=7, present=18, face_front=56, face_back=34, tv_faces=5)
TV = Region(rect=ROOM.tv)


def attendance(**values):
    # One whole-frame pass at the clip's own 960 px: the tiled pass has its own tests.
    defaults = {"burst_frames": 5, "burst_spacing_s": 0.1, "input_width": 960, "tiling": "off"}
    return AttendanceSettings(models_dir=MODELS, **{**defaults, **values})


def camera(source, **values):
    return CameraSettings(source=str(source), width=960, height=540, fps=10, **values)


@pytest.fixture(scope="module")
def room_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("attendance") / "room.avi"
    return make_room_clip(path, ROOM, seconds=2.0, fps=10)


@pytest.fixture(scope="module")
def truth():
    return Room(ROOM).count


def test_the_room_has_the_people_it_was_built_with(truth):
    assert truth == 18


def test_counts_a_generated_video_through_videocapture(room_clip, truth):
    counter = Counter(attendance(exclude=[TV]), camera(room_clip))
    result = counter.count_camera()
    stats = result.stats
    assert (stats.frames, stats.usable) == (5, 5)
    assert stats.count is not None and abs(stats.count - truth) <= 1
    assert stats.spread is not None and stats.spread <= 1
    assert result.detector == "centerface" and not result.tiled
    assert result.frame is None  # no frame outlives a burst unless asked


def test_faces_on_the_tv_do_not_count(room_clip, truth):
    everything = Counter(attendance(), camera(room_clip)).count_camera(keep_frame=True)
    assert everything.stats.count is not None
    assert everything.stats.count >= truth + 3  # the TV's participants are found...
    roi = Counter(attendance(exclude=[TV]), camera(room_clip)).count_camera(keep_frame=True)
    assert roi.stats.count is not None and abs(roi.stats.count - truth) <= 1  # ...not counted
    assert roi.frame_faces is not None and len(roi.frame_faces.excluded) >= 3
    width, height = ROOM.width, ROOM.height
    x1, y1, x2, y2 = ROOM.tv
    for bx1, by1, bx2, by2, _ in roi.frame_faces.excluded:
        cx, cy = (bx1 + bx2) / 2 / width, (by1 + by2) / 2 / height
        assert x1 <= cx <= x2 and y1 <= cy <= y2


def test_include_region_counts_only_the_front_row(room_clip):
    front = Region(rect=(0.0, 0.7, 1.0, 1.0))
    result = Counter(attendance(include=[front]), camera(room_clip)).count_camera(frames=1)
    front_row = sum(1 for f in Room(ROOM).faces if (f[1] + f[3]) / 2 / ROOM.height > 0.7)
    assert front_row >= 4
    assert result.stats.count == front_row


def test_live_camera_counts_then_unknown_when_covered_and_back(room_clip, truth):
    with MjpegServer(clip=room_clip, fps=10, width=960, height=540) as server:
        counter = Counter(attendance(exclude=[TV]), camera(server.url))
        session = AttendanceSession(
            "s-live", counter.detector, expected=20, config=hysteresis_config(counter.settings)
        )
        seen = counter.count_camera()
        assert seen.stats.count is not None and abs(seen.stats.count - truth) <= 1
        first = session.add(seen.stats)
        assert first.count == seen.stats.count and first.rate == pytest.approx(first.count / 20)

        server.set_mode("black")  # lens cap on
        time.sleep(0.2)
        blind = counter.count_camera()
        assert blind.stats.count is None
        assert "darkness" in (blind.stats.unknown_reason or "")
        held = session.add(blind.stats)
        assert held.count == first.count  # one blind burst is held...
        gone = session.add(counter.count_camera().stats)
        assert gone.count is None and gone.rate is None  # ...then unknown, never 0
        assert gone.peak == first.count

        server.set_mode("normal")
        time.sleep(0.2)
        back = session.add(counter.count_camera().stats)
        assert back.count is not None and abs(back.count - truth) <= 1


def test_a_vanished_camera_is_unknown_quickly_not_an_exception(room_clip):
    with MjpegServer(clip=room_clip, fps=10) as server:
        server.set_mode("gone")
        counter = Counter(attendance(), camera(server.url, open_timeout_s=2.0))
        started = time.monotonic()
        result = counter.count_camera()
        assert time.monotonic() - started < 5.0
    assert result.stats.count is None
    assert result.camera_error is not None
    assert result.stats.unknown_reason and "camera" in result.stats.unknown_reason


def test_an_unplugged_camera_is_unknown_with_the_reason():
    counter = Counter(attendance(), camera("/dev/video9"))
    result = counter.count_camera()
    assert result.stats.count is None
    assert result.stats.unknown_reason == "camera /dev/video9: not found"


def test_small_faces_in_a_hall_are_found_by_tiling(tmp_path):
    # Faces 18-26 px high in a 1080p frame: 6-9 px once the frame is scaled to 640 wide.
    hall = RoomSpec(1920, 1080, rows=3, seats=16, face_front=26, face_back=18, seed=4)
    clip = make_room_clip(tmp_path / "hall.avi", hall, seconds=0.1, fps=10)
    truth = Room(hall).count
    settings = {"input_width": 640, "tile_width": 1920}
    whole = Counter(attendance(**settings), camera(clip)).count_camera(frames=1)
    auto = Counter(attendance(tiling="auto", **settings), camera(clip)).count_camera(frames=1)
    assert whole.stats.count is not None and auto.stats.count is not None
    assert whole.stats.count < 0.5 * truth  # far too small for the whole-frame pass
    assert not whole.tiled and auto.tiled
    assert abs(auto.stats.count - truth) <= 0.1 * truth


def test_tiling_auto_stays_off_when_the_faces_are_large_enough(room_clip, truth):
    result = Counter(attendance(tiling="auto", input_width=960), camera(room_clip)).count_camera(
        frames=2
    )
    assert not result.tiled
    assert result.stats.count is not None and abs(result.stats.count - (truth + 5)) <= 1


def test_no_faces_no_count(tmp_path):
    empty = RoomSpec(960, 540, present=0, tv_faces=0, seed=9)
    clip = make_room_clip(tmp_path / "empty.avi", empty, seconds=0.5, fps=10)
    result = Counter(attendance(), camera(clip)).count_camera(frames=3)
    assert result.stats.count == 0  # seen and empty: 0, not unknown


def test_missing_model_is_a_clear_error_with_the_install_command(tmp_path):
    with pytest.raises(ModelError) as err:
        Counter(AttendanceSettings(models_dir=tmp_path / "models"))
    assert err.value.message.startswith("detector model centerface: not installed")
    assert f"-m agent.attendance.models install {tmp_path / 'models'}" in err.value.hint


class CountingCenterFace(CenterFace):
    """The real detector, noting the input size of each analysis."""

    def __init__(self) -> None:
        super().__init__(model_path(MODELS))
        self.images: list[tuple[int, int]] = []

    def _net(self, width, height):
        self.images.append((width, height))
        return super()._net(width, height)


@pytest.mark.parametrize("present", [None, 0])
def test_tiles_look_only_where_the_whole_frame_pass_saw_faces(present):
    # Faces 24-48 px in a 1080p hall, in the band of rows between the wall and the floor.
    hall = RoomSpec(1920, 1080, rows=4, seats=14, face_front=48, face_back=24, present=present,
                    seed=4)  # fmt: skip
    backend = CountingCenterFace()
    counter = Counter(attendance(tiling="always", input_width=640, tile_width=1280), None,
                      backend)  # fmt: skip
    frame = shrink(Room(hall).render(0), counter.analysis_width)
    grid = counter.finder.tiles(*frame.shape[1::-1])
    result = counter.count_frames([frame])
    tiles = len(backend.images) - 1  # the first is the whole frame
    truth = Room(hall).count
    assert result.stats.count is not None and abs(result.stats.count - truth) <= 0.1 * truth
    if truth:
        assert result.tiled and 0 < tiles < len(grid)  # not the wall above, nor the floor
    else:
        assert tiles < len(grid), backend.images
