"""What `./run demo` prints of the centre's view, in the process language: each payload the
centre receives as one line, its raw codes (online, fault, check...) as words."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from agent.i18n import set_language
from agent.messages import message
from agent.sim.centre_view import describe
from agent.transport.listener import Received
from tests.test_cli_vietnamese import english_words

TOPIC = "vc/hn-01"
COMPONENTS = ("camera", "network")


def _received(kind: str, retain: bool = False, **data: Any) -> Received:
    payload = {"schema": f"edge-agent/{kind}/1", "seq": 7, "boot": 2, **data}
    return Received(f"{TOPIC}/{kind}", json.dumps(payload).encode(), retain)


PAYLOADS = [
    _received("availability", status="online"),
    _received("availability", retain=True, status="offline", reason="clean shutdown"),
    _received("availability", status="offline", reason="connection lost (will)"),
    _received(
        "meta",
        agent_version="0.1.0",
        site={"name": "UBND xã Phúc Thọ", "tier": "commune"},
        protocol="5",
        components=[{"component": c, "enabled": True} for c in COMPONENTS],
    ),
    _received(
        "state",
        verdict="fault",
        cause="check",
        components={"camera": {"status": "fail"}, "network": {"status": "ok"}},
        outbox={"pending": 3},
    ),
    _received("state", verdict=None, cause="birth", components={}, outbox={"pending": 0}),
    _received(
        "checks",
        historical=True,
        verdict="fault",
        duration_s=1.5,
        results=[
            {
                "component": "camera",
                "status": "fail",
                "reason": "camera x: no stream",
                "reason_msg": json.loads(
                    message(
                        "camera.no_stream", source="rtsp://cam/1", seconds=5.0
                    ).model_dump_json()
                ),
            }
        ],
    ),
]


@pytest.fixture
def vietnamese() -> Iterator[None]:
    set_language("vi")
    yield
    set_language("en")


def test_the_centres_view_in_english_keeps_its_words() -> None:
    lines = [describe(m) for m in PAYLOADS]
    assert lines[1].endswith("[retained]  offline clean shutdown")
    assert lines[4].endswith("FAULT (after a check): camera fail, network ok; outbox 3")
    assert "seq    7 boot   2 [historical]  FAULT in 1.5 s; camera: " in lines[6]


@pytest.mark.usefixtures("vietnamese")
def test_the_centres_view_in_vietnamese_has_no_english() -> None:
    lines = [describe(m) for m in PAYLOADS]
    assert lines[0].endswith("đang hoạt động")
    assert lines[1].endswith("[giữ lại]  mất liên lạc (phần mềm giám sát dừng bình thường)")
    assert "SỰ CỐ (sau kiểm tra): camera Không đạt, network Đạt; hàng đợi gửi 3" in lines[4]
    for line in lines:
        assert english_words(line, names=(TOPIC, *COMPONENTS, "UBND")) == [], line


@pytest.mark.usefixtures("vietnamese")
def test_a_payload_of_another_release_is_still_one_line() -> None:
    odd = _received("state", verdict="fault", cause="new-cause", components=[1], outbox={})
    line = describe(odd)
    assert line.startswith(f"{TOPIC}/state") and "\n" not in line
    assert describe(Received(f"{TOPIC}/state", b"\xff", False)).startswith(TOPIC)
