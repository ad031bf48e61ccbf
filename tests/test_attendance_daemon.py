"""Attendance end to end: the daemon counts a live camera stream of a room with known faces
during a scheduled session, with the real detector, and reports it over a real broker; the
TV's faces are excluded by the region of interest."""

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.commands.actions import ActionFailed
from agent.config import Settings
from agent.runtime.daemon import Agent
from agent.sim.crowd import Room, RoomSpec, make_room_clip
from agent.sim.video import MjpegServer
from agent.transport.listener import Listener
from tests.fixtures.broker import agent_config

pytestmark = pytest.mark.broker

MODELS = Path(__file__).resolve().parents[1] / "models"
ROOM = RoomSpec(960, 540, rows=3, seats=7, present=18, face_front=56, face_back=34, tv_faces=5)


def test_daemon_counts_the_room_during_a_session_and_reports_it(broker, tmp_path):
    clip = make_room_clip(tmp_path / "room.avi", ROOM, seconds=2.0, fps=10)
    truth = Room(ROOM).count
    with MjpegServer(clip=clip, fps=10, width=960, height=540) as camera:
        config = agent_config(broker, tmp_path / "state", check_interval_s=3600)
        config["camera"] = {"enabled": False, "source": camera.url}
        config["schedule"] = {"local_file": str(tmp_path / "none.toml")}
        config["attendance"] = {
            "enabled": True,
            "models_dir": str(MODELS),
            "interval_s": 5,
            "burst_frames": 3,
            "burst_spacing_s": 0.1,
            "input_width": 960,
            "tiling": "off",
            "exclude": [{"rect": list(ROOM.tv)}],
        }
        centre = Listener(broker.endpoint(), ["vc/s1/attendance"]).start()
        start = datetime.now(UTC) - timedelta(minutes=5)  # the session is running now
        schedule = {
            "schema_version": "1",
            "entries": [
                {
                    "session_id": "s-now",
                    "start": start.isoformat(),
                    "end": (start + timedelta(hours=2)).isoformat(),
                    "expected_attendance": 20,
                }
            ],
        }
        centre.publish("vc/s1/schedule", json.dumps(schedule).encode(), retain=True)
        agent = Agent(Settings(**config))
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        try:
            assert centre.wait_for(lambda ms: len(ms) >= 1, 40)
        finally:
            stop.set()
            thread.join(20)
            centre.stop()
    report = centre.messages()[0].json()
    assert report["session_id"] == "s-now"
    assert report["detector"] == "centerface"
    assert report["count"] is not None
    assert abs(report["count"] - truth) <= 1  # 18 in the room; the 5 on the TV excluded
    assert report["expected"] == 20
    assert report["rate"] == pytest.approx(report["count"] / 20)
    assert report["frames"] == 3


def test_count_now_outside_a_session_and_when_disabled(broker, tmp_path):
    clip = make_room_clip(tmp_path / "room.avi", ROOM, seconds=1.0, fps=10)
    with MjpegServer(clip=clip, fps=10, width=960, height=540) as camera:
        config = agent_config(broker, tmp_path / "state")
        config["camera"] = {"enabled": False, "source": camera.url}
        config["attendance"] = {"enabled": False, "models_dir": str(MODELS)}
        off = Agent(Settings(**config))
        try:
            with pytest.raises(ActionFailed, match="attendance counting is off"):
                off.count_now()
        finally:
            off.outbox.close()
        config["attendance"] |= {
            "enabled": True,
            "burst_frames": 2,
            "burst_spacing_s": 0.1,
            "input_width": 960,
            "tiling": "off",
        }
        agent = Agent(Settings(**config))
        try:
            report = agent.count_now()
        finally:
            agent.outbox.close()
    assert report["session_id"] == "count-now"
    assert report["count"] >= Room(ROOM).count  # no region set: the TV's faces count too
    assert report["schema"] == "edge-agent/attendance/1"
