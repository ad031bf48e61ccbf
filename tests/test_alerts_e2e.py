"""Alerts end to end: a real mosquitto, a real `edge-agent centre serve` subprocess with short
rules, a contact with a webhook (a local HTTP receiver) and an e-mail address (aiosmtpd with
STARTTLS and login); a real agent killed -9 before a scheduled session → `site_down` raised
at the receiver (signed) and in the mailbox, the agent back → recovered; a site's live state
`dropped` published as an agent publishes it → `call_dropped`, critical, reminded until it is
acknowledged through the CLI, and not after."""

from __future__ import annotations

import email
import email.policy
import hmac
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.centre.alerts.channels.webhook import signature
from agent.centre.alerts.contacts import ContactStore
from agent.centre.alerts.model import Channel, ChannelKind, Contact
from agent.centre.store import Store
from agent.checks.live import LiveVerdict
from agent.cli import main
from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import SimSite
from tests.fixtures.broker import ROOT, AgentProcess, agent_config, dump_toml, wait_until
from tests.test_alert_delivery import Receiver, Seen, http_receiver, smtp_server
from tests.test_centre import centre_config, publisher  # noqa: F401 - a fixture
from tests.test_centre_live import live

pytestmark = pytest.mark.broker

SECRET = "s3cret"
REMIND_S = 3.0

ALERTS = f"""
[alerts]
evaluate_every_s = 0.3
group_window_s = 1.0

[[alerts.rules]]
id = "down"
kind = "site_down"
lead_minutes = 15
for_s = 1

[[alerts.rules]]
id = "dropped"
kind = "call_dropped"
severity = "critical"
for_s = 1
remind_every_s = {REMIND_S}

[alerts.webhook]
secret = "{SECRET}"

[alerts.delivery]
poll_s = 0.2
"""


def email_section(port: int, ca_file: Path) -> str:
    return (
        f'\n[alerts.email]\nhost = "127.0.0.1"\nport = {port}\nca_file = "{ca_file}"\n'
        'username = "desk"\npassword = "pw"\n'
    )


def of(receiver: Receiver, event: str, kind: str, site: str) -> list[Seen]:
    def about(s: Seen) -> bool:
        return any(a["kind"] == kind and a["site_id"] == site for a in s.json()["alerts"])

    return [s for s in receiver.seen if s.json()["event"] == event and about(s)]


def condition(db: Path, site: str) -> str | None:
    store = Store(db)
    try:
        rec = store.recorded().get(site)
        return rec.condition if rec else None
    finally:
        store.close()


def test_alerts_from_real_agents_reach_the_receivers_and_stop_when_acknowledged(
    broker: Mosquitto,
    tmp_path: Path,
    publisher: Callable[..., None],  # noqa: F811
) -> None:
    db = tmp_path / "centre.sqlite"
    toml = tmp_path / "centre.toml"
    log = tmp_path / "centre.log"
    receiver = Receiver()
    with http_receiver(receiver), smtp_server(tmp_path, "desk", "pw") as box:
        toml.write_text(dump_toml(centre_config(broker, tmp_path, silent_after=30.0))
                        + ALERTS + email_section(box.port, box.ca_file))  # fmt: skip
        contacts = ContactStore(db)
        contacts.put(Contact(id="tech", name="Kỹ thuật", language="en", channels=(
            Channel(kind=ChannelKind.WEBHOOK, address=receiver.url + "/hook"),
            Channel(kind=ChannelKind.EMAIL, address="tech@example.org"),
        )))  # fmt: skip
        contacts.close()
        centre = subprocess.Popen(
            [sys.executable, "-m", "agent", "centre", "serve", "--config", str(toml),
             "--log-level", "info"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("a"),
        )  # fmt: skip
        agent = AgentProcess(agent_config(broker, tmp_path / "state", "s1"), tmp_path).start()
        try:
            now = datetime.now(UTC)
            when = ["--start", (now + timedelta(minutes=5)).isoformat(),
                    "--end", (now + timedelta(hours=1)).isoformat()]  # fmt: skip
            assert main(["centre", "schedule", "add", "S1", "--config", str(toml), *when]) == 0
            assert wait_until(lambda: condition(db, "s1") == "ready", 30), log.read_text()

            agent.kill()  # its will reaches the centre after the keepalive
            killed = time.monotonic()
            assert wait_until(lambda: of(receiver, "raised", "site_down", "s1"), 40), (
                log.read_text()
            )
            print(f"\nsite_down at the receiver {time.monotonic() - killed:.1f} s after kill -9")
            (raised,) = of(receiver, "raised", "site_down", "s1")
            assert hmac.compare_digest(
                raised.headers["X-Edge-Signature"], signature(SECRET, raised.body)
            )
            assert "s1" in raised.json()["text"] and raised.headers["Idempotency-Key"]
            assert wait_until(lambda: box.mails, 10), log.read_text()
            mail = email.message_from_bytes(box.mails[0], policy=email.policy.default)
            assert "tech@example.org" in str(mail["To"])

            agent.start()  # a new boot: online again
            assert wait_until(lambda: of(receiver, "recovered", "site_down", "s1"), 30), (
                log.read_text()
            )

            c9 = SimSite("c9", name="Xã Chín")
            publisher(*c9.birth())
            began = datetime.now(UTC) - timedelta(seconds=2)
            publisher(live(c9, LiveVerdict.DROPPED, began))
            assert wait_until(lambda: of(receiver, "raised", "call_dropped", "c9"), 20), (
                log.read_text()
            )
            (dropped,) = of(receiver, "raised", "call_dropped", "c9")
            assert dropped.json()["alerts"][0]["severity"] == "critical"
            assert wait_until(lambda: of(receiver, "reminder", "call_dropped", "c9"), 15), (
                log.read_text()
            )
            assert main(["centre", "alerts", "ack", "dropped:c9", "--by", "Lan",
                         "--config", str(toml)]) == 0  # fmt: skip
            time.sleep(1.0)  # a reminder already queued when the ack came may still go
            after_ack = len(of(receiver, "reminder", "call_dropped", "c9"))
            time.sleep(2 * REMIND_S + 1)
            assert len(of(receiver, "reminder", "call_dropped", "c9")) == after_ack
            # each notification reached the receiver once
            keys = [s.headers["Idempotency-Key"] for s in receiver.seen]
            assert len(keys) == len(set(keys))
        finally:
            if agent.proc is not None and agent.proc.poll() is None:
                agent.terminate()
            centre.terminate()
            centre.wait(30)
