"""Camera picture metrics and verdict: pure, on synthetic numpy frames."""

import time

import cv2
import numpy as np
import pytest

from agent.checks.camera_metrics import (
    CameraMetrics,
    FrameAccumulator,
    achieved_fps,
    analyse_frames,
    frozen_statistic,
    judge_camera,
    laplacian_variance,
    reduce_frame,
    sample_complete,
)
from agent.checks.model import Status
from agent.config import CameraSettings

CFG = CameraSettings(width=640, height=480, fps=30.0)
RNG_SEED = 7


def textured(seed=RNG_SEED, width=640, height=480, cell=8):
    """Random grey-ish blocks with hard edges: sharp, mid-grey."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(40, 200, size=(height // cell, width // cell, 3), dtype=np.uint8)
    return np.repeat(np.repeat(blocks, cell, axis=0), cell, axis=1)


def noisy(frame, seed, amplitude=4):
    rng = np.random.default_rng(seed)
    noise = rng.integers(-amplitude, amplitude + 1, size=(*frame.shape[:2], 1))
    return (frame.astype(np.int16) + noise).clip(0, 255).astype(np.uint8)


def stamps(n, fps=30.0):
    return [i / fps for i in range(n)]


def live(n=10, **kw):
    """n frames of a still, textured room as a camera with sensor noise delivers them."""
    base = textured(**kw)
    return [noisy(base, seed=i) for i in range(n)]


def judge(frames, times=None, cfg=CFG):
    return judge_camera(analyse_frames(frames, times or stamps(len(frames))), cfg)


# --- metrics ---------------------------------------------------------------------------


def test_luma_matches_opencv_bt601():
    frame = textured()
    stats, sample = reduce_frame(frame)
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY).astype(np.float32)
    np.testing.assert_allclose(sample, grey, atol=0.6)
    assert stats.mean_luma == pytest.approx(float(grey.mean()), abs=0.5)


def test_laplacian_variance_matches_opencv_kernel():
    y = textured()[:, :, 1].astype(np.float32)
    expected = cv2.Laplacian(y, cv2.CV_32F, ksize=1)[1:-1, 1:-1].var()
    assert laplacian_variance(y) == pytest.approx(float(expected), rel=1e-4)


def test_downscaled_1080p_reads_like_the_picture_it_was_scaled_from():
    """A 1080p frame made of 4x4 copies of each pixel of a 480x270 frame is block-averaged
    back exactly: same luma, same sharpness, so thresholds hold at every resolution."""
    small = textured(width=480, height=272)[:270]
    big = np.repeat(np.repeat(small, 4, axis=0), 4, axis=1)
    assert big.shape == (1080, 1920, 3)
    s_small, _ = reduce_frame(small)
    s_big, _ = reduce_frame(big)
    assert (s_big.width, s_big.height) == (1920, 1080)
    assert s_big.mean_luma == pytest.approx(s_small.mean_luma, abs=0.01)
    assert s_big.sharpness == pytest.approx(s_small.sharpness, rel=1e-3)


def test_1080p_frame_is_cheap_to_analyse():
    frame = noisy(np.repeat(np.repeat(textured(width=480, height=272)[:270], 4, 0), 4, 1), 1)
    reduce_frame(frame)
    start = time.perf_counter()
    for _ in range(10):
        reduce_frame(frame)
    per_frame = (time.perf_counter() - start) / 10
    # ~5 ms measured on 2 cores; the bound only catches an accidental full-size float path.
    assert per_frame < 0.04


@pytest.mark.parametrize(
    "frame",
    [
        np.full((48, 64), 100, np.uint8),  # grey
        np.full((48, 64, 4), 100, np.uint8),  # BGRA
        np.full((48, 64, 3), 100 * 257, np.uint16),  # 16-bit
        np.full((48, 64, 1), 100, np.uint8),
    ],
)
def test_other_pixel_formats_are_read(frame):
    stats, _ = reduce_frame(frame)
    assert stats.mean_luma == pytest.approx(100, abs=1)
    assert (stats.width, stats.height) == (64, 48)


@pytest.mark.parametrize(
    "garbage", [np.zeros(10, np.uint8), np.zeros((2, 2, 3), np.uint8), np.zeros((2, 3, 4, 5))]
)
def test_garbage_is_a_value_error_not_a_crash(garbage):
    with pytest.raises(ValueError, match="not an image"):
        reduce_frame(garbage)


def test_fps_and_resolution_from_frames_and_times():
    m = analyse_frames(live(16), [i * 0.1 for i in range(16)])
    assert m.frames == 16
    assert (m.width, m.height) == (640, 480)
    assert m.fps == pytest.approx(10.0)


def test_a_pause_in_the_reader_is_read_past_and_a_slow_camera_stays_slow():
    cfg = CFG.model_copy(update={"sample_s": 1.0})
    paused = [0.0, 1.1]  # one frame, then the reading process stalled for 1.1 s
    assert not sample_complete(paused, cfg)
    paused += [1.1 + i / 30 for i in range(1, 31)]  # then a steady second at 30 fps
    assert sample_complete(paused, cfg)
    assert achieved_fps(paused, 1.0) == pytest.approx(30.0)
    assert achieved_fps(paused) == pytest.approx(31 / 2.1)  # the whole span would say 14.8

    slow = [i / 15 for i in range(31)]  # a camera that gives 15 of 30 fps
    assert not sample_complete(slow, cfg)
    slow += [2.0 + i / 15 for i in range(1, 16)]
    assert sample_complete(slow, cfg)  # 3 sample lengths: give up waiting for a better rate
    metrics = analyse_frames(live(len(slow)), slow, 1.0)
    assert metrics.fps == pytest.approx(15.0)
    assert judge_camera(metrics, cfg).status is Status.WARN


def test_the_rate_window_falls_back_to_all_frames_when_they_span_less():
    assert achieved_fps([0.0, 0.5], 1.0) == pytest.approx(2.0)
    assert achieved_fps([0.0, 2.0, 4.0], 1.0) == pytest.approx(0.5)
    assert achieved_fps([0.0], 1.0) is None


def test_single_frame_leaves_fps_and_freezing_unknown():
    m = analyse_frames(live(1), [0.0])
    assert m.fps is None
    assert m.frame_diff is None
    assert not m.frozen_known
    assert judge_camera(m, CFG).status is Status.OK


def test_frames_and_times_must_pair_up():
    with pytest.raises(ValueError, match="timestamps"):
        analyse_frames(live(3), [0.0, 0.1])


def test_accumulator_keeps_only_small_state():
    acc = FrameAccumulator()
    for i, frame in enumerate(live(5)):
        acc.add(frame, i / 30)
    assert len(acc) == 5
    assert acc.result().frames == 5


def test_frozen_statistic_ignores_a_few_changed_pairs_but_not_many():
    frozen_with_keyframe = [1.8] + [0.0] * 29  # one encoder refresh in a frozen picture
    assert frozen_statistic(frozen_with_keyframe) == 0.0
    slow_camera = [0.0, 0.0, 3.0] * 10  # every frame repeated three times: slow, alive
    assert frozen_statistic(slow_camera) == 3.0
    assert frozen_statistic([]) is None


# --- verdict ---------------------------------------------------------------------------


def test_a_live_sharp_picture_is_ok():
    outcome = judge(live())
    assert outcome.status is Status.OK, outcome.reason
    assert outcome.metrics["width"] == 640
    assert outcome.metrics["fps"] == pytest.approx(30.0)
    assert outcome.metrics["sharpness"] > CFG.min_sharpness


def test_no_frames_fails_with_hint():
    m = FrameAccumulator().result(1.0, "no frame for 1 s")
    outcome = judge_camera(m, CFG, "/dev/video0")
    assert outcome.status is Status.FAIL
    assert outcome.reason == "camera /dev/video0: opened but delivered no frame (no frame for 1 s)"
    assert "plug" in outcome.hint


def test_black_picture_fails_and_is_not_called_blurred():
    frames = [noisy(np.zeros((480, 640, 3), np.uint8), i, amplitude=3) for i in range(5)]
    outcome = judge(frames)
    assert outcome.status is Status.FAIL
    assert "black" in outcome.reason
    assert "focus" not in outcome.reason
    assert "lens" in outcome.hint


def test_identical_frames_are_frozen():
    frame = textured()
    outcome = judge([frame] * 10)
    assert outcome.status is Status.FAIL
    assert "frozen" in outcome.reason
    assert "replug" in outcome.hint


def test_sensor_noise_alone_is_not_frozen():
    assert judge(live()).status is Status.OK


def test_overexposed_warns():
    frames = [(f.astype(np.uint16) // 4 + 215).clip(0, 255).astype(np.uint8) for f in live()]
    outcome = judge(frames)
    assert outcome.status is Status.WARN
    assert "overexposed" in outcome.reason
    assert "window" in outcome.hint


def blurred(n=10, **kw):
    """Defocus happens before the sensor: blur, then the little noise a webcam leaves after
    its own denoising (which is what keeps such a picture from reading as frozen)."""
    base = cv2.GaussianBlur(textured(**kw), (0, 0), 6)
    return [noisy(base, seed=i, amplitude=1) for i in range(n)]


def test_blurred_picture_warns():
    frames = blurred()
    outcome = judge(frames)
    assert outcome.status is Status.WARN
    assert "out of focus" in outcome.reason
    assert "focus" in outcome.hint


def test_resolution_below_expected_warns():
    outcome = judge(live(width=320, height=240))
    assert outcome.status is Status.WARN
    assert "resolution 320x240 below the expected 640x480" in outcome.reason


def test_low_frame_rate_warns():
    outcome = judge(live(8), [i / 10 for i in range(8)])
    assert outcome.status is Status.WARN
    assert "10.0 fps, expected 30" in outcome.reason


def test_frame_rate_just_above_the_ratio_is_ok():
    outcome = judge(live(10), [i / 24.5 for i in range(10)])  # 0.8 x 30 = 24
    assert outcome.status is Status.OK


def test_feed_that_stopped_fails_even_with_good_frames():
    m = analyse_frames(live(5), stamps(5))
    stopped = CameraMetrics(**{**m.__dict__, "stopped": "no frame for 1 s"})
    outcome = judge_camera(stopped, CFG)
    assert outcome.status is Status.FAIL
    assert "feed stopped after 5 frames" in outcome.reason


def test_fail_comes_first_and_warnings_are_kept():
    dark_small = [np.full((240, 320, 3), 5, np.uint8)] * 4
    outcome = judge(dark_small, [i / 5 for i in range(4)])
    assert outcome.status is Status.FAIL
    parts = outcome.reason.split("; ")
    assert "black" in parts[0]
    assert any("resolution" in p for p in parts)
    assert any("fps" in p for p in parts)


def test_every_non_ok_verdict_has_one_line_reason_and_hint():
    cases = [
        [np.zeros((480, 640, 3), np.uint8)] * 3,
        [textured()] * 3,
        blurred(3),
        live(3, width=320, height=240),
    ]
    for frames in cases:
        outcome = judge(frames)
        assert outcome.status is not Status.OK
        assert outcome.reason and "\n" not in outcome.reason
        assert outcome.hint and "\n" not in outcome.hint
