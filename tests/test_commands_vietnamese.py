"""A command's outcome in the reader's language: the site sends its reasons as message ids,
`centre send` and the page's command log show them in Vietnamese or English, whatever
language the site itself runs in."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from agent.centre.sender import Sender
from agent.centre.web.commands import Log
from agent.i18n import set_language
from agent.transport.mqtt import Protocol
from tests.commands_kit import KEY_ID, CommandAgent, commands_config
from tests.fixtures.broker import Mosquitto, wait_until
from tests.test_cli_vietnamese import assert_vietnamese, cli, vi_env

pytestmark = pytest.mark.broker

NOT_ALLOWED_VI = "điểm cầu này không cho phép reboot-host"


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def site(broker: Mosquitto, key: Ed25519PrivateKey, tmp_path: Path) -> Iterator[CommandAgent]:
    """A real site that refuses reboot-host, running in Vietnamese (its own language must not
    decide what the centre's operator reads)."""
    set_language("vi")
    config = commands_config(broker, tmp_path / "state", key, allow_reboot_host=False)
    agent = CommandAgent(config).start()
    try:
        assert wait_until(lambda: agent.agent.link.status().connected, 10)
        time.sleep(0.1)  # the SUBSCRIBE went out before the announce; let its SUBACK land
        yield agent
    finally:
        agent.stop()
        set_language("en")


def _send(broker: Mosquitto, key_file: Path, tmp_path: Path, lang: str) -> str:
    centre = tmp_path / "centre.toml"  # no fleet database: the site is known by its meta
    centre.write_text(f'db_path = "{tmp_path / "none.sqlite"}"\n')
    argv = ["centre", "send", "reboot-host", "--site", "s1", "--key", str(key_file)]
    argv += ["--key-id", KEY_ID, "--port", str(broker.port), "--timeout", "10"]
    done: subprocess.CompletedProcess[str] = cli(
        *argv, env=vi_env(LANG=lang, EDGE_AGENT_CENTRE_CONFIG=str(centre))
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    return done.stdout


def test_a_refused_command_reads_in_the_operators_language(
    broker: Mosquitto, key: Ed25519PrivateKey, site: CommandAgent, tmp_path: Path
) -> None:
    key_file = tmp_path / "centre.key"
    key_file.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))

    vi = _send(broker, key_file, tmp_path, "vi_VN.UTF-8")
    assert "bị từ chối" in vi and NOT_ALLOWED_VI in vi, vi
    assert "tổng hợp: phản hồi 1/1" in vi
    assert_vietnamese(vi, names=("reboot-host", "s1"))

    en = _send(broker, key_file, tmp_path, "C.UTF-8")
    assert "rejected   disabled: reboot-host is not allowed here" in en, en
    assert "summary: answered 1/1, succeeded 0, failed 0, rejected 1, no answer 0" in en


def test_the_stored_command_log_keeps_the_message_for_each_language(
    broker: Mosquitto, key: Ed25519PrivateKey, site: CommandAgent, tmp_path: Path
) -> None:
    with Sender(broker.endpoint("centre-test"), "vc", Protocol.V5) as centre:
        command_id, _ = centre.send(key, KEY_ID, "reboot-host", {}, {"site": "s1"})
        (reply,) = centre.collect(command_id, {"s1"}, 10).replies
    assert reply.status == "rejected" and reply.reason_msg is not None
    # The English for older readers keeps its `<code>: <detail>` form.
    assert reply.reason.startswith("disabled: reboot-host is not allowed here")

    db = tmp_path / "centre.sqlite"
    log = Log(db)
    row = {"at": 1.0, "command_id": command_id, "operator": "op", "action": "reboot-host",
           "site_id": "s1", "status": "rejected", "reason": reply.reason,
           "reason_message": reply.reason_msg}  # fmt: skip
    log.add(row)
    log.close()
    (shown,) = Log(db).recent("s1")  # as the page asks for it, after a restart
    assert NOT_ALLOWED_VI in shown["reason_by_lang"]["vi"]
    assert shown["reason_by_lang"]["en"] == reply.reason


def test_a_command_log_from_before_messages_still_opens_and_shows_the_english(
    tmp_path: Path,
) -> None:
    db = tmp_path / "old.sqlite"
    with sqlite3.connect(db) as old:
        old.execute(
            "CREATE TABLE web_commands (id INTEGER PRIMARY KEY, at REAL NOT NULL, command_id "
            "TEXT NOT NULL, operator TEXT NOT NULL, action TEXT NOT NULL, site_id TEXT NOT "
            "NULL, status TEXT NOT NULL, reason TEXT NOT NULL, output TEXT)"
        )
        old.execute(
            "INSERT INTO web_commands (at, command_id, operator, action, site_id, status, "
            "reason) VALUES (1, 'c', 'op', 'identify', 's1', 'failed', 'an old reason')"
        )
    old.close()
    (shown,) = Log(db).recent("s1")
    assert shown["reason_by_lang"] == {"en": "an old reason", "vi": "an old reason"}
