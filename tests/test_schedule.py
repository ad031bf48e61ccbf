"""Pre-session scheduling: pure logic driven by a fake clock, plus the record/file side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.errors import ConfigError
from agent.schedule.model import (
    RunRecord,
    ScheduleError,
    SchedulePayload,
    Scheduler,
    ScheduleSettings,
    Session,
    effective_schedule,
    expected_attendance,
    local_time,
    merge_schedules,
    parse_payload,
    parse_schedule_file,
    site_zone,
)
from agent.schedule.store import cache_payload, load_record, read_local_schedule, save_record

HCM = site_zone("Asia/Ho_Chi_Minh")
REPO = Path(__file__).resolve().parent.parent


def at(text: str) -> datetime:
    """A wall-clock time at the site (Asia/Ho_Chi_Minh, +07:00)."""
    return datetime.fromisoformat(text).replace(tzinfo=HCM)


def session(sid: str, start: str, end: str, **extra: object) -> Session:
    return Session(session_id=sid, start=at(start), end=at(end), **extra)


@dataclass
class FakeClock:
    """Wall time under the test's control: advances, and jumps like an NTP correction."""

    now: datetime

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now

    def jump_to(self, text: str) -> datetime:
        self.now = at(text)
        return self.now


def run_keys(tick_runs: tuple[object, ...]) -> list[tuple[str, int]]:
    return [(r.session.session_id, r.lead_minutes) for r in tick_runs]


def drive(sched: Scheduler, clock: FakeClock, until: str, step_s: float = 30) -> list[tuple]:
    """Tick every `step_s` up to `until`; every due run with the time it came due."""
    seen = []
    end = at(until)
    while clock.now <= end:
        tick = sched.tick(clock.now)
        seen += [(r.session.session_id, r.lead_minutes, clock.now) for r in tick.due]
        clock.advance(seconds=step_s)
    return seen


@pytest.fixture
def sched() -> Scheduler:
    return Scheduler(ScheduleSettings())


# --- settings ----------------------------------------------------------------------------


def test_settings_defaults_and_lead_validation() -> None:
    assert ScheduleSettings().lead_minutes == [60, 15]
    assert ScheduleSettings(lead_minutes=[5, 120, 30]).lead_minutes == [120, 30, 5]
    for bad in ([], [0], [15, 15], [24 * 60 + 1]):
        with pytest.raises(ValidationError):
            ScheduleSettings(lead_minutes=bad)
    with pytest.raises(ValidationError):
        ScheduleSettings(lead_minute=[5])


def test_unknown_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="Asia/Hanoi_City"):
        site_zone("Asia/Hanoi_City")


# --- the basic cycle ---------------------------------------------------------------------


def test_each_lead_runs_exactly_once_at_its_time(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    clock = FakeClock(at("2025-03-10 06:00"))
    seen = drive(sched, clock, "2025-03-10 12:00")
    assert seen == [("s1", 60, at("2025-03-10 07:00")), ("s1", 15, at("2025-03-10 07:45"))]


def test_wake_at_points_at_the_next_event(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    # Far ahead: capped by max_sleep_s, so a clock jump is noticed within it.
    tick = sched.tick(at("2025-03-10 06:00"))
    assert tick.wake_at == at("2025-03-10 06:00:30")
    assert tick.next_session is not None and tick.next_session.session_id == "s1"
    tick = sched.tick(at("2025-03-10 06:59:50"))
    assert tick.wake_at == at("2025-03-10 07:00")
    tick = sched.tick(at("2025-03-10 07:44:45"))
    assert tick.wake_at == at("2025-03-10 07:45")
    tick = sched.tick(at("2025-03-10 07:59:59"))
    assert tick.wake_at == at("2025-03-10 08:00")
    # During the session: its end, then the end of the overrun margin.
    tick = sched.tick(at("2025-03-10 09:59:45"))
    assert tick.wake_at == at("2025-03-10 10:00")
    tick = sched.tick(at("2025-03-10 10:14:50"))
    assert tick.wake_at == at("2025-03-10 10:15")


def test_current_session_and_quiet_mode(sched: Scheduler) -> None:
    s1 = session("s1", "2025-03-10 08:00", "2025-03-10 10:00", expected_attendance=30)
    sched.set_sessions([s1])
    before = sched.tick(at("2025-03-10 07:59"))
    assert before.current == () and not before.quiet
    during = sched.tick(at("2025-03-10 08:00"))
    assert during.current == (s1,) and during.quiet
    assert expected_attendance(during.current[0], 25) == 30
    # After the scheduled end: no longer counted, but still quiet (sessions overrun).
    overrun = sched.tick(at("2025-03-10 10:05"))
    assert overrun.current == () and overrun.quiet
    after = sched.tick(at("2025-03-10 10:15"))
    assert not after.quiet and after.next_session is None


def test_expected_attendance_falls_back_to_the_site() -> None:
    assert expected_attendance(session("s", "2025-03-10 08:00", "2025-03-10 09:00"), 25) == 25


# --- midnight and overlaps ---------------------------------------------------------------


def test_session_crossing_midnight(sched: Scheduler) -> None:
    night = session("night", "2025-03-10 23:30", "2025-03-11 01:30")
    sched.set_sessions([night])
    clock = FakeClock(at("2025-03-10 21:00"))
    seen = drive(sched, clock, "2025-03-11 03:00")
    assert seen == [("night", 60, at("2025-03-10 22:30")), ("night", 15, at("2025-03-10 23:15"))]
    after_midnight = sched.tick(at("2025-03-11 00:45"))
    assert after_midnight.current == (night,) and after_midnight.quiet


def test_lead_time_crossing_midnight(sched: Scheduler) -> None:
    early = session("early", "2025-03-11 00:30", "2025-03-11 02:00")
    sched.set_sessions([early])
    clock = FakeClock(at("2025-03-10 22:00"))
    seen = drive(sched, clock, "2025-03-11 01:00")
    assert seen == [("early", 60, at("2025-03-10 23:30")), ("early", 15, at("2025-03-11 00:15"))]
    assert local_time(early.start, HCM) == "2025-03-11 00:30 +07"


def test_overlapping_sessions(sched: Scheduler) -> None:
    a = session("a", "2025-03-10 08:00", "2025-03-10 10:00")
    b = session("b", "2025-03-10 09:30", "2025-03-10 11:00")
    sched.set_sessions([b, a])
    clock = FakeClock(at("2025-03-10 06:00"))
    seen = drive(sched, clock, "2025-03-10 12:00")
    assert [(s, lead) for s, lead, _ in seen] == [("a", 60), ("a", 15), ("b", 60), ("b", 15)]
    # b's checks fall due while a runs: they still run, in quiet mode.
    b60 = sched_tick_at(a, b, "2025-03-10 08:30")
    assert run_keys(b60.due) == [("b", 60)] and b60.quiet
    both = sched.tick(at("2025-03-10 09:45"))
    assert both.current == (a, b) and both.quiet
    only_b = sched.tick(at("2025-03-10 10:30"))
    assert only_b.current == (b,) and only_b.quiet
    assert not sched.tick(at("2025-03-10 11:15")).quiet


def sched_tick_at(a: Session, b: Session, when: str):
    fresh = Scheduler(ScheduleSettings())
    fresh.set_sessions([a, b])
    fresh.tick(at("2025-03-10 07:00"))  # a's 60-minute run
    fresh.tick(at("2025-03-10 07:45"))  # a's 15-minute run
    return fresh.tick(at(when))


# --- the schedule replaced while a run is pending ----------------------------------------


def test_moved_session_runs_at_the_new_times(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    clock = FakeClock(at("2025-03-10 06:00"))
    assert drive(sched, clock, "2025-03-10 06:50") == []
    sched.set_sessions([session("s1", "2025-03-10 14:00", "2025-03-10 16:00")])
    seen = drive(sched, clock, "2025-03-10 17:00")
    assert seen == [("s1", 60, at("2025-03-10 13:00")), ("s1", 15, at("2025-03-10 13:45"))]


def test_session_moved_after_a_run_gets_fresh_runs(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    assert run_keys(sched.tick(at("2025-03-10 07:00")).due) == [("s1", 60)]
    sched.set_sessions([session("s1", "2025-03-10 14:00", "2025-03-10 16:00")])
    assert sched.tick(at("2025-03-10 07:45")).due == ()  # the old 15-minute run is gone
    assert run_keys(sched.tick(at("2025-03-10 13:00")).due) == [("s1", 60)]


def test_session_moved_earlier_past_its_run_time_is_caught_up_once(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 14:00", "2025-03-10 16:00")])
    assert sched.tick(at("2025-03-10 09:20")).due == ()
    sched.set_sessions([session("s1", "2025-03-10 10:00", "2025-03-10 12:00")])
    tick = sched.tick(at("2025-03-10 09:21"))
    assert run_keys(tick.due) == [("s1", 60)] and tick.changed
    assert sched.tick(at("2025-03-10 09:22")).due == ()


def test_removed_session_does_not_run(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    clock = FakeClock(at("2025-03-10 06:00"))
    drive(sched, clock, "2025-03-10 06:55")
    sched.set_sessions([])
    assert drive(sched, clock, "2025-03-10 12:00") == []


def test_same_schedule_sent_again_changes_nothing(sched: Scheduler) -> None:
    sessions = [session("s1", "2025-03-10 08:00", "2025-03-10 10:00")]
    sched.set_sessions(sessions)
    assert run_keys(sched.tick(at("2025-03-10 07:00")).due) == [("s1", 60)]
    sched.set_sessions(list(sessions))  # a retained message re-delivered on reconnect
    tick = sched.tick(at("2025-03-10 07:01"))
    assert tick.due == () and not tick.changed


# --- clock jumps -------------------------------------------------------------------------


def test_jump_forward_past_one_run_catches_it_up_once(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    clock = FakeClock(at("2025-03-10 06:30"))
    sched.tick(clock.now)
    tick = sched.tick(clock.jump_to("2025-03-10 07:20"))
    assert run_keys(tick.due) == [("s1", 60)]
    seen = drive(sched, clock, "2025-03-10 09:00")
    assert seen == [("s1", 15, at("2025-03-10 07:45"))]


def test_jump_forward_past_both_runs_runs_one_check(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    sched.tick(at("2025-03-10 06:30"))
    tick = sched.tick(at("2025-03-10 07:50"))
    assert run_keys(tick.due) == [("s1", 15)]
    assert run_keys(tick.superseded) == [("s1", 60)]
    assert sched.tick(at("2025-03-10 07:51")).due == ()


def test_jump_forward_past_the_start_records_missed_once(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    sched.tick(at("2025-03-10 06:30"))
    tick = sched.tick(at("2025-03-10 08:20"))
    assert tick.due == ()
    assert run_keys(tick.missed) == [("s1", 60), ("s1", 15)]
    assert tick.changed and tick.quiet
    again = sched.tick(at("2025-03-10 08:21"))
    assert again.missed == () and again.due == () and not again.changed
    outcomes = {(e.session_id, e.lead_minutes): e.outcome for e in sched.record().runs}
    assert outcomes == {("s1", 60): "missed", ("s1", 15): "missed"}


def test_jump_forward_past_the_whole_session_reports_it_missed(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    sched.tick(at("2025-03-10 06:30"))
    tick = sched.tick(at("2025-03-10 13:00"))
    assert run_keys(tick.missed) == [("s1", 60), ("s1", 15)]


def test_a_new_install_does_not_report_old_sessions_missed(sched: Scheduler) -> None:
    sched.set_sessions([session("old", "2025-03-09 08:00", "2025-03-09 10:00")])
    tick = sched.tick(at("2025-03-10 07:00"))
    assert tick.missed == () and tick.due == () and not tick.changed


def test_jump_backward_never_reruns_a_done_run(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    clock = FakeClock(at("2025-03-10 06:50"))
    assert [lead for _, lead, _ in drive(sched, clock, "2025-03-10 07:10")] == [60]
    clock.jump_to("2025-03-10 06:40")  # NTP pulls the clock back half an hour
    seen = drive(sched, clock, "2025-03-10 09:00")
    assert seen == [("s1", 15, at("2025-03-10 07:45"))]


def test_jump_backward_after_the_last_run_runs_nothing_earlier(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    sched.tick(at("2025-03-10 06:30"))
    assert run_keys(sched.tick(at("2025-03-10 07:50")).due) == [("s1", 15)]
    clock = FakeClock(at("2025-03-10 06:00"))
    # The 60-minute run comes round again, but a later check already ran.
    assert drive(sched, clock, "2025-03-10 09:00") == []


def test_no_check_runs_behind_a_later_one_of_the_same_session() -> None:
    """Lead times changed between restarts, then the clock went back: the new, earlier lead
    comes due after the later check already ran, and is pointless."""
    sessions = [session("s1", "2025-03-10 08:00", "2025-03-10 10:00")]
    before = Scheduler(ScheduleSettings(lead_minutes=[15]))
    before.set_sessions(sessions)
    assert run_keys(before.tick(at("2025-03-10 07:45")).due) == [("s1", 15)]
    after = Scheduler(ScheduleSettings(lead_minutes=[60, 15]), before.record())
    after.set_sessions(sessions)
    assert drive(after, FakeClock(at("2025-03-10 06:30")), "2025-03-10 09:00") == []


def test_bogus_jump_forward_then_correction_still_runs_the_checks(sched: Scheduler) -> None:
    sched.set_sessions([session("s1", "2025-03-10 08:00", "2025-03-10 10:00")])
    sched.tick(at("2025-03-10 06:00"))
    bogus = sched.tick(at("2025-03-10 09:00"))  # a bad time source, corrected a minute later
    assert run_keys(bogus.missed) == [("s1", 60), ("s1", 15)]
    clock = FakeClock(at("2025-03-10 06:01"))
    seen = drive(sched, clock, "2025-03-10 08:30")
    assert seen == [("s1", 60, at("2025-03-10 07:00")), ("s1", 15, at("2025-03-10 07:45"))]


def test_now_must_be_aware(sched: Scheduler) -> None:
    with pytest.raises(ValueError, match="aware"):
        sched.tick(datetime(2025, 3, 10, 8, 0))


# --- persistence across restarts ---------------------------------------------------------


def test_restart_with_the_saved_record_does_not_rerun(tmp_path: Path) -> None:
    sessions = [session("s1", "2025-03-10 08:00", "2025-03-10 10:00")]
    first = Scheduler(ScheduleSettings())
    first.set_sessions(sessions)
    tick = first.tick(at("2025-03-10 07:00"))
    assert tick.changed and run_keys(tick.due) == [("s1", 60)]
    path = tmp_path / "state" / "schedule-runs.json"
    save_record(path, first.record())
    assert json.loads(path.read_text())["runs"][0]["outcome"] == "done"

    second = Scheduler(ScheduleSettings(), load_record(path))
    second.set_sessions(sessions)
    assert second.tick(at("2025-03-10 07:05")).due == ()
    assert run_keys(second.tick(at("2025-03-10 07:45")).due) == [("s1", 15)]


def test_downtime_over_a_run_time_is_caught_up_after_restart(tmp_path: Path) -> None:
    sessions = [session("s1", "2025-03-10 08:00", "2025-03-10 10:00")]
    first = Scheduler(ScheduleSettings())
    first.set_sessions(sessions)
    first.tick(at("2025-03-10 06:00"))
    save_record(tmp_path / "r.json", first.record())
    second = Scheduler(ScheduleSettings(), load_record(tmp_path / "r.json"))
    second.set_sessions(sessions)
    assert run_keys(second.tick(at("2025-03-10 07:30")).due) == [("s1", 60)]


def test_missing_and_damaged_records(tmp_path: Path) -> None:
    assert load_record(tmp_path / "none.json") == RunRecord()
    bad = tmp_path / "runs.json"
    bad.write_text("{not json")
    assert load_record(bad) == RunRecord()
    assert not bad.exists() and (tmp_path / "runs.json.bad").read_text() == "{not json"


def test_records_of_unscheduled_old_sessions_are_pruned(sched: Scheduler) -> None:
    old = session("old", "2025-03-01 08:00", "2025-03-01 10:00")
    kept = session("kept", "2025-03-01 14:00", "2025-03-01 16:00")
    sched.set_sessions([old, kept])
    sched.tick(at("2025-03-01 07:00"))
    sched.tick(at("2025-03-01 13:00"))
    assert {e.session_id for e in sched.record().runs} == {"old", "kept"}
    sched.set_sessions([kept])
    sched.tick(at("2025-03-02 08:00"))  # within two days: still remembered
    assert {e.session_id for e in sched.record().runs} == {"old", "kept"}
    tick = sched.tick(at("2025-03-04 08:00"))
    assert {e.session_id for e in sched.record().runs} == {"kept"} and tick.changed


# --- payloads, files, merging ------------------------------------------------------------

PAYLOAD = {
    "schema_version": "1",
    "issued_at": "2025-03-09T12:00:00+07:00",
    "entries": [
        {
            "session_id": "p1",
            "title": "Họp trực tuyến toàn tỉnh",
            "start": "2025-03-10T08:00:00+07:00",
            "end": "2025-03-10T11:00:00+07:00",
            "expected_attendance": 40,
        },
        {"session_id": "p2", "start": "2025-03-11T01:00:00Z", "end": "2025-03-11T03:00:00Z"},
    ],
}


def test_parse_payload() -> None:
    payload = parse_payload(json.dumps(PAYLOAD).encode())
    assert [e.session_id for e in payload.entries] == ["p1", "p2"]
    assert payload.entries[0].title == "Họp trực tuyến toàn tỉnh"
    assert payload.entries[1].start == at("2025-03-11 08:00")


def test_empty_retained_message_means_no_sessions() -> None:
    assert parse_payload(b"") == SchedulePayload()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"schema_version": "2"}, "schema '2'"),
        (
            {
                "entries": [
                    {"session_id": "x", "start": "2025-03-10T08:00", "end": "2025-03-10T09:00"}
                ]
            },
            "UTC offset",
        ),
        (
            {"entries": [{**PAYLOAD["entries"][1], "end": "2025-03-11T00:00:00Z"}]},
            "end must be after start",
        ),
        (
            {"entries": [{**PAYLOAD["entries"][1], "end": "2025-03-13T00:00:00Z"}]},
            "longer than 24 hours",
        ),
        ({"entries": [PAYLOAD["entries"][1], PAYLOAD["entries"][1]]}, "appears twice"),
    ],
)
def test_bad_payloads_are_refused_with_the_reason(change: dict, message: str) -> None:
    with pytest.raises(ScheduleError, match=message) as info:
        parse_payload(json.dumps({**PAYLOAD, **change}))
    assert "previous one stays" in info.value.hint


def test_a_newer_centres_fields_are_ignored_not_refused() -> None:
    # within schema version 1 a centre may add fields; a deployed agent keeps its schedule
    newer = {**PAYLOAD, "colour": "red",
             "entries": [{**e, "room": {"floor": 2}} for e in PAYLOAD["entries"]]}  # fmt: skip
    assert parse_payload(json.dumps(newer)) == parse_payload(json.dumps(PAYLOAD))
    # ... but not in a signed command, nor in the technician's own file (a typo shows)
    with pytest.raises(ScheduleError, match="colour"):
        parse_payload(json.dumps(newer), "set-schedule", strict=True)
    with pytest.raises(ScheduleError, match="room"):
        parse_schedule_file(
            '[[entries]]\nsession_id = "x"\nstart = 2025-03-10T08:00:00\n'
            'end = 2025-03-10T09:00:00\nroom = "A"\n',
            HCM,
        )


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe garbage", b"[1, 2]", b"null", b"42"])
def test_garbage_payloads_raise_schedule_error(raw: bytes) -> None:
    with pytest.raises(ScheduleError):
        parse_payload(raw)


def test_local_file_reads_naive_times_in_the_site_zone(tmp_path: Path) -> None:
    payload = read_local_schedule(REPO / "schedule.example.toml", HCM)
    assert payload is not None
    first, second = payload.entries
    assert first.start == at("2025-03-10 08:00") and first.expected_attendance == 30
    assert second.start == at("2025-03-12 14:00")
    assert read_local_schedule(tmp_path / "missing.toml", HCM) is None
    bad = tmp_path / "bad.toml"
    bad.write_text('[[entries]]\nsession_id = "x"\nstart = 2025-03-10T08:00:00\n')
    with pytest.raises(ScheduleError, match=r"bad\.toml.*end"):
        read_local_schedule(bad, HCM)
    broken = tmp_path / "broken.toml"
    broken.write_text("[[entries]\n")
    with pytest.raises(ScheduleError, match="not valid TOML"):
        parse_schedule_file(broken.read_text(), HCM)


def test_site_schedule_wins_by_session_id_and_can_cancel() -> None:
    everyone = SchedulePayload(
        entries=[
            session("p1", "2025-03-10 08:00", "2025-03-10 11:00", title="Toàn tỉnh"),
            session("p2", "2025-03-11 08:00", "2025-03-11 11:00"),
            session("p3", "2025-03-12 08:00", "2025-03-12 11:00"),
        ]
    )
    mine = SchedulePayload(
        entries=[
            session("p1", "2025-03-10 08:30", "2025-03-10 11:00", title="Xã dự từ 8:30"),
            session("p3", "2025-03-12 08:00", "2025-03-12 11:00", cancelled=True),
            session("x1", "2025-03-09 14:00", "2025-03-09 16:00"),
        ]
    )
    merged = merge_schedules(everyone, mine)
    assert [s.session_id for s in merged] == ["x1", "p1", "p2"]
    assert merged[1].start == at("2025-03-10 08:30") and merged[1].title == "Xã dự từ 8:30"


def test_local_file_is_only_a_fallback() -> None:
    local = SchedulePayload(entries=[session("l1", "2025-03-10 08:00", "2025-03-10 09:00")])
    centre = SchedulePayload(entries=[session("c1", "2025-03-10 14:00", "2025-03-10 15:00")])
    assert effective_schedule(None, None, None) == ([], "none")
    sessions, source = effective_schedule(None, None, local)
    assert source == "local" and [s.session_id for s in sessions] == ["l1"]
    sessions, source = effective_schedule(None, centre, local)
    assert source == "centre" and [s.session_id for s in sessions] == ["c1"]
    # The centre cleared its schedule: that is an answer too, not a reason to fall back.
    assert effective_schedule(SchedulePayload(), None, local) == ([], "centre")


def test_cached_centre_schedule_round_trips(tmp_path: Path) -> None:
    payload = parse_payload(json.dumps(PAYLOAD))
    cache_payload(tmp_path / "schedule-site.json", payload)
    assert parse_payload((tmp_path / "schedule-site.json").read_bytes()) == payload
