"""A subscriber on the centre's side: what the demo prints, what tests assert on, and the
seed of the centre (fleet issue). Runs its own thread around one `Connection` at a time and
reconnects with a persistent session, so a broker restart loses nothing addressed to it.

With `manual_ack`, a QoS 1 message is acknowledged only when its consumer says so (`ack()`,
from any thread, e.g. after a database commit): until then the broker keeps it in the session
and sends it again after a reconnect, so a consumer killed with a message in memory loses
nothing. The acknowledgement itself is sent by the listener's thread (paho is not
thread-safe), woken through a socket pair; so is an `unsubscribe()` asked from another thread.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.errors import ProtocolRefused, TransportError
from agent.messages import message
from agent.transport.mqtt import (
    Closed,
    ConnAck,
    Connection,
    Endpoint,
    Inbound,
    Protocol,
    ProtocolSetting,
    SubAck,
    UnsubAck,
    protocol_refused,
    protocols,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Receipt:
    """What `Listener.ack` needs: the message's mid on the connection that brought it."""

    connection: int
    mid: int
    qos: int


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool
    at: float = field(default_factory=time.monotonic)
    receipt: Receipt | None = field(default=None, compare=False)  # with manual_ack only

    def json(self) -> dict[str, Any]:
        data = json.loads(self.payload)
        if not isinstance(data, dict):
            raise ValueError(f"{self.topic}: payload is not a JSON object")
        return data


@dataclass(eq=False)
class _Leave:
    """An `unsubscribe()` under way: sent again on each new connection until its UNSUBACK
    (a persistent session keeps the subscription across a reconnect)."""

    filters: list[str]
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False
    sent: tuple[int, int] | None = None  # (connection number, mid)


class Listener:
    def __init__(
        self,
        where: Endpoint,
        filters: Sequence[str],
        *,
        protocol: ProtocolSetting = Protocol.V5,
        qos: int = 1,
        on_message: Callable[[Received], None] | None = None,
        manual_ack: bool = False,
    ) -> None:
        self.where = where
        self.filters = list(filters)
        self._order = protocols(protocol)
        self.protocol = self._order[0]  # after start(): the one the broker took
        self._refused: ProtocolRefused | None = None
        self.qos = qos
        self._on_message = on_message
        self._messages: list[Received] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._outgoing: list[tuple[str, bytes, int, bool]] = []
        self._thread: threading.Thread | None = None
        self.connects = 0
        self.manual_ack = manual_ack
        self._acks: list[Receipt] = []
        self._leaving: list[_Leave] = []
        self._wake: tuple[socket.socket, socket.socket] | None = None
        if manual_ack:
            self._wake = socket.socketpair()
            for end in self._wake:
                end.setblocking(False)

    def start(self, timeout: float = 5.0) -> Listener:
        """Start and wait until the subscriptions are granted."""
        self._thread = threading.Thread(target=self._run, name="listener", daemon=True)
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._subscribed.wait(0.02) and self._refused is None:
            if time.monotonic() >= end:
                break
        if self._refused is not None:
            self.stop()
            raise self._refused
        if not self._subscribed.is_set():
            self.stop()
            raise TransportError(
                message(
                    "broker.no_suback", host=self.where.host, port=self.where.port, seconds=timeout
                ),
                message("broker.hint.running_and_allowed"),
            )
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._wake is not None and (self._thread is None or not self._thread.is_alive()):
            for end in self._wake:
                end.close()

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> None:
        with self._cond:
            self._outgoing.append((topic, payload, qos, retain))

    def ack(self, receipts: Iterable[Receipt]) -> None:
        """Acknowledge these messages (thread-safe). Those of an earlier connection are
        skipped: the broker sends them again on the new one, to be acknowledged there."""
        with self._cond:
            self._acks.extend(receipts)
        self._poke()

    def unsubscribe(self, filters: Sequence[str], timeout: float) -> bool:
        """Leave these filters, keeping the connection (thread-safe); True once the broker
        answered with its UNSUBACK within `timeout`. A reconnect does not subscribe them again."""
        leave = _Leave(list(filters))
        if not leave.filters:
            return True
        with self._cond:
            self.filters = [f for f in self.filters if f not in leave.filters]
            self._leaving.append(leave)
        self._poke()
        return leave.done.wait(timeout) and leave.ok

    def _poke(self) -> None:
        """Wake the listener's thread out of its wait on the socket (with manual_ack; without,
        it looks again within 50 ms)."""
        if self._wake is not None:
            with contextlib.suppress(OSError):  # full: a wake is pending anyway; closed: stopped
                self._wake[1].send(b"\0")

    def messages(self, topic: str | None = None) -> list[Received]:
        with self._cond:
            return [m for m in self._messages if topic is None or m.topic == topic]

    def clear(self) -> None:
        with self._cond:
            self._messages.clear()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float) -> bool:
        """Wait until `predicate(all messages so far)` holds; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._messages), timeout)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            number += 1
            conn = Connection(self.where, self.protocol, manual_ack=self.manual_ack)
            try:
                conn.open(5.0)
                self._serve(conn, number)
            except TransportError as exc:
                log.debug("listener: %s", exc)
            finally:
                conn.abort()  # a no-op after a clean close; else the socket must not leak
            if not self._stop.is_set():
                self._stop.wait(0.2)

    def _serve(self, conn: Connection, number: int) -> None:
        connacked = False
        while not conn.closed and not self._stop.is_set():
            with self._cond:
                outgoing, self._outgoing = self._outgoing, []
            for topic, payload, qos, retain in outgoing:
                conn.publish(topic, payload, qos, retain)
            self._send_acks(conn, number)
            if connacked:
                self._send_leaves(conn, number)
            for event in conn.pump(0.05, self._wake[0] if self._wake else None):
                if isinstance(event, ConnAck):
                    if event.protocol_refused:
                        self._next_protocol(event)
                        return
                    if not event.ok:
                        log.warning("listener: connection refused: %s", event.reason)
                        return
                    self.connects += 1
                    connacked = True
                    with self._cond:
                        filters = list(self.filters)
                    conn.subscribe([(f, self.qos) for f in filters])
                elif isinstance(event, SubAck):
                    self._subscribed.set()
                elif isinstance(event, UnsubAck):
                    self._left(event, number)
                elif isinstance(event, Inbound):
                    receipt = Receipt(number, event.mid, event.qos)
                    self._receive(
                        Received(
                            event.topic,
                            event.payload,
                            event.retain,
                            receipt=receipt if self.manual_ack else None,
                        )
                    )
                elif isinstance(event, Closed):
                    log.debug("listener: closed: %s", event.reason)
                    if event.before_connack:
                        self._unanswered()
        if self._stop.is_set() and not conn.closed:
            self._send_acks(conn, number)  # before DISCONNECT: else sent again next time
            conn.disconnect()
            end = time.monotonic() + 1.0
            while not conn.closed and time.monotonic() < end:
                conn.pump(0.05)

    def _next_protocol(self, ack: ConnAck) -> None:
        """The broker does not speak this version: the next one in `auto`, else give up
        (start() says so) rather than ask again every 0.2 s."""
        later = self._order[self._order.index(self.protocol) + 1 :]
        if later:
            log.info("listener: broker refused MQTT %s; trying %s", self.protocol, later[0])
            self.protocol = later[0]
        else:
            self._refused = protocol_refused(self.where, self.protocol, ack.reason)
            self._stop.set()

    def _unanswered(self) -> None:
        """The broker closed the connection without a CONNACK: RabbitMQ 3.10 answers an MQTT 5
        CONNECT so (docs/brokers.md). Under `auto`, and until a first CONNACK settles the
        version, the next attempt uses the other one (as the agent's link does): a drop can also
        be a broker restarting, so no version is given up for good."""
        if len(self._order) > 1 and self.connects == 0:
            self.protocol = self._order[(self._order.index(self.protocol) + 1) % len(self._order)]
            log.info("listener: broker closed the connection unanswered; trying %s", self.protocol)

    def _send_acks(self, conn: Connection, number: int) -> None:
        with self._cond:
            acks, self._acks = self._acks, []
        for receipt in acks:
            if receipt.connection == number:
                conn.ack(receipt.mid, receipt.qos)

    def _send_leaves(self, conn: Connection, number: int) -> None:
        with self._cond:
            due = [leave for leave in self._leaving if (leave.sent or (0,))[0] != number]
        for leave in due:
            mid = conn.unsubscribe(leave.filters)
            if mid is not None:
                leave.sent = (number, mid)

    def _left(self, ack: UnsubAck, number: int) -> None:
        with self._cond:
            done = [leave for leave in self._leaving if leave.sent == (number, ack.mid)]
            self._leaving = [leave for leave in self._leaving if leave not in done]
        for leave in done:
            if not ack.ok:
                log.warning("listener: unsubscribe refused: %s", ", ".join(ack.reasons))
            leave.ok = ack.ok
            leave.done.set()

    def _receive(self, message: Received) -> None:
        with self._cond:
            self._messages.append(message)
            self._cond.notify_all()
        if self._on_message is not None:
            self._on_message(message)
