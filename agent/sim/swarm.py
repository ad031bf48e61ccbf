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

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.write(b"\xe0\x00")  # DISCONNECT: the will is discarded
            await self.writer.drain()
            self.writer.close()
        if self.reader_task is not None:
            self.reader_task.cancel()


def some_present(site: SimSite) -> int | None:
    """Between half and all of the people summoned."""
    return random.randint(site.expected // 2, site.expected)


async def drive(
    client: SiteClient,
    periods: dict[str, float],
    stop_at: float,
    session: str = "sim-session",
    count: Callable[[SimSite], int | None] = some_present,
) -> None:
    """Publish on each kind's period (state, checks, attendance), phases spread at random,
    and ping the broker, until `stop_at` (the loop's clock)."""
    loop = asyncio.get_running_loop()
    site = client.site
    due = {k: loop.time() + random.uniform(0, p) for k, p in periods.items()}
    due["ping"] = loop.time() + 50
    while True:
        kind = min(due, key=due.__getitem__)
        if due[kind] >= stop_at:
            return
        await asyncio.sleep(max(0.0, due[kind] - loop.time()))
        if kind == "state":
            client.publish(site.state())
        elif kind == "checks":
            client.publish(site.checks())
        elif kind == "attendance":
            client.publish(site.attendance(session, count(site)))
        else:
            client.ping()
        due[kind] += periods.get(kind, 50)
