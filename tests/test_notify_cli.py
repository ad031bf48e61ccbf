"""`centre notify test` and `centre notify queue` through the command line, against a real
local HTTP receiver: a test message reaches a contact of the directory or an address given
by hand, signed; a receiver that cannot be reached is said so, with a fix that does not
promise a retry (a test is sent once); the queue's backlog is shown."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest

from agent.centre.alerts.contacts import ContactStore
from agent.centre.alerts.model import Channel, ChannelKind, Contact
from agent.cli import main
from tests.test_alert_delivery import Receiver, free_port, http_receiver
from tests.test_cli_vietnamese import assert_vietnamese

SECRET = "bí-mật-thử"


def centre_toml(tmp_path: Path) -> Path:
    path = tmp_path / "centre.toml"
    path.write_text(
        f'db_path = "{tmp_path / "centre.sqlite"}"\n\n[alerts.webhook]\nsecret = "{SECRET}"\n'
    )
    return path


def test_a_contact_gets_a_signed_test_message_and_the_queue_shows_its_backlog(tmp_path, capsys):
    config = centre_toml(tmp_path)
    with http_receiver(Receiver()) as rx:
        store = ContactStore(tmp_path / "centre.sqlite")
        hook = Channel(kind=ChannelKind.WEBHOOK, address=rx.url + "/h")
        store.put(Contact(id="tech-d1", name="Anh Tuấn", language="vi", channels=(hook,)))
        store.close()
        assert main(["centre", "alerts", "test", "tech-d1", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "Anh Tuấn" in out
    [seen] = rx.seen
    body = seen.json()
    assert body["event"] == "test" and body["contact_id"] == "tech-d1" and body["language"] == "vi"
    want = hmac.new(SECRET.encode(), seen.body, hashlib.sha256).hexdigest()
    assert seen.headers["X-Edge-Signature"] == f"sha256={want}"

    assert main(["centre", "notify", "queue", "--json", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["backlog"] == 0


def test_an_unreachable_receiver_is_said_without_promising_a_retry(tmp_path, capsys):
    config = centre_toml(tmp_path)
    dead = f"webhook:http://127.0.0.1:{free_port()}/h"
    code = main(["centre", "notify", "test", "--to", dead, "--lang", "vi", "--config", str(config)])
    assert code == 1
    err = capsys.readouterr().err
    assert "gửi thử lại" in err and "sẽ gửi lại sau" not in err, err
    assert_vietnamese(err)


def test_an_unknown_contact_is_a_clear_error(tmp_path, capsys):
    config = centre_toml(tmp_path)
    assert main(["centre", "notify", "test", "nobody", "--config", str(config)]) != 0
    err = capsys.readouterr().err
    assert "nobody" in err and "Traceback" not in err
    assert "edge-agent centre contacts list" in err


@pytest.fixture(autouse=True)
def _no_webhook_secret_env(monkeypatch):
    monkeypatch.delenv("EDGE_AGENT_CENTRE_ALERTS__WEBHOOK__SECRET", raising=False)
