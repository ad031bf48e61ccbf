"""Which of the broker features the agent and the centre rely on a broker has: one line each,
`works`, `refused` (the broker says no, or the feature needs a protocol it refused) or
`wrong` (accepted, but not what MQTT says: nothing delivered, the topic changed...).

Low-level checks go through the project's own client (agent/transport/mqtt.py); the last ones
run the real thing: an agent with `broker.protocol = "auto"`, and the centre's ingest as
configured by default (auto, shared subscription) and, when MQTT 5 is refused, told the version
that works, shared and alone. Every topic carries a fresh token, so a broker used before
(retained messages left behind) cannot make a check pass; retained messages and the sessions
made are cleared at the end. Point it at a test broker (or another `--prefix`): a centre
already subscribed there would log the checks' test messages as rejected reports.

    .venv/bin/python bench/broker_compat.py mqtt://127.0.0.1:1883
    .venv/bin/python bench/broker_compat.py mqtt://guest:guest@127.0.0.1:1883 --prefix vc

docs/brokers.md ("Broker compatibility") says what was seen with mosquitto and RabbitMQ 3.10.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import secrets
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.centre.ingest import Ingest  # noqa: E402
from agent.centre.settings import CentreSettings  # noqa: E402
from agent.config import Settings  # noqa: E402
from agent.errors import AgentError  # noqa: E402
from agent.runtime.daemon import Agent  # noqa: E402
from agent.sim.fleet_site import SimSite  # noqa: E402
from agent.transport.listener import Listener  # noqa: E402
from agent.transport.mqtt import (  # noqa: E402
    Closed,
    ConnAck,
    Connection,
    Endpoint,
    Inbound,
    Protocol,
    PubAck,
    SubAck,
    Will,
)

WORKS, REFUSED, WRONG = "works", "refused", "wrong"
WAIT_S = 3.0  # for something that should arrive; mosquitto takes milliseconds


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    prefix: str = "vc"

    @classmethod
    def from_url(cls, url: str, prefix: str = "vc") -> Broker:
        parts = urlsplit(url if "//" in url else "mqtt://" + url)
        if parts.scheme not in ("mqtt", "tcp"):
            raise SystemExit(f"{url}: only mqtt://[user:password@]host:port (no TLS here)")
        return cls(
            parts.hostname or "127.0.0.1",
            parts.port or 1883,
            parts.username,
            parts.password,
            prefix,
        )

    def settings(self, protocol: str = "auto", **extra: Any) -> dict[str, Any]:
        """The [broker] settings of an agent or a centre."""
        out: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "prefix": self.prefix,
            "protocol": protocol,
        }
        if self.username is not None:
            out |= {"username": self.username, "password": self.password or ""}
        return out | extra


@dataclass(frozen=True)
class Line:
    feature: str
    verdict: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.feature:<52} {self.verdict:<8} {self.detail}".rstrip()


class Client:
    """One connection, pumped from the calling thread; keeps every event it saw."""

    def __init__(
        self,
        broker: Broker,
        protocol: Protocol,
        client_id: str,
        *,
        will: Will | None = None,
        clean: bool = True,
        expiry_s: int = 0,
        receive_maximum: int | None = None,
        manual_ack: bool = False,
    ) -> None:
        where = Endpoint(
            host=broker.host,
            port=broker.port,
            client_id=client_id,
            keepalive_s=10,
            username=broker.username,
            password=broker.password,
            session_expiry_s=expiry_s,
            clean_start=clean,
            receive_maximum=receive_maximum,
        )
        self.conn = Connection(where, protocol, will, manual_ack=manual_ack)
        self.connack: ConnAck | None = None
        self.closed: Closed | None = None
        self.messages: list[Inbound] = []
        self.subacks: dict[int, SubAck] = {}
        self.pubacks: dict[int, PubAck] = {}

    def pump(self, until: Callable[[], bool], timeout: float = WAIT_S) -> bool:
        end = time.monotonic() + timeout
        while not until():
            if self.closed is not None or time.monotonic() >= end:
                return until()
            for event in self.conn.pump(0.05):
                if isinstance(event, ConnAck):
                    self.connack = event
                elif isinstance(event, Closed):
                    self.closed = event
                elif isinstance(event, Inbound):
                    self.messages.append(event)
                elif isinstance(event, SubAck):
                    self.subacks[event.mid] = event
                elif isinstance(event, PubAck):
                    self.pubacks[event.mid] = event
        return True

    def settle(self, seconds: float) -> None:
        """Pump for `seconds` whatever happens (to see what else arrives)."""
        self.pump(lambda: False, seconds)

    def connect(self) -> ConnAck | None:
        self.conn.open(WAIT_S)
        self.pump(lambda: self.connack is not None)
        return self.connack

    @property
    def up(self) -> bool:
        return self.connack is not None and self.connack.ok and self.closed is None

    def subscribe(self, *filters: str) -> SubAck | None:
        mid = self.conn.subscribe([(f, 1) for f in filters])
        if mid is None:
            return None
        self.pump(lambda: mid in self.subacks)
        return self.subacks.get(mid)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, **props: Any) -> bool:
        mid = self.conn.publish(topic, payload, 1, retain, **props)
        self.pump(lambda: mid in self.pubacks)
        return mid in self.pubacks and self.pubacks[mid].ok

    def on(self, topic: str) -> list[Inbound]:
        return [m for m in self.messages if m.topic == topic]

    def wait_for(self, topic: str, count: int = 1, timeout: float = WAIT_S) -> list[Inbound]:
        self.pump(lambda: len(self.on(topic)) >= count, timeout)
        return self.on(topic)

    def close(self) -> None:
        if self.closed is None:
            self.conn.disconnect()
            self.pump(lambda: self.closed is not None, 0.5)

    def abort(self) -> None:
        self.conn.abort()


class Checks:
    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.token = "cmp" + secrets.token_hex(3)
        self.protocol = Protocol.V5  # the best the broker took (set by the first checks)
        self.v5 = False
        self.retained: set[str] = set()  # to clear at the end
        self.sessions: set[str] = set()  # client ids with a persistent session, to clear
        self._n = 0

    def topic(self, suffix: str, site: str = "") -> str:
        return f"{self.broker.prefix}/{site or self.token + '-s1'}/{suffix}"

    def client_id(self) -> str:
        self._n += 1
        return f"{self.token}-c{self._n}"

    @contextmanager
    def client(self, protocol: Protocol | None = None, **kw: Any) -> Iterator[Client]:
        c = Client(
            self.broker,
            protocol or self.protocol,
            kw.pop("client_id", None) or self.client_id(),
            **kw,
        )
        try:
            ack = c.connect()
            if ack is None or not ack.ok:
                raise RuntimeError(f"connect: {ack.reason if ack else 'no CONNACK'}")
            yield c
        finally:
            c.close()

    def needs_v5(self, feature: str) -> Line | None:
        return None if self.v5 else Line(feature, REFUSED, "needs MQTT 5, which was refused")

    # ---- protocol ----------------------------------------------------------------------

    def connect(self, protocol: Protocol) -> Line:
        feature = f"MQTT {protocol} CONNECT"
        c = Client(self.broker, protocol, self.client_id())
        try:
            ack = c.connect()
        except AgentError as exc:
            return Line(feature, REFUSED, str(exc))
        c.close()
        if ack is not None and ack.ok:
            return Line(feature, WORKS)
        why = ack.reason if ack else f"closed: {c.closed.reason if c.closed else 'no answer'}"
        return Line(feature, REFUSED, why)

    # ---- features ----------------------------------------------------------------------

    def qos1(self) -> Line:
        feature = "QoS 1 publish and subscribe"
        topic = self.topic("state")
        with self.client() as sub, self.client() as pub:
            if (ack := sub.subscribe(topic)) is None or not ack.ok:
                return Line(feature, REFUSED, f"SUBACK {ack.reasons if ack else None}")
            if not pub.publish(topic, b"{}"):
                return Line(feature, REFUSED, "no PUBACK")
            got = sub.wait_for(topic)
        if not got:
            return Line(feature, WRONG, "PUBACKed, never delivered")
        return Line(feature, WORKS if got[0].qos == 1 else WRONG, f"delivered at QoS {got[0].qos}")

    def _retained(self, feature: str, filters: tuple[str, ...], site: str) -> Line:
        topic, body, _ = SimSite(site, prefix=self.broker.prefix).availability()
        with self.client() as pub:
            if not pub.publish(topic, body, retain=True):
                return Line(feature, REFUSED, "no PUBACK")
            self.retained.add(topic)
        seen = []
        for f in filters:
            with self.client() as sub:
                sub.subscribe(f)
                got = sub.wait_for(topic, timeout=1.5)
                seen.append(f"{f}: {'retained copy' if got and got[0].retain else 'nothing'}")
        ok = all(s.endswith("retained copy") for s in seen)
        return Line(feature, WORKS if ok else WRONG, "; ".join(seen))

    def retained_exact(self) -> Line:
        site = self.token + "-r1"
        return self._retained(
            "retained message, exact filter", (self.topic("availability", site),), site
        )

    def retained_wildcard(self) -> Line:
        p, site = self.broker.prefix, self.token + "-r2"
        return self._retained(
            "retained messages through wildcard filters", (f"{p}/+/availability", f"{p}/#"), site
        )

    def will(self) -> Line:
        feature = "will (retained, QoS 1) on a dropped connection"
        topic, body, _ = SimSite(self.token + "-w", prefix=self.broker.prefix).availability(
            "offline"
        )
        will = Will(topic, body, 1, True)
        with self.client() as sub:
            sub.subscribe(topic)
            dying = Client(self.broker, self.protocol, self.client_id(), will=will)
            if (ack := dying.connect()) is None or not ack.ok:
                return Line(feature, REFUSED, f"CONNECT with a will: {ack.reason if ack else None}")
            self.retained.add(topic)
            dying.abort()
            got = sub.wait_for(topic)
        if not got:
            return Line(feature, WRONG, "the connection dropped, no will delivered")
        with self.client() as late:
            late.subscribe(topic)
            kept = late.wait_for(topic, timeout=1.5)
        detail = "delivered" + (", kept as retained" if kept else ", NOT kept as retained")
        return Line(feature, WORKS if kept else WRONG, detail)

    def persistent_session(self) -> Line:
        feature = "persistent session queues QoS 1 while away"
        topic, cid = self.topic("cmd"), self.client_id()
        kw: dict[str, Any] = {"client_id": cid, "clean": False, "expiry_s": 300}
        self.sessions.add(cid)
        with self.client(**kw) as c:
            c.subscribe(topic)
        with self.client() as pub:
            pub.publish(topic, b"{}")
        with self.client(**kw) as c:
            present = bool(c.connack and c.connack.session_present)
            got = c.wait_for(topic)
        if present and got:
            return Line(feature, WORKS, "session present, the message queued meanwhile delivered")
        return Line(feature, WRONG, f"session_present={present}, delivered={len(got)}")

    def session_expiry(self) -> Line:
        feature = "session expiry (MQTT 5)"
        if line := self.needs_v5(feature):
            return line
        cid = self.client_id()
        self.sessions.add(cid)
        with self.client(client_id=cid, clean=False, expiry_s=1) as c:
            c.subscribe(self.topic("cmd"))
        time.sleep(2.5)
        with self.client(client_id=cid, clean=False, expiry_s=0) as c:
            present = bool(c.connack and c.connack.session_present)
        if present:
            return Line(feature, WRONG, "a 1 s session was still there after 2.5 s")
        return Line(feature, WORKS, "a 1 s session was gone after 2.5 s")

    def shared_subscription(self) -> Line:
        feature = "shared subscription $share/<group>/..."
        topic = self.topic("state", self.token + "-sh")
        shared = f"$share/{self.token}/{self.broker.prefix}/+/state"
        n = 20
        with self.client() as a, self.client() as b, self.client() as pub:
            for c in (a, b):
                ack = c.subscribe(shared)
                if ack is None or not ack.ok:
                    return Line(feature, REFUSED, f"SUBACK {ack.reasons if ack else 'none'}")
            for i in range(n):
                pub.publish(topic, str(i).encode())
            a.wait_for(topic, 1)
            for c in (a, b):  # let every copy arrive, including any extra
                c.settle(0.5)
            counts = [len(a.on(topic)), len(b.on(topic))]
        payloads = [m.payload for m in a.on(topic) + b.on(topic)]
        split = f"{n} published, members got {counts[0]} + {counts[1]}"
        if sum(counts) == 0:
            return Line(feature, WRONG, f"SUBACK granted, nothing delivered ({split})")
        if sorted(payloads) != sorted(str(i).encode() for i in range(n)):
            return Line(feature, WRONG, f"{split}: not each message once")
        if 0 in counts:
            return Line(feature, WRONG, f"{split}: not split")
        return Line(feature, WORKS, split)

    def request_response(self) -> Line:
        feature = "response topic + correlation data (MQTT 5)"
        if line := self.needs_v5(feature):
            return line
        topic, reply = self.topic("cmd"), self.topic("cmd/reply")
        with self.client() as sub, self.client() as pub:
            sub.subscribe(topic)
            pub.publish(topic, b"{}", correlation=b"\x01corr", response_topic=reply)
            got = sub.wait_for(topic)
        if not got:
            return Line(feature, WRONG, "not delivered")
        m = got[0]
        if (m.response_topic, m.correlation) != (reply, b"\x01corr"):
            return Line(feature, WRONG, f"arrived as {m.response_topic!r}, {m.correlation!r}")
        return Line(feature, WORKS, "both arrived intact")

    def receive_maximum(self) -> Line:
        feature = "receive maximum + manual ack (MQTT 5)"
        if line := self.needs_v5(feature):
            return line
        topic = self.topic("state", self.token + "-rm")
        with self.client(receive_maximum=2, manual_ack=True) as sub, self.client() as pub:
            sub.subscribe(topic)
            for i in range(6):
                pub.publish(topic, str(i).encode())
            sub.wait_for(topic, 2)
            sub.settle(0.5)
            first = len(sub.on(topic))
            for m in sub.on(topic):
                sub.conn.ack(m.mid, m.qos)
            sub.wait_for(topic, 6, timeout=WAIT_S)
            for m in sub.on(topic)[first:]:
                sub.conn.ack(m.mid, m.qos)
            total = len(sub.on(topic))
        detail = f"{first} in flight unacknowledged (max 2), {total}/6 after acknowledging"
        return Line(feature, WORKS if first == 2 and total == 6 else WRONG, detail)

    def dotted_site_id(self) -> Line:
        feature = "a '.' in a site id (topic unchanged)"
        p = self.broker.prefix
        topic = f"{p}/{self.token}.xa-tan-lap/state"
        # `#` shows what it became; `+/state` is the centre's own filter.
        with self.client() as every, self.client() as centre, self.client() as pub:
            every.subscribe(f"{p}/#")
            centre.subscribe(f"{p}/+/state")
            pub.publish(topic, b"{}")

            def ours(c: Client) -> list[str]:
                return sorted({m.topic for m in c.messages if "xa-tan" in m.topic and not m.retain})

            every.pump(lambda: bool(ours(every)))
            centre.pump(lambda: bool(ours(centre)), 1.0)
            seen, by_centre = ours(every), ours(centre)
        if seen == [topic] and by_centre == [topic]:
            return Line(feature, WORKS, f"{topic} arrived as itself, through {p}/+/state too")
        return Line(
            feature,
            WRONG,
            f"published {topic}, arrived as {seen or 'nothing'} ({p}/#), "
            f"{by_centre or 'nothing'} ({p}/+/state)",
        )

    def bridge_state_topic(self) -> Line:
        feature = "'$' inside a topic (vc/$bridge/<region>/state)"
        p = self.broker.prefix
        topic = f"{p}/$bridge/{self.token}/state"
        with self.client() as sub, self.client() as pub:
            ack = sub.subscribe(f"{p}/$bridge/+/state")
            if ack is None or not ack.ok:
                return Line(feature, REFUSED, f"SUBACK {ack.reasons if ack else 'none'}")
            if not pub.publish(topic, b"1"):
                return Line(feature, REFUSED, "no PUBACK")
            got = sub.wait_for(topic)
        return Line(feature, WORKS if got else WRONG, "delivered" if got else "not delivered")

    # ---- the real agent and centre ---------------------------------------------------------

    def agent_reporting(self, workdir: Path) -> Line:
        feature = "agent reports (broker.protocol auto)"
        site = self.token + "-agent"
        topics = [self.topic(s, site) for s in ("availability", "meta", "state")]
        self.retained.update(topics[:2])
        # The observer speaks what the CONNECT checks found, so only the agent falls back.
        seen = Listener(self._endpoint(self.client_id()), topics, protocol=self.protocol).start()
        cfg = {
            "site": {"site_id": site, "name": site, "tier": "commune"},
            "broker": self.broker.settings(
                keepalive_s=5, reconnect_min_s=0.1, reconnect_max_s=0.5, client_id=site
            ),
            "paths": {"state_dir": str(workdir / "agent")},
            "camera": {"enabled": False},
            "microphone": {"enabled": False},
            "display": {"enabled": False},
            "codec": {"enabled": False},
            "network": {"samples": 1, "interval_s": 0, "targets": []},
            "report": {"check_interval_s": 0.5},
        }
        self.sessions.add(site)
        agent, stop = Agent(Settings.model_validate(cfg)), threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        started = time.monotonic()
        thread.start()
        try:
            seen.wait_for(lambda ms: {m.topic for m in ms} >= set(topics), 10.0)
            took = time.monotonic() - started
        finally:
            stop.set()
            thread.join(10)
            seen.stop()
        got = seen.messages()
        arrived = {m.topic for m in got}
        if not set(topics) <= arrived:
            missing = sorted(t.rsplit("/", 1)[1] for t in set(topics) - arrived)
            return Line(feature, WRONG, f"missing after 10 s: {', '.join(missing)}")
        meta = next(m for m in got if m.topic == topics[1]).json()
        return Line(
            feature,
            WORKS,
            f"availability, meta, state in {took * 1000:.0f} ms over MQTT {meta['protocol']}",
        )

    def centre_ingest(self, workdir: Path, protocol: str, group: str) -> Line:
        feature = f"centre ingest, protocol {protocol}, share_group {group!r}"
        self._n += 1
        name = f"{self.token}-c{self._n}"
        site = SimSite(name + "-site", prefix=self.broker.prefix)
        # Published before the centre starts: only its retained pass can see these.
        with self.client() as pub:
            for topic, body, retain in site.birth():
                pub.publish(topic, body, retain=retain)
                if retain:
                    self.retained.add(topic)
        self.sessions.add(name)
        db = workdir / f"{name}.sqlite"
        settings = CentreSettings.model_validate(
            {
                "broker": self.broker.settings(protocol, client_id=name, connect_timeout_s=5),
                "db_path": str(db),
                "share_group": group,
                "retained_wait_s": 1.0,
            }
        )
        ingest = Ingest(settings)
        try:
            ingest.start()
        except AgentError as exc:
            ingest.stop()
            return Line(feature, REFUSED, exc.message)
        try:
            # The retained pass is over when start() returns; the writer may still be at it.
            picture = _wait(lambda: _picture(db, site.site_id), 3, 2.0)
            with self.client() as pub:
                topic, body, _ = site.state()
                pub.publish(topic, body)
            live = _wait(lambda: int(_site(db, site.site_id)[2] == site.seq), 1, WAIT_S)
        finally:
            ingest.stop()
            protocol = ingest._live.protocol if ingest._live else "?"
        detail = (
            f"over MQTT {protocol}: a site's retained availability, meta, state known at start: "
            f"{picture}/3; a live report stored: {live}/1"
        )
        return Line(feature, WORKS if picture == 3 and live == 1 else WRONG, detail)

    def _endpoint(self, client_id: str) -> Endpoint:
        return Endpoint(
            host=self.broker.host,
            port=self.broker.port,
            client_id=client_id,
            keepalive_s=10,
            username=self.broker.username,
            password=self.broker.password,
            clean_start=True,
        )

    # ---- all of them ---------------------------------------------------------------------

    def run(self, workdir: Path) -> Iterator[Line]:
        v5 = self.connect(Protocol.V5)
        v311 = self.connect(Protocol.V311)
        yield v5
        yield v311
        self.v5 = v5.verdict == WORKS
        if not self.v5 and v311.verdict != WORKS:
            return
        self.protocol = Protocol.V5 if self.v5 else Protocol.V311
        # The centre as configured by default (auto, shared), then, when MQTT 5 was refused,
        # told the version that works: with its shared subscription, then alone.
        fixed = "auto" if self.v5 else str(self.protocol)
        centres = [("auto", "centre"), *([(fixed, "centre")] if not self.v5 else []), (fixed, "")]
        steps: list[Callable[[], Line]] = [
            self.qos1,
            self.retained_exact,
            self.retained_wildcard,
            self.will,
            self.persistent_session,
            self.session_expiry,
            self.shared_subscription,
            self.request_response,
            self.receive_maximum,
            self.dotted_site_id,
            self.bridge_state_topic,
            functools.partial(self.agent_reporting, workdir),
            *(functools.partial(self.centre_ingest, workdir, p, g) for p, g in centres),
        ]
        try:
            for step in steps:
                yield _guarded(step)
        finally:
            self.clean_up()

    def clean_up(self) -> None:
        """Clear the retained messages and the persistent sessions this run left."""
        with self.client() as c:
            for topic in sorted(self.retained):
                c.publish(topic, b"", retain=True)
        for cid in sorted(self.sessions):
            try:
                with self.client(client_id=cid, clean=True, expiry_s=0):
                    pass
            except (RuntimeError, AgentError):
                pass


def _guarded(step: Callable[[], Line]) -> Line:
    """A check that blew up is a line too: one broker's oddity must not hide the others."""
    name = getattr(step, "__name__", None) or getattr(step, "func", step).__name__
    try:
        return step()
    except (RuntimeError, AgentError, OSError, ValueError) as exc:
        return Line(name, WRONG, f"{type(exc).__name__}: {exc}")


def _wait(value: Callable[[], int], target: int, timeout: float) -> int:
    end = time.monotonic() + timeout
    while value() < target and time.monotonic() < end:
        time.sleep(0.05)
    return value()


def _site(db: Path, site_id: str) -> tuple[Any, ...]:
    """What the centre's store holds of a site: availability, meta's version, state's seq."""
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as con:
        row = con.execute(
            "SELECT availability, agent_version, state_seq FROM sites WHERE site_id = ?",
            (site_id,),
        ).fetchone()
    return tuple(row) if row else (None, None, None)


def _picture(db: Path, site_id: str) -> int:
    return sum(value is not None for value in _site(db, site_id))


def run_checks(url: str, prefix: str = "vc") -> list[Line]:
    with tempfile.TemporaryDirectory(prefix="broker-compat-") as tmp:
        return list(Checks(Broker.from_url(url, prefix)).run(Path(tmp)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="mqtt://[user:password@]host:port")
    parser.add_argument("--prefix", default="vc", help="the topic prefix (default vc)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    broker = Broker.from_url(args.url, args.prefix)
    print(f"broker {broker.host}:{broker.port}, prefix {broker.prefix}")
    with tempfile.TemporaryDirectory(prefix="broker-compat-") as tmp:
        for line in Checks(broker).run(Path(tmp)):
            print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
