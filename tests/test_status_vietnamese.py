"""`edge-agent status` under LANG=vi_VN.UTF-8 says why the agent has no broker in Vietnamese.

The real daemon runs as a subprocess; the real CLI asks it over the control socket.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from agent.sim.broker import Mosquitto
from tests.fixtures.broker import agent_config
from tests.test_cli_vietnamese import assert_vietnamese, status_of_a_running_agent


def _status_without_broker(config: dict[str, Any], tmp_path: Path) -> tuple[str, dict[str, Any]]:
    """The daemon's `status` text (and --json) once it has a check and a broker error."""
    config["site"]["name"] = "UBND xã Phúc Thọ"
    # The network check looks at a port that answers: only the broker line is in question.
    listening = socket.create_server(("127.0.0.1", 0))
    config["network"]["targets"] = [
        {"name": "lan", "host": "127.0.0.1", "port": listening.getsockname()[1]}
    ]
    try:
        done, snap = status_of_a_running_agent(
            config, tmp_path, lambda snap: bool(snap["link"]["last_error"])
        )
        assert "Traceback" not in done.stderr
        return done.stdout, snap
    finally:
        listening.close()


def test_status_says_the_broker_port_is_closed_in_vietnamese(tmp_path: Path) -> None:
    nobody = Mosquitto(tmp_path / "broker")  # its port, with no broker listening on it
    config = agent_config(nobody, tmp_path / "state", "hn-01", check_interval_s=3600)
    text, snap = _status_without_broker(config, tmp_path)
    assert snap["link"]["last_error_msg"]["id"] == "mqtt.unreachable"
    assert f"máy chủ MQTT 127.0.0.1:{nobody.port}: không có gì trả lời ở cổng đó" in text
    assert_vietnamese(text, names=("UBND", "network", "Asia/Ho_Chi_Minh", "UTC"))


def test_status_says_the_broker_refused_the_password_in_vietnamese(
    broker_password: Mosquitto, tmp_path: Path
) -> None:
    config = agent_config(broker_password, tmp_path / "state", "hn-01", check_interval_s=3600)
    config["broker"]["password"] = "not-the-password"  # a wrong one, on purpose
    text, snap = _status_without_broker(config, tmp_path)
    assert snap["link"]["last_error_msg"]["id"] == "mqtt.refused"
    assert "từ chối kết nối: " in text
    assert_vietnamese(text, names=("UBND", "network", "Asia/Ho_Chi_Minh", "UTC"))
