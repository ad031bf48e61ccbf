"""The command line's entry: options where people type them, and a reader that leaves early."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from agent.centre.store import Store
from tests.fixtures.broker import ROOT, dump_toml

SITE = {"site": {"site_id": "s1", "name": "Site 1", "tier": "commune"}}


def edge_agent(
    *args: str, stdout: int | None = subprocess.PIPE, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent", *args],
        cwd=ROOT,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def test_config_is_accepted_after_the_command(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(dump_toml(SITE))
    after = edge_agent("config", "check", "--config", str(config))
    assert after.returncode == 0, after.stderr
    assert f"{config}: OK - site s1" in after.stdout
    # After the command wins over before it.
    both = edge_agent(
        "--config", str(tmp_path / "nope.toml"), "config", "check", "--config", str(config)
    )
    assert both.returncode == 0, both.stderr


def test_a_reader_that_leaves_early_gets_no_traceback(tmp_path: Path) -> None:
    """`edge-agent centre status | head`: the pipe's reader is gone before the writing."""
    Store(tmp_path / "centre.sqlite").close()
    config = tmp_path / "centre.toml"
    config.write_text(dump_toml({"db_path": str(tmp_path / "centre.sqlite")}))
    for args in (("centre", "status", "--config", str(config)), ("profiles", "list")):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            proc = edge_agent(*args, stdout=write_end)
        finally:
            os.close(write_end)
        assert "Traceback" not in proc.stderr and "Error" not in proc.stderr, proc.stderr
        assert proc.returncode == 141, (args, proc.stderr)
