"""`edge-agent attendance count` under LANG=vi_VN.UTF-8: the real CLI counting a generated
video prints no English sentence, and neither does a count that cannot be made."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agent.sim.crowd import RoomSpec, make_room_clip
from agent.sim.video import make_clip
from tests.test_cli_vietnamese import assert_vietnamese, cli, vi_env

MODELS = Path(__file__).resolve().parents[1] / "models"
ROOM = RoomSpec(960, 540, rows=2, seats=6, face_front=60, face_back=40, seed=21)


def _config(tmp_path: Path, source: Path | str) -> Path:
    config = tmp_path / "agent.toml"
    config.write_text(
        '[site]\nsite_id = "t"\nname = "t"\ntier = "commune"\n'
        f'[camera]\nsource = "{source}"\nwidth = 960\nheight = 540\nfps = 10\n'
        f'[paths]\nstate_dir = "{tmp_path}"\n'
    )
    return config


def _count(config: Path, lang: str = "vi_VN.UTF-8") -> tuple[int, str]:
    done = cli("attendance", "count", "--config", str(config), "--models-dir", str(MODELS),
               env=vi_env(LANG=lang))  # fmt: skip
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout


def test_counting_a_room_reads_in_vietnamese(tmp_path: Path) -> None:
    clip = make_room_clip(tmp_path / "room.avi", ROOM, seconds=2, fps=10)
    config = _config(tmp_path, clip)
    code, out = _count(config)
    assert code == 0, out
    assert "12 người (trung vị của 5 khung hình" in out
    assert_vietnamese(out, names=(str(clip), "centerface"))
    code, out = _count(config, "C.UTF-8")
    assert code == 0 and "12 people (median of 5 frames" in out


@pytest.mark.parametrize("kind", ["black", "no stream"])
def test_a_count_that_cannot_be_made_says_why_in_vietnamese(kind: str, tmp_path: Path) -> None:
    source = (
        make_clip(tmp_path / "black.avi", "black", seconds=3, fps=10)
        if kind == "black"
        else tmp_path / "nothing-here.avi"
    )
    code, out = _count(_config(tmp_path, source))
    assert code == 3, out
    assert "không đếm được" in out
    assert_vietnamese(out, names=(str(source),))


def test_a_snapshot_and_its_refusals_read_in_vietnamese(tmp_path: Path) -> None:
    clip = make_room_clip(tmp_path / "room.avi", ROOM, seconds=1, fps=10)
    config = _config(tmp_path, clip)
    argv = ["attendance", "snapshot", "--config", str(config), "--models-dir", str(MODELS)]
    out = tmp_path / "faces.jpg"
    done = cli(*argv, "--frames", "1", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.stat().st_mode & 0o777 == 0o600
    assert done.stdout.startswith(f"đã ghi {out}: đếm được 12 người"), done.stdout
    assert_vietnamese(done.stdout)
    # A picture type it cannot write, a folder that is not there, no model: each refused.
    for bad in (["--out", str(tmp_path / "faces.gif")], ["--out", str(tmp_path / "no/x.png")]):
        done = cli(*argv, "--frames", "1", *bad)
        assert done.returncode != 0 and done.stderr, done.stdout
        assert_vietnamese(done.stderr)
    done = cli(*argv[:-1], str(tmp_path), "--out", str(out))
    assert "mô hình nhận diện centerface: chưa cài đặt" in done.stderr, done.stderr
    assert_vietnamese(done.stderr.replace(sys.executable, " "))
    done = cli(*argv, "--frames", "0", "--out", str(out))
    assert done.returncode == 2 and "từ 1 đến 100" in done.stderr, done.stderr


def test_a_picture_that_is_not_there_or_not_a_picture_is_refused_in_vietnamese(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path, tmp_path / "no-camera")
    (tmp_path / "bad.png").write_text("not a picture\n")
    for image, said in (("missing.png", "không có tệp này"), ("bad.png", "không đọc được")):
        done = cli("attendance", "count", "--config", str(config), "--models-dir", str(MODELS),
                   "--image", str(tmp_path / image))  # fmt: skip
        assert done.returncode == 3 and said in done.stderr, done.stderr
        assert_vietnamese(done.stderr)


def test_the_model_installer_reads_in_vietnamese(tmp_path: Path) -> None:
    def models(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "agent.attendance.models", *args], capture_output=True,
            text=True, env=vi_env(), timeout=60, check=False,
        )  # fmt: skip

    ok, missing, helped = (
        models("verify", str(MODELS)),
        models("verify", str(tmp_path)),
        models("install", "-h"),
    )
    assert ok.returncode == 0 and ok.stdout == f"centerface: đạt: {MODELS / 'centerface.onnx'}\n"
    assert missing.returncode == 1
    assert "mô hình nhận diện centerface: chưa cài đặt" in missing.stderr, missing.stderr
    assert helped.returncode == 0
    for done in (ok.stdout, missing.stderr.replace(sys.executable, " "), helped.stdout):
        assert_vietnamese(done, names=("centerface", "python -m agent.attendance.models install"))
