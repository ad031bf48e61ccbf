"""The symbolic-id message catalogue (agent/locale/messages/) and its renderer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from agent import messages
from agent.i18n import _, po_text, set_language, t
from agent.messages import (
    ID_PATTERN,
    CatalogueError,
    Message,
    catalogue,
    fields,
    message,
    render,
    render_or,
)

AGENT = Path(__file__).resolve().parent.parent / "agent"


KEYS = {"en", "vi", "sep", "en_one", "en_plural"}


def test_every_id_has_english_and_vietnamese_with_the_same_parameters() -> None:
    entries = catalogue()
    assert len(entries) >= 50
    bad = {}
    for msg_id, entry in entries.items():
        problems = []
        if not re.match(ID_PATTERN, msg_id):
            problems.append("id is not dotted lower-case words")
        if set(entry) - KEYS:
            problems.append(f"unknown keys {sorted(set(entry) - KEYS)}")
        if not entry.get("en", "").strip() or not entry.get("vi", "").strip():
            problems.append("en or vi missing or empty")
        elif msg_id.startswith("argparse."):  # argparse's own %-style texts
            if set(re.findall(r"%\(\w+\)", entry["en"])) != set(
                re.findall(r"%\(\w+\)", entry["vi"])
            ):
                problems.append("%(name) fields differ between en and vi")
        elif fields(entry["en"]) != fields(entry["vi"]):
            problems.append(f"params differ: {fields(entry['en'])} vs {fields(entry['vi'])}")
        elif "en_one" in entry and fields(entry["en_one"]) - fields(entry["en"]):
            problems.append("en_one uses a parameter en does not have")
        if problems:
            bad[msg_id] = problems
    assert bad == {}


def _imports_t(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "agent.i18n"
        and any(alias.name == "t" for alias in node.names)
        for node in tree.body
    )


def _used_ids() -> dict[str, list[str]]:
    """Each id given to message() or t() in agent/, with where. An id may be a literal or a
    module-level constant; a call whose id is neither is reported as such (the renderers'
    own definitions excepted), so this scan sees every id the code can make."""
    used: dict[str, list[str]] = {}
    for path in sorted(AGENT.rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name) and isinstance(node.value.value, str)
        }
        renderers = {"message"} | ({"t"} if _imports_t(tree) else set())
        for node in ast.walk(tree):
            where = f"{path.relative_to(AGENT.parent)}:{getattr(node, 'lineno', 0)}"
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in renderers
            ):
                continue
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant):
                key = str(arg.value)
            elif isinstance(arg, ast.Name) and arg.id in constants:
                key = constants[arg.id]
            elif isinstance(arg, ast.Name) and arg.id == "msg_id" and path.name == "i18n.py":
                continue  # t() itself passes its caller's id on
            else:
                key = "<not a literal>"
            used.setdefault(key, []).append(where)
    return used


def test_every_id_the_code_uses_is_in_the_catalogue() -> None:
    used = _used_ids()
    assert len(used) >= 40  # the scan finds the converted probes' messages
    missing = {i: where for i, where in used.items() if i not in catalogue()}
    assert missing == {}


def test_the_catalogue_refuses_an_id_outside_its_area(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "camera.toml").write_text('[network.down]\nen = "down"\nvi = "mất"\n')
    monkeypatch.setattr(messages, "CATALOGUE_DIR", tmp_path)
    catalogue.cache_clear()
    try:
        with pytest.raises(CatalogueError, match=r"camera.toml: id network.down belongs"):
            catalogue()
    finally:
        catalogue.cache_clear()


def test_t_and_the_gettext_view() -> None:
    assert render(message("camera.name", source="x"), "vi") == "camera x"
    # t() renders in the process language; gettext finds argparse's texts by their English,
    # and nothing else (an id's English stays English through gettext).
    set_language("vi")
    try:
        assert t("camera.source_empty") == "camera.source đang để trống"
        assert _("usage: ") == "cách dùng: "
        assert _("camera.source is empty") == "camera.source is empty"
    finally:
        set_language("en")
    assert t("camera.source_empty") == "camera.source is empty"
    assert 'msgctxt "camera.source_empty"' in po_text("vi")


def test_english_says_one_in_the_singular(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "attendance.toml").write_text(
        '[attendance.people]\nen = "{count} people"\nen_one = "{count} person"\n'
        'vi = "{count} người"\n'
    )
    monkeypatch.setattr(messages, "CATALOGUE_DIR", tmp_path)
    catalogue.cache_clear()
    try:
        assert message("attendance.people", count=1).text == "1 person"
        assert message("attendance.people", count=2).text == "2 people"
        assert render(message("attendance.people", count=1), "vi") == "1 người"
    finally:
        catalogue.cache_clear()


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


# The libraries' own texts: translated by their English, which may be a word we also use.
def test_gettext_sees_only_the_texts_looked_up_by_their_english() -> None:
    """gettext finds a text by its English: were our ids in it, two entries with the same
    English ("check" the column, "check" the cause) would let one Vietnamese silently
    replace the other. Only argparse's own texts go that way."""
    from agent.i18n import GETTEXT_AREAS, gettext_messages  # noqa: PLC0415

    looked_up = {
        e["en"] + ("\0" + e["en_plural"] if "en_plural" in e else "")
        for i, e in catalogue().items()
        if i.split(".", 1)[0] in GETTEXT_AREAS
    }
    assert len(looked_up) >= 20  # argparse's usage, errors and plurals
    assert set(gettext_messages("vi")) == looked_up | {""}
