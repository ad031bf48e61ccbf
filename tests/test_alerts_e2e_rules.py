"""Every remaining alert rule fires and recovers end to end: a real mosquitto, ONE real
`edge-agent centre serve` subprocess for the module with one short rule per kind, a contact
whose webhook is a local HTTP receiver, and a session running now in the schedule the centre
publishes (`centre schedule add`). Each kind has its own site, all in trouble at once:

- check_failed: a real agent (subprocess) whose required network component checks a TCP port
  the test closes (fault) and opens again (ready);
- media_poor, low_attendance, outbox_backlog, old_firmware: a simulated site publishing the
  payloads an agent publishes (a live state `poor`; an attendance count below the share of
  the summoned; a state whose outbox is over the limit; a state whose codec result carries
  the real Cisco profile's firmware-below-minimum reason). A real agent would need a codec in
  a call, a camera and a crowd, a broker it cannot reach for long (then it is unheard and the
  rule rightly says nothing), or a codec speaking the profile's protocol: none exist here.

Each case asserts the signed `raised` webhook (kind, site, reason id), then the healthy
payload and the `recovered` webhook."""

from __future__ import annotations

import contextlib
import hmac
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.centre.alerts.channels.webhook import signature
from agent.centre.alerts.contacts import ContactStore
from agent.centre.alerts.model import Channel, ChannelKind, Contact
from agent.checks.live import LiveVerdict
from agent.cli import main
from agent.contract.payloads import ComponentState
from agent.profiles.loader import load_profile
from agent.profiles.session import QueryResult
from agent.profiles.verdict import judge
from agent.sim.broker import Mosquitto
from agent.sim.fleet_site import Message, SimSite
from agent.transport.listener import Listener
from tests.fixtures.broker import ROOT, AgentProcess, agent_config, dump_toml, wait_until
from tests.test_alert_delivery import Receiver, http_receiver
from tests.test_alert_facts import PROFILES, state
from tests.test_alerts_e2e import SECRET, condition, of
from tests.test_centre import centre_config
from tests.test_centre_live import SESSION, live

pytestmark = pytest.mark.broker

SUMMONED = 20

ALERTS = f"""
[alerts]
evaluate_every_s = 0.3
group_window_s = 0.5

[[alerts.rules]]
id = "check"
kind = "check_failed"
lead_minutes = 15
for_s = 1

[[alerts.rules]]
id = "poor"
kind = "media_poor"
for_s = 1

[[alerts.rules]]
id = "attendance"
kind = "low_attendance"
share = 0.5
after_minutes = 0
for_s = 1

[[alerts.rules]]
id = "outbox"
kind = "outbox_backlog"
pending_over = 50
for_s = 1

[[alerts.rules]]
id = "firmware"
kind = "old_firmware"
for_s = 1

[alerts.webhook]
secret = "{SECRET}"

[alerts.delivery]
poll_s = 0.2
"""


def codec(version: str) -> ComponentState:
    """The codec check's outcome on a Cisco reporting `version`, judged by the real profile
    (its min_firmware is 9.15)."""
    profile = load_profile(PROFILES, "cisco-roomos")
    out = judge(profile, [QueryResult("version", {"version": version})], "codec").outcome
    return ComponentState(status=out.status, reason=out.reason, reason_msg=out.reason_msg)


class Port:
    """A TCP port the real agent's network check connects to: listening (the path is up)
    or closed (refused: the check fails)."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None
        self.port = 0
        self.open()

    def open(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(64)
        self.port = int(sock.getsockname()[1])
        self.sock = sock
        # accepted and closed, so a backlog never fills (a full one would time out checks)
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    @staticmethod
    def _accept(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # closed: the port is down
            while True:
                sock.accept()[0].close()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread, stops listening
            self.sock.close()
            self.sock = None


@dataclass
class Case:
    kind: str
    site: str
    reason_id: str
    session: str | None  # the session the alert is about
    trouble: Callable[[], None]
    healthy: Callable[[], None]


@dataclass
class Fleet:
    receiver: Receiver
    log: Path
    cases: dict[str, Case] = field(default_factory=dict)


def sim_case(
    publish: Callable[..., None], kind: str, site: SimSite, reason_id: str, session: str | None,
    trouble: Callable[[], Message], healthy: Callable[[], Message],
) -> Case:  # fmt: skip
    publish(*site.birth())
    return Case(kind, site.site_id, reason_id, session, lambda: publish(trouble()),
                lambda: publish(healthy()))  # fmt: skip


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("alert-rules")
    broker = Mosquitto(tmp / "broker").start()
    receiver = Receiver()
    toml, db, log = tmp / "centre.toml", tmp / "centre.sqlite", tmp / "centre.log"
    port = Port()
    conn = Listener(broker.endpoint(), ["vc/nothing"]).start()

    def publish(*messages: Message) -> None:
        for topic, payload, retain in messages:
            conn.publish(topic, payload, 1, retain)

    centre: subprocess.Popen[bytes] | None = None
    agent: AgentProcess | None = None
    try:
        with http_receiver(receiver):
            toml.write_text(dump_toml(centre_config(broker, tmp, silent_after=30.0)) + ALERTS)
            contacts = ContactStore(db)
            contacts.put(Contact(id="tech", name="Kỹ thuật", language="en", channels=(
                Channel(kind=ChannelKind.WEBHOOK, address=receiver.url + "/hook"),)))  # fmt: skip
            contacts.close()
            centre = subprocess.Popen(
                [sys.executable, "-m", "agent", "centre", "serve", "--config", str(toml),
                 "--log-level", "info"],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log.open("a"),
            )  # fmt: skip
            # every site's session starts in 5 min: cf is inside its check window (a running
            # session would keep a real agent from checking: the room is in use); la has a
            # session of its own running now, for which 20 people are summoned
            now = datetime.now(UTC)
            for args in (["S1", "--start", (now + timedelta(minutes=5)).isoformat()],
                         ["S0", "--site", "la", "--expected", str(SUMMONED),
                          "--start", (now - timedelta(minutes=5)).isoformat()]):  # fmt: skip
                end = ["--end", (now + timedelta(hours=1)).isoformat()]
                assert main(["centre", "schedule", "add", *args, *end, "--config", str(toml)]) == 0

            cfg = agent_config(broker, tmp / "state", "cf")
            cfg["network"]["targets"] = [{"name": "mcu", "host": "127.0.0.1", "port": port.port}]
            agent = AgentProcess(cfg, tmp).start()
            assert wait_until(lambda: condition(db, "cf") == "ready", 30), agent.log()

            mp, la, ob, fw = (SimSite(s) for s in ("mp", "la", "ob", "fw"))
            began = datetime.now(UTC)
            cases = [
                Case("check_failed", "cf", "alerts.check_failed", "S1", port.close, port.open),
                sim_case(publish, "media_poor", mp, "alerts.media_poor", SESSION.session_id,
                         lambda: live(mp, LiveVerdict.POOR, began, loss=8.0),
                         lambda: live(mp, LiveVerdict.IN_CALL, datetime.now(UTC))),
                sim_case(publish, "low_attendance", la, "alerts.low_attendance", "S0",
                         lambda: la.attendance("S0", SUMMONED // 2 - 1),
                         lambda: la.attendance("S0", SUMMONED // 2)),
                sim_case(publish, "outbox_backlog", ob, "alerts.outbox_backlog", None,
                         lambda: state(ob, pending=51), lambda: state(ob, pending=0)),
                sim_case(publish, "old_firmware", fw, "alerts.old_firmware", None,
                         lambda: state(fw, codec=codec("9.14.3")),
                         lambda: state(fw, codec=codec("11.5.1"))),
            ]  # fmt: skip
            for case in cases:  # all in trouble at once: they run side by side
                case.trouble()
            yield Fleet(receiver, log, {c.kind: c for c in cases})
    finally:
        if agent is not None and agent.proc is not None and agent.proc.poll() is None:
            agent.terminate()
        if centre is not None:
            centre.terminate()
            centre.wait(30)
        time.sleep(0.2)  # let the last publishes out
        conn.stop()
        port.close()
        broker.stop()


@pytest.mark.parametrize(
    "kind", ["check_failed", "media_poor", "low_attendance", "outbox_backlog", "old_firmware"]
)
def test_the_rule_fires_and_recovers_end_to_end(fleet: Fleet, kind: str) -> None:
    case, receiver = fleet.cases[kind], fleet.receiver
    told = wait_until(lambda: bool(of(receiver, "raised", kind, case.site)), 30)
    assert told, fleet.log.read_text()
    (raised,) = of(receiver, "raised", kind, case.site)
    assert hmac.compare_digest(raised.headers["X-Edge-Signature"], signature(SECRET, raised.body))
    (alert,) = [a for a in raised.json()["alerts"] if a["site_id"] == case.site]
    assert (alert["kind"], alert["reason_id"], alert["session_id"]) == (
        kind, case.reason_id, case.session
    )  # fmt: skip
    # only this site: the others' troubles are not taken for this kind
    assert {a["site_id"] for s in receiver.seen for a in s.json()["alerts"]
            if a["kind"] == kind} == {case.site}  # fmt: skip

    case.healthy()
    told = wait_until(lambda: bool(of(receiver, "recovered", kind, case.site)), 30)
    assert told, fleet.log.read_text()
    (back,) = of(receiver, "recovered", kind, case.site)
    assert hmac.compare_digest(back.headers["X-Edge-Signature"], signature(SECRET, back.body))
