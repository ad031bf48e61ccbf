"""The symbolic-id message catalogue (agent/locale/messages.toml) and its renderer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from agent.messages import ID_PATTERN, Message, catalogue, fields, message, render, render_or

AGENT = Path(__file__).resolve().parent.parent / "agent"


def test_every_id_has_english_and_vietnamese_with_the_same_parameters() -> None:
    entries = catalogue()
    assert len(entries) >= 50
    bad = {}
    for msg_id, entry in entries.items():
        problems = []
        if not re.match(ID_PATTERN, msg_id):
            problems.append("id is not dotted lower-case words")
        if set(entry) - {"en", "vi", "sep"}:
            problems.append(f"unknown keys {sorted(set(entry) - {'en', 'vi', 'sep'})}")
        if not entry.get("en", "").strip() or not entry.get("vi", "").strip():
            problems.append("en or vi missing or empty")
        elif fields(entry["en"]) != fields(entry["vi"]):
            problems.append(f"params differ: {fields(entry['en'])} vs {fields(entry['vi'])}")
        if problems:
            bad[msg_id] = problems
    assert bad == {}


def _used_ids() -> dict[str, list[str]]:
    """Each id given to message() in agent/, with where; a call whose id is not a literal is
    reported as such, so this scan sees every id the code can make."""
    used: dict[str, list[str]] = {}
    for path in sorted(AGENT.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "message"
            ):
                continue
            arg = node.args[0] if node.args else None
            where = f"{path.relative_to(AGENT.parent)}:{node.lineno}"
            key = arg.value if isinstance(arg, ast.Constant) else "<not a literal>"
            used.setdefault(str(key), []).append(where)
    return used


def test_every_id_the_code_uses_is_in_the_catalogue() -> None:
    used = _used_ids()
    assert len(used) >= 40  # the scan finds the converted probes' messages
    missing = {i: where for i, where in used.items() if i not in catalogue()}
    assert missing == {}


def test_a_message_carries_its_english_and_renders_in_vietnamese() -> None:
    msg = message("camera.no_stream", source="rtsp://cam/1", seconds=5.0)
    assert msg.text == "camera rtsp://cam/1: no stream within 5 s"
    assert render(msg, "en") == msg.text
    assert render(msg, "vi") == "camera rtsp://cam/1: không nhận được luồng hình trong 5 giây"


def test_nested_messages_and_lists_render_in_the_readers_language() -> None:
    size = message("camera.size_fps", width=640, height=480, fps=4.0)
    black = message("camera.black", luma=3.2)
    slow = message("camera.low_fps", fps=4.0, want_fps=30.0)
    camera = message("camera.name", source="/dev/video0")
    msg = message("camera.faults", camera=camera, findings=[black, slow], size=size)
    assert msg.text == (
        "camera /dev/video0: picture is black (mean luma 3); 4.0 fps, expected 30; "
        "640x480 at 4.0 fps"
    )
    # Through JSON, as a payload carries it.
    back = Message.model_validate_json(msg.model_dump_json())
    assert back == msg
    assert render(back, "vi") == (
        "camera /dev/video0: hình ảnh bị đen (độ sáng trung bình 3); "
        "4.0 khung hình/giây, cần 30; 640x480, 4.0 khung hình/giây"
    )
    hints = message("camera.hints", hints=[message("camera.hint.dark")] * 2)
    assert " / " in hints.text
    assert " / " in render(hints, "vi")


@pytest.mark.parametrize(
    "msg",
    [
        # A newer site's id this centre does not know.
        Message(id="camera.future_thing", params={"x": 1}, text="camera: something new"),
        # A parameter missing, or of a type the format cannot take.
        Message(id="camera.no_stream", params={"source": "x"}, text="camera x: no stream"),
        Message(
            id="camera.no_stream",
            params={"source": "x", "seconds": "soon"},
            text="camera x: no stream",
        ),
    ],
)
def test_what_cannot_be_rendered_falls_back_to_the_english_it_carries(msg: Message) -> None:
    assert render(msg, "vi") == msg.text
    assert render(msg, "xx") == msg.text


def test_an_unknown_id_at_the_writer_still_makes_a_message() -> None:
    msg = message("camera.no_such_id", source="x")
    assert msg.id == "camera.no_such_id"
    assert "camera.no_such_id" in msg.text
    assert render(msg, "vi") == msg.text


def test_render_or_takes_the_plain_text_of_an_older_writer() -> None:
    assert render_or(None, "camera: old text", "vi") == "camera: old text"
    msg = message("network.no_targets")
    assert render_or(msg, msg.text, "vi") == "chưa cấu hình đích kiểm tra mạng nào"


def test_a_nested_id_the_reader_does_not_know_falls_back_to_the_whole_english() -> None:
    newer = Message(id="camera.from_the_future", params={})
    msg = Message(
        id="camera.faults",
        params={"camera": message("camera.name_unknown"), "findings": [newer], "size": "1x1"},
        text="camera: something new; 1x1",
    )
    assert render(msg, "vi") == "camera: something new; 1x1"


def test_nested_messages_travel_without_their_own_english() -> None:
    """The outer text says it all: a payload carries the English once per reason."""
    msg = message("network.paths", paths=[message("network.unreachable", path="mcu_tcp")])
    inner = msg.params["paths"]
    assert isinstance(inner, list) and inner[0].text == ""
    assert msg.text == "mcu_tcp unreachable"
    assert render(msg, "vi") == "mcu_tcp: không kết nối được"


def test_a_non_finite_number_in_a_message_survives_json() -> None:
    # JSON has no NaN: written as null, a reader would refuse the whole report carrying it.
    from agent.messages import Message  # noqa: PLC0415

    m = Message(id="camera.fps", params={"fps": float("nan"), "max": float("inf"), "n": 2.5})
    back = Message.model_validate_json(m.model_dump_json())
    assert back.params == {"fps": "nan", "max": "inf", "n": 2.5}
