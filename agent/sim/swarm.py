"""Many simulated sites on few resources: each site its own MQTT 5 connection (own client id,
own will, own `seq`), driven by a tiny asyncio client on raw sockets. A thousand paho clients
in one process would each want a thread or a select loop of their own, and multiplexing many
site ids over a few paho connections would not look like a fleet to the broker (one will, one
session, one TCP stream for many sites). Used by bench/fleet.py, bench/dashboard.py and the
simulated province (agent/sim/province_demo.py).
"""

from __future__ import annotations

import asyncio
import random
import struct
from collections.abc import Callable
from datetime import UTC, datetime

from agent.checks.live import CallState, LiveVerdict, MediaStats
from agent.contract.payloads import LiveEventPayload, LivePayload, SessionRef
from agent.contract.topics import topic_for
from agent.sim.fleet_site import Message, SimSite


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _str(s: str | bytes) -> bytes:
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _packet(head: int, body: bytes) -> bytes:
    return bytes([head]) + _varint(len(body)) + body


def connect_packet(client_id: str, keepalive: int, will: Message) -> bytes:
    topic, payload, retain = will
    flags = 0x02 | 0x04 | (1 << 3) | (0x20 if retain else 0)  # clean start, will QoS 1
    var = _str("MQTT") + bytes([5, flags]) + struct.pack("!H", keepalive) + b"\x00"
    return _packet(0x10, var + _str(client_id) + b"\x00" + _str(topic) + _str(payload))


def publish_packet(mid: int, message: Message) -> bytes:
    topic, payload, retain = message
    return _packet(0x32 | int(retain), _str(topic) + struct.pack("!H", mid) + b"\x00" + payload)


class SiteClient:
    """One site: one connection, QoS 1 publishes, PUBACKs counted."""

    def __init__(self, site: SimSite, client_prefix: str = "bench-") -> None:
        self.site = site
        self.client_prefix = client_prefix
        self.mid = 0
        self.unacked: set[int] = set()
        self.sent: list[int] = []  # seqs of queued reports (state, checks, attendance)
        self.acked = 0
        self.seq_in_flight: dict[int, int] = {}  # mid -> seq of a queued report
        self.acked_seqs: list[int] = []  # what an agent would delete from its outbox
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task[None] | None = None
        # The live watch, when `drive` is given a "live" period and a session: what the
        # site's codec says now, and since when.
        self.live_verdict = LiveVerdict.IN_CALL
        self.live_since = datetime.now(UTC)

    async def connect(self, port: int) -> None:
        reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        will = self.site.availability("offline", "connection lost (will)")
        self.writer.write(connect_packet(f"{self.client_prefix}{self.site.site_id}", 120, will))
        head = await reader.readexactly(2)
        body = await reader.readexactly(head[1])
        if head[0] != 0x20 or body[1] != 0:
            raise RuntimeError(f"{self.site.site_id}: CONNACK refused ({body[1]:#x})")
        self.reader_task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                head = (await reader.readexactly(1))[0]
                length, shift = 0, 0
                while True:
                    b = (await reader.readexactly(1))[0]
                    length |= (b & 0x7F) << shift
                    shift += 7
                    if not b & 0x80:
                        break
                body = await reader.readexactly(length) if length else b""
                if head >> 4 == 4:  # PUBACK
                    mid = struct.unpack("!H", body[:2])[0]
                    if mid in self.unacked:
                        self.unacked.discard(mid)
                        self.acked += 1
                        seq = self.seq_in_flight.pop(mid, None)
                        refused = len(body) > 2 and body[2] >= 0x80
                        if seq is not None and not refused:
                            self.acked_seqs.append(seq)
        except (asyncio.IncompleteReadError, ConnectionError):
            return

    def announce(self) -> None:
        """What an agent publishes on connect: availability, meta, a birth state."""
        self.publish(self.site.availability(), queued=False)
        self.publish(self.site.meta(), queued=False)
        self.publish(self.site.state("birth"))

    def publish(self, message: Message, queued: bool = True) -> None:
        assert self.writer is not None
        self.mid = self.mid % 65535 + 1
        self.unacked.add(self.mid)
        if queued:
            self.sent.append(self.site.seq)
            self.seq_in_flight[self.mid] = self.site.seq
        self.writer.write(publish_packet(self.mid, message))

    def ping(self) -> None:
        if self.writer is not None:
            self.writer.write(b"\xc0\x00")

    def drop(self) -> None:
        """The line goes down: the connection is cut without a DISCONNECT, so the broker
        publishes the site's will (a district uplink failure, a site losing power)."""
        if self.writer is not None:
            self.writer.transport.abort()
            self.writer = None
        if self.reader_task is not None:
            self.reader_task.cancel()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.write(b"\xe0\x00")  # DISCONNECT: the will is discarded
            await self.writer.drain()
            self.writer.close()
        if self.reader_task is not None:
            self.reader_task.cancel()


def live(site: SimSite, session: SessionRef, verdict: LiveVerdict, since: datetime) -> Message:
    """The site's retained `live` state, as small as an agent's: one call, two media."""
    in_call = verdict is not LiveVerdict.DROPPED
    media = (
        MediaStats(kind="audio", direction="in", loss_pct=0.0, jitter_ms=2.0),
        MediaStats(kind="video", direction="in", loss_pct=0.0, jitter_ms=4.0),
    )
    payload = LivePayload(
        site_id=site.site_id, seq=site._next(), boot=site.boot, ts=datetime.now(UTC),
        verdict=verdict, since=since, reason=f"sim: {verdict.value}", session=session,
        call=CallState(in_call=in_call, media=media if in_call else ()),
    )  # fmt: skip
    return topic_for(site.prefix, site.site_id, "live"), payload.to_bytes(), True


def live_event(
    site: SimSite, session: SessionRef, before: LiveVerdict | None, after: LiveVerdict
) -> Message:
    payload = LiveEventPayload(
        site_id=site.site_id, seq=site._next(), boot=site.boot, ts=datetime.now(UTC),
        session=session, before=before, after=after, reason=f"sim: {after.value}",
    )  # fmt: skip
    return topic_for(site.prefix, site.site_id, "live_event"), payload.to_bytes(), False


def live_change(client: SiteClient, session: SessionRef, verdict: LiveVerdict) -> None:
    """What an agent's live watch sends when its verdict moves: the event, then the state."""
    before = client.live_verdict
    client.live_verdict, client.live_since = verdict, datetime.now(UTC)
    client.publish(live_event(client.site, session, before, verdict))
    client.publish(live(client.site, session, verdict, client.live_since))


def some_present(site: SimSite) -> int | None:
    """Between half and all of the people summoned."""
    return random.randint(site.expected // 2, site.expected)


async def drive(
    client: SiteClient,
    periods: dict[str, float],
    stop_at: float,
    session: str = "sim-session",
    count: Callable[[SimSite], int | None] = some_present,
    *,
    live_session: SessionRef | None = None,
) -> None:
    """Publish on each kind's period (state, checks, attendance; `live`, the retained live
    state, when a `live_session` is given), phases spread at random, and ping the broker,
    until `stop_at` (the loop's clock)."""
    loop = asyncio.get_running_loop()
    site = client.site
    due = {k: loop.time() + random.uniform(0, p) for k, p in periods.items()}
    due["ping"] = loop.time() + 50
    while True:
        kind = min(due, key=due.__getitem__)
        if due[kind] >= stop_at:
            return
        await asyncio.sleep(max(0.0, due[kind] - loop.time()))
        if client.writer is None:
            return  # dropped: a site whose line is down says nothing
        if kind == "state":
            client.publish(site.state())
        elif kind == "checks":
            client.publish(site.checks())
        elif kind == "attendance":
            client.publish(site.attendance(session, count(site)))
        elif kind == "live":
            if live_session is not None:
                client.publish(live(site, live_session, client.live_verdict, client.live_since))
        else:
            client.ping()
        due[kind] += periods.get(kind, 50)
