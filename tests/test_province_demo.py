"""`edge-agent sim province` (`./run demo --province`) as a newcomer runs it: the printed
address answers, the printed login signs in, the centre's /api/fleet shows the province with
its handful of faults, and when it stops no process it started is left."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from agent.sim.province import ROLE_COUNTS, TOTAL_SITES, Role
from tests.test_dashboard import Client

pytestmark = pytest.mark.broker
ROOT = Path(__file__).resolve().parent.parent
# Long enough for the real agents' first check on a loaded machine; the test stops the demo
# with Ctrl-C (SIGINT) as soon as the province looks as it should, as a newcomer would.
RUN_S = 120.0


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes naming `text` (the demo's folder: the broker's, the
    centre's and each agent's configuration live there)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(f"{proc.name}: {cmdline}")
    return found


def test_the_province_demo_serves_the_wall_and_cleans_up(tmp_path):
    workdir = tmp_path / "province"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LC_ALL": "C.UTF-8"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent", "sim", "province", "--seconds",
         str(RUN_S), "--dir", str(workdir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    assert proc.stdout is not None
    printed = []
    try:
        for line in proc.stdout:
            printed.append(line)
            if line.startswith("Sign in"):
                # The demo's own clock runs from about now: stop looking well before it ends.
                deadline = time.monotonic() + RUN_S - 15
                break
        text = "".join(printed)
        url = re.search(r"page: (http://127\.0\.0\.1:\d+)", text)
        login = re.search(r"Sign in as (\S+), password (\S+) ", text)
        assert url and login, text + (proc.stderr.read() if proc.stderr else "")

        client = Client(url.group(1))
        with urllib.request.urlopen(url.group(1) + "/", timeout=10) as page:
            assert page.status == 200 and b"<html" in page.read().lower()
        assert client.login(login.group(1), "wrong")[0] == 401
        status, me = client.login(login.group(1), login.group(2))
        assert status == 200, me

        total = TOTAL_SITES
        light = {Role.FAULT: "fault", Role.DEGRADED: "degraded", Role.OFFLINE: "offline",
                 Role.SILENT: "silent"}  # fmt: skip
        want = {cond: ROLE_COUNTS[role] for role, cond in light.items()}
        want["never_seen"] = ROLE_COUNTS[Role.NEVER_SEEN]
        want["ready"] = total - sum(want.values())
        seen: Counter[str] = Counter()
        while time.monotonic() < deadline:
            status, data, _ = client.call("GET", "/api/fleet")
            assert status == 200
            seen = Counter(t["c"] for t in data["tiles"])
            if seen == want:
                break
            time.sleep(0.5)
        assert seen == want
        assert len(data["tiles"]) == total
        names = {t["id"]: t["name"] for t in data["tiles"]}
        assert names["hatay"] == "UBND tỉnh Hà Tây"
        assert names["hatay-bavi"] == "UBND huyện Ba Vì"
        att = data["counters"]["attendance"]
        assert att["session"] and att["sites"] > 600 and 0 < att["counted"] <= att["expected"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        rest = proc.stdout.read()
        assert "stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert processes_mentioning(str(workdir)) == []
