"""install.sh into a DESTDIR: what it puts where, idempotence, uninstall and purge.

DESTDIR installs create no user and call neither apt-get nor systemctl, and --no-venv skips
the virtualenv (which needs the network for the Python dependencies), so these run offline
in well under a second each. The script runs from a frozen copy of the checkout, so an edit
made meanwhile in the working tree cannot make a second install look non-idempotent.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

SOURCE = Path(__file__).resolve().parent.parent
SHIPPED = ("agent", "firmware_profiles", "systemd", "install.sh", "pyproject.toml", "README.md",
           "agent.example.toml", "schedule.example.toml")  # fmt: skip


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A frozen copy of what install.sh reads from the checkout."""
    copy = tmp_path_factory.mktemp("checkout")
    for name in SHIPPED:
        path = SOURCE / name
        if path.is_dir():
            shutil.copytree(path, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(path, copy / name)
    return copy


Install = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def install(repo: Path) -> Install:
    def run(dest: Path, *args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DESTDIR": str(dest)}
        env.pop("EDGE_AGENT_SKIP_PACKAGES", None)
        return subprocess.run(
            ["bash", str(repo / "install.sh"), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def snapshot(dest: Path) -> dict[str, tuple[int, str, int]]:
    """Every path with its mode, content hash and modification time."""
    found = {}
    for path in sorted(dest.rglob("*")):
        st = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        found[str(path.relative_to(dest))] = (st.st_mode, digest, st.st_mtime_ns)
    return found


@pytest.fixture
def dest(tmp_path: Path, install: Install) -> Path:
    root = tmp_path / "root"
    done = install(root, "--no-venv")
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def test_install_puts_everything_in_place(dest: Path, repo: Path) -> None:
    src = dest / "opt/edge-agent/src"
    for rel in (
        "agent/cli/__init__.py",
        "agent/led/patterns.py",
        "agent/locale/messages/camera.toml",
        "firmware_profiles/cisco-roomos.toml",
        "pyproject.toml",
        "agent.example.toml",
        "systemd/edge-agent.service",
    ):
        assert (src / rel).read_bytes() == (repo / rel).read_bytes(), rel
    assert not (src / "tests").exists() and not list(src.rglob("__pycache__"))
    assert (src / "install.sh").stat().st_mode & 0o111
    units = dest / "etc/systemd/system"
    for unit in ("edge-agent.service", "edge-agent-reboot.service"):
        assert (units / unit).read_bytes() == (repo / "systemd" / unit).read_bytes()
        assert (units / unit).stat().st_mode & 0o777 == 0o644
    rule = dest / "etc/polkit-1/rules.d/50-edge-agent-reboot.rules"
    assert rule.read_bytes() == (repo / "systemd/50-edge-agent-reboot.rules").read_bytes()
    config = dest / "etc/edge-agent/agent.toml"
    assert config.read_bytes() == (repo / "agent.example.toml").read_bytes()
    assert config.stat().st_mode & 0o777 == 0o640  # may hold the broker password
    assert (dest / "etc/edge-agent").stat().st_mode & 0o777 == 0o750
    assert (dest / "var/lib/edge-agent").is_dir()
    assert not (dest / "opt/edge-agent/venv").exists()


def test_the_simulator_stays_in_the_checkout(dest: Path) -> None:
    src = dest / "opt/edge-agent/src"
    assert (SOURCE / "agent/sim/site.py").is_file()
    assert (src / "agent/cli/sim.py").is_file() and not (src / "agent/sim").exists()
    # As the site's virtualenv runs it: `agent` from the copy, the dependencies installed.
    # -S keeps this checkout's own editable install out (it would find agent/sim here).
    env = {k: v for k, v in os.environ.items() if k not in ("LC_ALL", "LC_MESSAGES", "LANG")}
    env["PYTHONPATH"] = sysconfig.get_paths()["purelib"]
    done = subprocess.run(
        [sys.executable, "-S", "-m", "agent", "sim", "demo"],
        cwd=src, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("edge-agent: the simulator is not installed here")
    assert "./run demo" in done.stderr and "Traceback" not in done.stderr


def test_install_says_what_it_did_not_do(tmp_path: Path, install: Install) -> None:
    done = install(tmp_path / "root", "--no-venv")
    out = done.stdout
    assert "skipped: apt-get install" in out
    assert "skipped: creating user edge-agent (DESTDIR install)" in out
    assert "skipped: virtualenv" in out and "(--no-venv)" in out
    assert "skipped: systemctl daemon-reload; systemctl enable edge-agent" in out
    assert "not done (4)" in out


def test_second_install_changes_nothing(dest: Path, install: Install) -> None:
    before = snapshot(dest)
    done = install(dest, "--no-venv")
    assert done.returncode == 0, done.stderr
    assert "done: nothing to change" in done.stdout and "changed:" not in done.stdout
    assert snapshot(dest) == before


def test_edited_config_is_never_overwritten(dest: Path, install: Install) -> None:
    config = dest / "etc/edge-agent/agent.toml"
    edited = config.read_text().replace('site_id = "hn-phuc-tho-01"', 'site_id = "dn-hoa-vang"')
    config.write_text(edited)
    done = install(dest, "--no-venv")
    assert f"kept {config} (never overwritten)" in done.stdout
    assert config.read_text() == edited


def test_install_repairs_damage_and_drops_files_no_longer_shipped(
    dest: Path, install: Install, repo: Path
) -> None:
    src = dest / "opt/edge-agent/src"
    (src / "agent/led/patterns.py").write_text("broken\n")
    (src / "agent/old_module.py").write_text("gone in this release\n")
    (src / "systemd/edge-agent.service").chmod(0o600)
    (src / "agent/__pycache__").mkdir()
    (src / "agent/__pycache__/cli.cpython-311.pyc").write_bytes(b"\0")
    done = install(dest, "--no-venv")
    led = "agent/led/patterns.py"
    assert (src / led).read_bytes() == (repo / led).read_bytes()
    assert not (src / "agent/old_module.py").exists()
    assert (src / "systemd/edge-agent.service").stat().st_mode & 0o777 == 0o644
    assert (src / "agent/__pycache__/cli.cpython-311.pyc").exists()  # build output stays
    assert "done: 3 change(s)" in done.stdout


def test_uninstall_keeps_config_and_state_then_purge_removes_them(
    dest: Path, install: Install
) -> None:
    state = dest / "var/lib/edge-agent/outbox.sqlite3"
    state.write_text("queued reports")
    config = dest / "etc/edge-agent/agent.toml"
    done = install(dest, "--uninstall")
    assert done.returncode == 0, done.stderr
    assert not (dest / "opt/edge-agent").exists()
    assert not (dest / "etc/systemd/system/edge-agent.service").exists()
    assert not (dest / "etc/systemd/system/edge-agent-reboot.service").exists()
    assert not (dest / "etc/polkit-1/rules.d/50-edge-agent-reboot.rules").exists()
    assert config.exists() and state.read_text() == "queued reports"
    assert "remove with --purge" in done.stdout
    again = install(dest, "--uninstall")  # idempotent too
    assert again.returncode == 0 and "nothing to change" in again.stdout

    done = install(dest, "--purge")
    assert done.returncode == 0, done.stderr
    assert not config.exists() and not state.exists()
    assert not (dest / "etc/edge-agent").exists() and not (dest / "var/lib/edge-agent").exists()
    assert "skipped: removing user edge-agent (DESTDIR install)" in done.stdout


def test_reinstall_after_uninstall_keeps_the_old_config(dest: Path, install: Install) -> None:
    config = dest / "etc/edge-agent/agent.toml"
    config.write_text("# mine\n")
    install(dest, "--uninstall")
    install(dest, "--no-venv")
    assert config.read_text() == "# mine\n"
    assert (dest / "etc/systemd/system/edge-agent.service").exists()


def test_bad_option_prints_usage(tmp_path: Path, install: Install) -> None:
    done = install(tmp_path / "root", "--frobnicate")
    assert done.returncode == 2 and "--uninstall" in done.stderr
    assert not (tmp_path / "root").exists()


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_refuses_a_system_install_without_root() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DESTDIR"}
    done = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "bash",
            str(SOURCE / "install.sh"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1 and "run as root" in done.stderr
