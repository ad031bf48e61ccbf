"""The running agent's refusals on its control socket reach the technician as message ids,
so `edge-agent check` can say them in Vietnamese; and a crashed self-test is called that,
not "the agent is stopping"."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.config import Settings
from agent.messages import Message, render
from agent.runtime.control import ControlServer, ask, socket_path
from agent.runtime.control_handlers import control_handlers
from agent.runtime.daemon import Agent
from tests.fixtures.broker import Mosquitto, agent_config, dump_toml
from tests.test_cli_vietnamese import assert_vietnamese, cli

pytestmark = pytest.mark.broker


def _crash(_settings: Settings) -> Any:
    raise RuntimeError("the probe's worker died")


@pytest.fixture
def server(broker: Mosquitto, tmp_path: Path) -> Any:
    agent = Agent(Settings(**agent_config(broker, tmp_path)), selftest=_crash)
    server = ControlServer(socket_path(tmp_path), control_handlers(agent)).start()
    try:
        yield socket_path(tmp_path)
    finally:
        server.stop()


def _said(reply: dict[str, Any] | None, lang: str) -> str:
    assert reply is not None and reply["ok"] is False
    error = Message.model_validate(reply["error_msg"])
    hint = Message.model_validate(reply["hint_msg"])
    return f"{render(error, lang)}; {render(hint, lang)}"


# The worker's exception is the crash under test (the watchdog logs it).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_crashed_self_test_is_said_so_in_the_readers_language(server: Path) -> None:
    reply = ask(server, {"op": "check", "components": ["network"]}, timeout_s=30)
    assert _said(reply, "en").startswith("the self-test crashed before it could report; see")
    assert _said(reply, "vi").startswith("việc tự kiểm tra bị dừng đột ngột")
    assert reply is not None and "stopping" not in reply["error"]


def test_malformed_components_are_refused_with_a_message(server: Path) -> None:
    reply = ask(server, {"op": "check", "components": "network"})
    assert "components must be a list of names" in _said(reply, "en")
    assert _said(reply, "vi").startswith("yêu cầu kiểm tra không hợp lệ")


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_edge_agent_check_says_the_crash_in_vietnamese(
    broker: Mosquitto, tmp_path: Path, server: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(dump_toml(agent_config(broker, tmp_path)))
    done = cli("check", "--config", str(config), "network")
    assert done.returncode != 0
    assert "việc tự kiểm tra bị dừng đột ngột trước khi có kết quả" in done.stderr, done.stderr
    assert "xem nhật ký của phần mềm giám sát" in done.stderr
    assert_vietnamese(done.stderr, names=("edge-agent logs",))
