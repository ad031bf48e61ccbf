"""Pure attendance logic: a burst to one count, hysteresis across bursts, the session's
report. Sequences in, counts out."""

import json
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest

from agent.attendance.burst import FrameLook, frame_problem, iqr, summarise_burst
from agent.attendance.counter import look
from agent.attendance.report import AttendanceReport, AttendanceSession, hysteresis_config
from agent.attendance.settings import AttendanceSettings
from agent.attendance.smoothing import Hysteresis, HysteresisConfig, SessionTally

# --- one burst ------------------------------------------------------------------------------


def test_burst_count_is_the_median_with_its_spread():
    stats = summarise_burst([40, 41, 39, 55, 40])  # someone walks in front in one frame
    assert stats.count == 40
    assert stats.spread == 1.0
    assert (stats.frames, stats.usable, stats.unknown_reason) == (5, 5, None)


def test_even_burst_rounds_the_median_up():
    assert summarise_burst([3, 4]).count == 4
    assert summarise_burst([3, 3, 4, 4]).count == 4
    assert summarise_burst([3, 3, 3, 4]).count == 3


def test_iqr():
    assert iqr([7]) == 0.0
    assert iqr([1, 2, 3, 4, 5]) == 2.0
    assert iqr([5, 5, 5, 5]) == 0.0


def test_an_empty_room_seen_is_zero_not_unknown():
    stats = summarise_burst([0, 0, 0])
    assert stats.count == 0 and stats.unknown_reason is None


def test_covered_lens_is_unknown_never_zero():
    stats = summarise_burst([None] * 5, ["dark"] * 5)
    assert stats.count is None and stats.spread is None
    assert "darkness" in (stats.unknown_reason or "")
    stats = summarise_burst([None, None, None, 12, 12], ["uniform"] * 3 + [None, None])
    assert stats.count is None
    assert "uniform" in (stats.unknown_reason or "")


def test_a_few_dark_frames_do_not_spoil_a_burst():
    stats = summarise_burst([None, 20, 21, 20, None], ["dark", None, None, None, "dark"])
    assert stats.count == 20 and stats.usable == 3


def test_no_frames_or_too_few_frames_is_unknown():
    assert summarise_burst([], expected_frames=5).unknown_reason == "camera delivered no frames"
    few = summarise_burst([12, 12], expected_frames=5)
    assert few.count is None
    assert few.unknown_reason == "camera delivered 2 of 5 frames"
    assert summarise_burst([12, 12, 13], expected_frames=5).count == 12


def test_frame_problems_from_real_pixels():
    rng = np.random.default_rng(0)
    black = rng.integers(0, 8, size=(480, 640, 3), dtype=np.uint8)  # a capped lens: noise
    grey_card = np.full((480, 640, 3), 128, np.uint8) + rng.integers(0, 3, (480, 640, 3)).astype(
        np.uint8
    )
    room = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    assert frame_problem(look(black), 16, 4) == "dark"
    assert frame_problem(look(grey_card), 16, 4) == "uniform"
    assert frame_problem(look(room), 16, 4) is None
    assert look(np.full((10, 10), 200, np.uint8)) == FrameLook(200.0, 0.0)
    with pytest.raises(ValueError):
        look(np.zeros((1, 5, 3), np.uint8))


# --- hysteresis -----------------------------------------------------------------------------


def run(raws, **config):
    smoother = Hysteresis(HysteresisConfig(**config))
    return [smoother.step(r) for r in raws]


def test_first_count_shows_at_once_and_rises_are_fast():
    assert run([10, 25, 40]) == [10, 25, 40]


def test_falls_are_slow_and_take_the_highest_of_the_lower_counts():
    assert run([40, 30, 31, 29, 29]) == [40, 40, 40, 31, 31]


def test_a_short_dip_does_not_show():
    # Heads bowed over papers for two bursts.
    assert run([40, 30, 32, 40, 40]) == [40, 40, 40, 40, 40]


def test_counts_that_alternate_by_one_never_flap():
    raws = [41, 42, 41, 42, 41, 42, 41, 42]
    assert set(run(raws)) == {41}


def test_a_small_change_that_persists_shows_after_settling():
    assert run([41, 42, 42, 42, 42]) == [41, 41, 41, 42, 42]
    assert run([100, 96, 96, 96]) == [100, 100, 100, 96]  # within 5 %


def test_a_one_burst_spike_is_ignored_when_rises_need_two_bursts():
    assert run([40, 47, 40, 40], rise_bursts=2) == [40, 40, 40, 40]
    assert run([40, 47, 45, 45], rise_bursts=2) == [40, 40, 45, 45]


def test_a_change_of_side_restarts_the_wait():
    assert run([40, 30, 30, 50, 30, 30]) == [40, 40, 40, 50, 50, 50]


def test_blind_bursts_hold_the_count_then_turn_unknown_and_recover_at_once():
    raws = [30, None, None, None, 28, 28]
    assert run(raws) == [30, 30, None, None, 28, 28]
    assert run(raws, blind_hold_bursts=0) == [30, None, None, None, 28, 28]
    assert run([None, None, 5]) == [None, None, 5]


def test_a_blind_burst_breaks_a_pending_fall():
    assert run([40, 30, 30, None, 30, 30, 30]) == [40, 40, 40, 40, 40, 40, 30]


# --- session report -------------------------------------------------------------------------


def test_session_tally():
    tally = SessionTally()
    assert (tally.peak, tally.median) == (None, None)
    for count in (10, None, 30, 20):
        tally.add(count)
    assert (tally.peak, tally.median) == (30, 20.0)


def _burst(counts, problems=()):
    return summarise_burst(counts, problems, expected_frames=len(counts))


def test_session_reports_count_rate_peak_and_median():
    session = AttendanceSession("s-2024-06-01", "centerface", expected=40)
    at = datetime(2024, 6, 1, 8, 0, tzinfo=timezone(timedelta(hours=7)))
    first = session.add(_burst([20, 21, 20]), at=at, people_count_codec=19)
    assert first.count == 20 and first.rate == 0.5
    assert first.measured_at == datetime(2024, 6, 1, 1, 0, tzinfo=UTC)
    assert first.people_count_codec == 19
    session.add(_burst([36, 36, 35]))
    last = session.add(_burst([None] * 3, ["dark"] * 3), tiled=True)
    assert last.count == 36  # one blind burst is held
    assert last.burst_count is None and "darkness" in (last.unknown_reason or "")
    assert (last.peak, last.median) == (36, 36.0)
    assert last.frames == 3 and last.frames_used == 0 and last.tiled
    blind = session.add(_burst([None] * 3, ["dark"] * 3))
    assert blind.count is None and blind.rate is None
    assert (blind.peak, blind.median) == (36, 36.0)  # unknowns are not zeros


def test_report_json_round_trip_and_unknowns():
    session = AttendanceSession("s1", "centerface", expected=0)
    report = session.add(_burst([None] * 5, ["uniform"] * 5), people_count_codec=-1)
    data = json.loads(report.model_dump_json())
    assert data["count"] is None and data["expected"] is None and data["rate"] is None
    assert data["people_count_codec"] is None  # the codec's -1 means "not counting"
    assert AttendanceReport.model_validate_json(report.model_dump_json()) == report
    assert set(data) == set(AttendanceReport.model_fields)


def test_hysteresis_settings_reach_the_session():
    cfg = hysteresis_config(AttendanceSettings(fall_bursts=1, blind_hold_bursts=0))
    session = AttendanceSession("s", "centerface", config=cfg)
    assert session.add(_burst([30])).count == 30
    assert session.add(_burst([20])).count == 20
    assert session.add(_burst([None], ["dark"])).count is None
