"""`edge-agent attendance count|snapshot` on real pictures and generated video."""

import argparse
import json
import stat
from pathlib import Path

import cv2
import pytest

from agent.cli import attendance as cli_attendance
from agent.errors import AgentError
from agent.sim.crowd import Room, RoomSpec, make_room_clip, no_face_image
from agent.sim.video import make_clip

MODELS = Path(__file__).resolve().parents[1] / "models"
ROOM = RoomSpec(960, 540, rows=2, seats=6, face_front=60, face_back=40, seed=21)


def run(*argv):
    parser = argparse.ArgumentParser(prog="edge-agent")
    parser.add_argument("--config")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_attendance.add_parsers(sub)
    args = parser.parse_args([str(a) for a in argv])
    return args.func(args)


@pytest.fixture
def site(tmp_path):
    """A settings file whose camera is a generated video of ROOM, and a picture of it."""
    clip = make_room_clip(tmp_path / "room.avi", ROOM, seconds=2, fps=10)
    picture = tmp_path / "room.png"
    cv2.imwrite(str(picture), Room(ROOM).render(0))
    config = tmp_path / "agent.toml"
    config.write_text(
        '[site]\nsite_id = "t"\nname = "t"\ntier = "commune"\n'
        f'[camera]\nsource = "{clip}"\nwidth = 960\nheight = 540\nfps = 10\n'
    )
    return config, picture


def files_in(path):
    return sorted(p.name for p in Path(path).iterdir())


def test_count_image_json_gives_the_number_of_people(site, capsys):
    config, picture = site
    before = files_in(picture.parent)
    code = run(
        "--config",
        config,
        "attendance",
        "count",
        "--image",
        picture,
        "--json",
        "--models-dir",
        MODELS,
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["count"] == Room(ROOM).count == 12
    assert (out["frames"], out["frames_used"], out["detector"]) == (1, 1, "centerface")
    assert files_in(picture.parent) == before  # counting never writes a picture


def test_count_a_picture_without_people(site, tmp_path, capsys):
    config, _ = site
    cat = tmp_path / "cat.png"
    cv2.imwrite(str(cat), no_face_image("chelsea"))
    assert (
        run(
            "--config",
            config,
            "attendance",
            "count",
            "--image",
            cat,
            "--json",
            "--models-dir",
            MODELS,
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["count"] == 0


def test_count_live_burst_in_words(site, capsys):
    config, _ = site
    assert run("--config", config, "attendance", "count", "--camera", "--models-dir", MODELS) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"camera {config.parent / 'room.avi'}: 12 people (median of 5 frames")
    assert "centerface" in line


def test_count_with_the_lens_covered_is_unknown(site, tmp_path, capsys):
    config, _ = site
    black = make_clip(tmp_path / "black.avi", "black", seconds=3, fps=10)
    config.write_text(config.read_text().replace(str(config.parent / "room.avi"), str(black)))
    code = run("--config", config, "attendance", "count", "--json", "--models-dir", MODELS)
    out = json.loads(capsys.readouterr().out)
    assert code == 3
    assert out["count"] is None
    assert out["unknown_reason"] == "camera sees only darkness (lens covered or lights off)"


def test_snapshot_writes_the_boxed_picture_for_its_owner_only(site, tmp_path, capsys):
    config, picture = site
    out = tmp_path / "snap.png"
    assert (
        run(
            "--config",
            config,
            "attendance",
            "snapshot",
            "--out",
            out,
            "--image",
            picture,
            "--models-dir",
            MODELS,
        )
        == 0
    )
    assert "12 counted" in capsys.readouterr().out
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    drawn = cv2.imread(str(out))
    assert drawn.shape == (540, 960, 3)
    # Boxes are drawn: the picture differs from the original where faces are.
    original = cv2.imread(str(picture))
    x1, y1, x2, y2 = (round(v) for v in Room(ROOM).faces[0])
    assert (cv2.absdiff(drawn, original)[y1 - 4 : y2 + 4, x1 - 4 : x2 + 4] > 60).any()


def test_snapshot_from_the_camera(site, tmp_path):
    config, _ = site
    out = tmp_path / "live.jpg"
    assert (
        run(
            "--config",
            config,
            "attendance",
            "snapshot",
            "--out",
            out,
            "--frames",
            3,
            "--models-dir",
            MODELS,
        )
        == 0
    )
    assert cv2.imread(str(out)).shape == (540, 960, 3)


def test_snapshot_refuses_a_missing_folder_and_odd_types(site, tmp_path):
    config, picture = site
    with pytest.raises(AgentError, match="does not exist"):
        run(
            "--config",
            config,
            "attendance",
            "snapshot",
            "--out",
            tmp_path / "no" / "x.png",
            "--image",
            picture,
            "--models-dir",
            MODELS,
        )
    with pytest.raises(AgentError, match="unsupported type"):
        run(
            "--config",
            config,
            "attendance",
            "snapshot",
            "--out",
            tmp_path / "x.gif",
            "--image",
            picture,
            "--models-dir",
            MODELS,
        )


def test_missing_model_error_names_the_install_command(site, tmp_path):
    config, picture = site
    with pytest.raises(AgentError) as err:
        run(
            "--config",
            config,
            "attendance",
            "count",
            "--image",
            picture,
            "--models-dir",
            tmp_path / "models",
        )
    assert f"-m agent.attendance.models install {tmp_path / 'models'}" in str(err.value)


def test_unreadable_image(site, tmp_path):
    config, _ = site
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a picture")
    with pytest.raises(AgentError, match="cannot be read"):
        run("--config", config, "attendance", "count", "--image", bad, "--models-dir", MODELS)


def test_image_and_camera_are_exclusive(site):
    config, picture = site
    with pytest.raises(SystemExit):
        run("--config", config, "attendance", "count", "--image", picture, "--camera")
