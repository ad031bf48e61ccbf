"""Issue 19 end to end, every part real: the agent daemon (`python -m agent run`, a child
process) with the Cisco codec on a pty emulator playing a call scenario, the session (with its
conference address) put in the site's schedule by `centre schedule add`, a real mosquitto and
the centre's real ingest writing its store. In the call -> the store says `in_call`; the far
end hangs up -> `dropped` (the time from the emulator's switch to the store is printed);
`centre send rejoin` -> the emulator sees the Dial, goes back to connected -> `in_call`.

`[session] poll_s` is 0.5 s here (the default is 5 s) so the test stays short; bench/live.py
measures the way at the defaults."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.centre.ingest import Ingest
from agent.centre.settings import CentreSettings
from agent.cli import main
from agent.probes.call import read_call
from agent.profiles.loader import load_profile
from agent.profiles.session import Target
from agent.sim.broker import Mosquitto
from agent.sim.recording import Recording, load_recording
from agent.sim.serial_device import PtyDevice
from tests.fixtures.broker import ROOT, AgentProcess, agent_config, dump_toml, wait_until
from tests.test_centre import centre_config

pytestmark = pytest.mark.broker

ADDRESS = "hop-tinh@mcu.example.vn"
DIAL = f'xCommand Dial Number: "{ADDRESS}"'.encode()
POLL_S = 0.5


def held_call() -> Recording:
    """The recording's `rejoin` scenario, its first step (connected) held until the test
    says the far end hangs up (`jump("dropped")`) instead of ending after one poll: the
    moment of the drop is then known to the test, which measures from it."""
    rec = load_recording("cisco-roomos_ce9.15-calls")
    steps = list(rec.scenarios["rejoin"])
    assert steps[0].name == "connected" and steps[1].name == "dropped"
    steps[0] = steps[0].model_copy(update={"polls": None})
    return rec.model_copy(update={"scenarios": {**rec.scenarios, "rejoin": steps}})


@pytest.fixture
def codec() -> Iterator[PtyDevice]:
    dev = PtyDevice(held_call(), scenario="rejoin").start()
    yield dev
    dev.stop()


def stored_verdict(db: Path, site_id: str) -> str | None:
    if not db.exists():
        return None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        try:
            row = conn.execute("SELECT verdict FROM live WHERE site_id = ?", (site_id,)).fetchone()
        except sqlite3.OperationalError:  # the ingest has not made its tables yet
            return None
    return None if row is None else str(row[0])


def stored_events(db: Path, site_id: str) -> list[tuple[str | None, str]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute(
            "SELECT before, after FROM live_events WHERE site_id = ? ORDER BY seq", (site_id,)
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def live_status(centre_toml: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """`centre status --json`'s live picture, as an operator sees it."""
    capsys.readouterr()
    main(["centre", "status", "--config", str(centre_toml), "--json"])
    live: dict[str, Any] = json.loads(capsys.readouterr().out)["live"]
    return live


def test_a_site_drops_out_is_seen_dropped_then_rejoins(
    broker: Mosquitto, codec: PtyDevice, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stem = tmp_path / "keys" / "centre-test"
    assert main(["centre", "keygen", "--out", str(stem)]) == 0
    cfg = centre_config(broker, tmp_path, silent_after=30.0)
    cfg |= {"command_key": str(stem.with_suffix(".key")), "key_id": "centre-test"}
    centre_toml = tmp_path / "centre.toml"
    centre_toml.write_text(dump_toml(cfg))
    db = Path(cfg["db_path"])
    ingest = Ingest(CentreSettings.model_validate(cfg)).start()

    config = agent_config(broker, tmp_path / "state", "s1", check_interval_s=3600.0)
    config["site"]["tier"] = "commune"
    config["commands"] = {"keys": [{"key_id": "centre-test", "path": str(stem) + ".pub"}]}
    config["codec"] = {"enabled": True, "port": codec.port, "password": "secret"}
    config["session"] = {"poll_s": POLL_S}
    agent = AgentProcess(config, tmp_path).start()
    try:
        now = datetime.now(UTC)
        when = ["--start", (now - timedelta(minutes=5)).isoformat(),
                "--end", (now + timedelta(hours=1)).isoformat()]  # fmt: skip
        assert main(["centre", "schedule", "add", "S1", "--config", str(centre_toml), *when,
                     "--site", "s1", "--conference", ADDRESS]) == 0  # fmt: skip
        assert wait_until(lambda: stored_verdict(db, "s1") == "in_call", 20), agent.log()

        codec.jump("dropped")  # the far end hangs up
        switched = time.monotonic()
        assert wait_until(lambda: stored_verdict(db, "s1") == "dropped", 10, 0.01), agent.log()
        seen_s = time.monotonic() - switched
        with capsys.disabled():
            print(f"\ndrop seen in the centre's store {seen_s:.2f} s after the codec's switch")
        assert seen_s < POLL_S + 2.0  # one poll, the outbox, the broker, the ingest's batch
        assert DIAL not in codec.requests  # never automatic unless settings say so
        (site,) = live_status(centre_toml, capsys)["sites"]
        assert (site["site_id"], site["state"]) == ("s1", "dropped")

        capsys.readouterr()
        send = ["centre", "send", "rejoin", "--site", "s1", "--config", str(centre_toml),
                "--timeout", "15"]  # fmt: skip
        assert main(send) == 0, capsys.readouterr().out + agent.log()
        assert "succeeded" in capsys.readouterr().out
        assert DIAL in codec.requests
        assert wait_until(lambda: stored_verdict(db, "s1") == "in_call", 10), agent.log()

        live = live_status(centre_toml, capsys)
        counts = {k: v for k, v in live["counts"].items() if v}
        assert live["session_id"] == "S1" and counts == {"in_call": 1}
        assert live["sites"] == []  # the problem list: nobody left out
    finally:
        assert agent.terminate() == 0
        ingest.stop()
    assert wait_until(lambda: len(stored_events(db, "s1")) >= 3, 0)
    assert stored_events(db, "s1") == [
        (None, "in_call"),
        ("in_call", "dropped"),
        ("dropped", "in_call"),
    ]


def test_looks_at_one_codec_from_several_threads_take_turns_on_its_line(codec: PtyDevice) -> None:
    """The live watch's poll, the self-test and a command share the codec's one line: at the
    same moment, each gets its own answer, none the other's bytes."""
    profile = load_profile(ROOT / "firmware_profiles", "cisco-roomos")
    target = Target(port=codec.port, username="admin", password="secret")
    with ThreadPoolExecutor(4) as pool:
        states = list(pool.map(lambda _: read_call(profile, target, 10.0), range(8)))
    assert [s.in_call for s in states] == [True] * 8
