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


def test_a_mistyped_environment_variable_is_an_error_naming_it(tmp_path: Path) -> None:
    agent_toml = tmp_path / "agent.toml"
    agent_toml.write_text(dump_toml(SITE))
    centre_toml = tmp_path / "centre.toml"
    centre_toml.write_text(dump_toml({"db_path": str(tmp_path / "centre.sqlite")}))
    Store(tmp_path / "centre.sqlite").close()
    clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("EDGE_AGENT_")}

    def run(extra: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        return edge_agent(*args, env={**clean, **extra})

    for typo in ("EDGE_AGENT_LOGLEVEL", "EDGE_AGENT_BROKR__HOST", "edge_agent_brokr__host"):
        bad = run({typo: "debug"}, "config", "check", "--config", str(agent_toml))
        assert bad.returncode == 3, bad.stderr
        assert f"environment {typo}: no such setting" in bad.stderr
        assert "sections: site, broker," in bad.stderr and "fields: log_level" in bad.stderr
    vi = run(
        {"EDGE_AGENT_LOGLEVEL": "x", "LANG": "vi_VN.UTF-8"},
        "config",
        "check",
        "--config",
        str(agent_toml),
    )
    assert "biến môi trường EDGE_AGENT_LOGLEVEL: không có thiết lập này" in vi.stderr
    # Variables read by name, and the centre's own, stay allowed for the agent.
    fine = {
        "EDGE_AGENT_CONFIG": str(agent_toml),
        "EDGE_AGENT_CENTRE_BROKER__HOST": "10.0.0.5",
        "EDGE_AGENT_PROFILE_PASSWORD": "x",
        "EDGE_AGENT_LOG_LEVEL": "debug",
        "EDGE_AGENT_BROKER__PORT": "1884",
    }
    ok = run(fine, "config", "check")
    assert ok.returncode == 0, ok.stderr
    assert "broker 127.0.0.1:1884" in ok.stdout

    bad = run(
        {"EDGE_AGENT_CENTRE_BROKR__HOST": "x"}, "centre", "status", "--config", str(centre_toml)
    )
    assert bad.returncode == 3 and "EDGE_AGENT_CENTRE_BROKR__HOST: no such setting" in bad.stderr
    assert "sections: broker, alerts;" in bad.stderr and "db_path" in bad.stderr
    fine = {"EDGE_AGENT_CENTRE_KEY": "k.key", "EDGE_AGENT_LOG_LEVEL": "debug"}
    ok = run(fine, "centre", "status", "--config", str(centre_toml), "--json")
    assert ok.returncode == 0, ok.stderr
