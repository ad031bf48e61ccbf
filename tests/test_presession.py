"""Pre-session glue: schedules from the centre (cached on disk), the run record surviving a
restart, bad schedules refused without losing the good one."""

import json
from datetime import UTC, datetime, timedelta

from agent.config import Settings
from agent.schedule.presession import PreSession

START = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)  # 08:00 in Hanoi


def settings(tmp_path):
    return Settings(
        site={"site_id": "s1", "name": "s", "tier": "commune"},
        paths={"state_dir": str(tmp_path)},
        schedule={"local_file": str(tmp_path / "none.toml")},
    )


def payload(start=START, session_id="s-1"):
    return json.dumps(
        {
            "schema_version": "1",
            "entries": [
                {
                    "session_id": session_id,
                    "title": "Hội nghị",
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=2)).isoformat(),
                }
            ],
        }
    ).encode()


def test_runs_once_across_a_restart_with_the_cached_schedule(tmp_path):
    pre = PreSession(settings(tmp_path))
    assert pre.source == "none"
    pre.on_schedule("all", payload())
    assert pre.source == "centre"
    assert pre.tick(START - timedelta(minutes=90)).due == ()
    due = pre.tick(START - timedelta(minutes=59)).due
    assert [(r.session.session_id, r.lead_minutes) for r in due] == [("s-1", 60)]

    again = PreSession(settings(tmp_path))  # restarted, no MQTT message yet
    assert again.source == "centre"  # from the cache
    assert again.tick(START - timedelta(minutes=58)).due == ()  # not run twice
    due = again.tick(START - timedelta(minutes=14)).due
    assert [r.lead_minutes for r in due] == [15]
    assert again.next_session(START - timedelta(minutes=14)).session_id == "s-1"


def test_bad_schedule_is_refused_and_the_good_one_kept(tmp_path):
    pre = PreSession(settings(tmp_path))
    pre.on_schedule("site", payload())
    pre.on_schedule("site", b'{"schema_version": "1", "entries": [{"session_id": 3}]}')
    pre.on_schedule("site", b"\xff garbage")
    assert [s.session_id for s in pre.scheduler.sessions] == ["s-1"]


def test_site_schedule_overrides_and_clearing_falls_back(tmp_path):
    pre = PreSession(settings(tmp_path))
    pre.on_schedule("all", payload())
    pre.on_schedule("site", payload(START + timedelta(hours=1)))
    assert pre.scheduler.sessions[0].start == START + timedelta(hours=1)
    pre.on_schedule("site", b"")  # the centre cleared the retained site schedule
    assert pre.scheduler.sessions[0].start == START
    assert not (tmp_path / "schedule-site.json").exists()
