"""The daemon at a site: a schedule from the centre triggers a pre-session check, the
technician's CLI talks to the daemon through its control socket, the LED follows the state."""

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from agent.cli import main
from agent.config import Settings
from agent.runtime.daemon import Agent
from agent.sim.sysfs import led_view, led_write
from agent.transport.listener import Listener
from tests.fixtures.broker import agent_config, dump_toml, wait_until

pytestmark = pytest.mark.broker


@pytest.fixture
def site(broker, sysfs, tmp_path):
    config = agent_config(broker, tmp_path / "state", check_interval_s=3600)
    config["paths"]["sysfs_root"] = str(sysfs)
    config["led"] = {"enabled": True}
    config["schedule"] = {"local_file": str(tmp_path / "none.toml")}
    path = tmp_path / "agent.toml"
    path.write_text(dump_toml(config))
    centre = Listener(broker.endpoint(), ["vc/s1/#"]).start()
    agent = Agent(Settings(**config), led_write=led_write)
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
    thread.start()
    assert wait_until(lambda: agent.link.status().connected and agent.last_check, 15)
    # The LED follows at the loop's next pass after the check is saved: wait for it too, or
    # a test asking at once may see "checking" (seen in CI under load).
    assert wait_until(lambda: agent.led_pattern == "ready", 5)
    yield agent, path, centre, sysfs
    stop.set()
    thread.join(15)
    centre.stop()


def checks(centre, trigger):
    return [m.json() for m in centre.messages("vc/s1/checks") if m.json()["trigger"] == trigger]


def test_centre_schedule_runs_a_pre_session_check_and_shows_next_session(site):
    _agent, _path, centre, _sysfs = site
    start = datetime.now(UTC) + timedelta(minutes=59, seconds=30)  # inside the 60-min lead
    schedule = {
        "schema_version": "1",
        "entries": [
            {
                "session_id": "hn-2026-11-25",
                "title": "Hội nghị trực tuyến",
                "start": start.isoformat(),
                "end": (start + timedelta(hours=2)).isoformat(),
            }
        ],
    }
    centre.publish("vc/s1/schedule", json.dumps(schedule).encode(), retain=True)
    assert centre.wait_for(lambda _ms: checks(centre, "pre-session"), 15)
    assert len(checks(centre, "pre-session")) == 1  # once, not on every loop

    def next_sessions(_ms):
        return [m.json()["next_session"] for m in centre.messages("vc/s1/state")]

    assert centre.wait_for(lambda ms: any(next_sessions(ms)), 5)
    assert next_sessions(None)[-1]["session_id"] == "hn-2026-11-25"


def test_status_and_check_go_through_the_daemon(site, capsys):
    _agent, path, centre, sysfs = site
    assert main(["--config", str(path), "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["verdict"] == "ready"
    assert status["link"]["connected"] is True
    assert [r["component"] for r in status["results"]] == ["network"]
    assert status["led"] == "ready"
    assert led_view(sysfs / "class/leds/status:green").lit

    assert main(["--config", str(path), "check", "network"]) == 0
    assert "network" in capsys.readouterr().out
    # the daemon ran it (and reported it): the CLI did not open the devices itself
    assert centre.wait_for(lambda _ms: checks(centre, "command"), 10)


def test_identify_blinks_then_returns_to_the_site_pattern(site):
    agent, _path, _centre, sysfs = site
    agent.identify(0.6)
    assert agent.led_pattern == "identify"
    assert wait_until(lambda: agent.led_pattern == "ready", 5)
    assert led_view(sysfs / "class/leds/status:green").lit
