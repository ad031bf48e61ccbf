"""The README's main command: a simulated site checked, then reporting to a local broker,
with the centre's view printed."""

import subprocess
import sys


def test_demo_shows_check_table_and_the_centres_view():
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "sim", "demo", "--seconds", "13", "--fault-after", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "== edge-agent check" in out
    assert "site verdict: READY" in out, out  # the whole table: which component, and why
    assert "vc/sim-commune-01/availability" in out
    assert "online" in out
    # the lens covered after 2 s reaches the centre as a FAULT at the 8 s check
    assert "FAULT (after a check): camera fail" in out
    assert "retained, as a centre connecting now sees the site" in out
    assert "offline clean shutdown" in out
