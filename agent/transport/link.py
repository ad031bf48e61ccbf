"""The agent's link to the centre's broker: connect, announce, drain the outbox, reconnect.

One thread (`mqtt-link`) owns the connection. On every connect it publishes the retained
`availability: online` and `meta`, and asks the daemon for a fresh `state` (queued, so it is
the last retained state once the backlog has drained: no stale retained value is left). It
then sends the outbox in seq order, at most `report.max_inflight` unacknowledged and at
`report.drain_rate_per_s`, deleting each report only on its PUBACK. A PUBACK with a failure
reason (an ACL refusal) does not delete: the report is kept, marked refused, logged and
counted in the link status and in `state.outbox.refused`.

`historical`: a report is sent live only when it was queued while the very connection that
sends it was up; anything queued while down, in an earlier connection, or by an earlier
process goes out with `historical: true`.

Why one file past 400 lines: the link and one connection's session (`_Session`) are one state
machine: connect, announce, drain with a window and a rate, PUBACKs, refusals, shutdown. Split,
the session would reach into the link's private state at every step.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from agent.config import Settings
from agent.contract.payloads import AvailabilityPayload, MetaPayload, utc_now
from agent.contract.topics import TOPICS, topic_for
from agent.errors import TransportError
from agent.messages import Message, message
from agent.transport.mqtt import (
    Closed,
    ConnAck,
    Connection,
    Endpoint,
    Event,
    Inbound,
    Protocol,
    PubAck,
    UnsendableError,
    Will,
    endpoint,
    why,
)
from agent.transport.outbox import Outbox, Row
from agent.transport.pacing import TokenBucket, backoff_delay

log = logging.getLogger(__name__)

# cause ("birth" | "rebirth"), protocol -> the meta record; the daemon also queues a state.
BirthHook = Callable[[str, Protocol], MetaPayload]
MessageHandler = Callable[[Inbound], None]

_IDLE_S = 1.0  # select timeout when idle: keepalive needs a tick, nothing else does
# A connection that lasted less than this does not reset the backoff: a broker that accepts
# and then drops us (it does so after an ACL refusal) must not be hammered every second.
_PROTOCOL_KEY = "mqtt_protocol"  # outbox kv: the protocol of the last CONNACK
_STABLE_S = 30.0
# Refused reports are retried on the first connection of a process, then at most this often
# (each retry costs a dropped connection while the ACL still refuses).
_REFUSED_RETRY_S = 3600.0
# mosquitto 2.0 closes the connection right after refusing a publish, and the refusing PUBACK
# can be lost in the close. A report that was the oldest in flight when this many short
# connections in a row dropped is treated as refused, so it cannot block the queue forever.
_POISON_DROPS = 3


@dataclass(frozen=True)
class LinkStatus:
    connected: bool = False
    protocol: str | None = None
    boot: int = 0
    connected_since: float | None = None
    down_since: float | None = None  # not connected since (epoch s); None while connected
    connects: int = 0
    last_error: str = ""
    last_error_msg: Message | None = None  # the same, for a reader in another language
    refused: int = 0
    last_refusal: str = ""


def as_historical(payload: bytes) -> bytes:
    data = json.loads(payload)
    data["historical"] = True
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


class Link:
    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        birth: BirthHook,
        *,
        on_message: MessageHandler | None = None,
        on_down: Callable[[], None] | None = None,
        subscriptions: Sequence[str] = (),
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self._birth = birth
        self._on_message = on_message
        # Told when a live connection ends, so the site's LED shows it at once, not at the
        # loop's next wake (up to a heartbeat interval later).
        self._on_down = on_down
        self._subscriptions = [n for n in subscriptions if n in TOPICS]
        client_id = settings.broker.client_id or f"edge-agent-{settings.site.site_id}"
        # Bad broker settings (TLS files, password without user) fail here, at start-up.
        self._endpoint: Endpoint = endpoint(settings.broker, client_id)
        self._protocol = self._first_protocol()
        self._stop = threading.Event()
        self._rebirth = threading.Event()
        self._new_work = threading.Event()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._status = LinkStatus(down_since=time.time())
        self._status_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._retry_refused_at = 0.0
        self._suspect: tuple[int, int] = (0, 0)  # (seq oldest in flight at a drop, drops)
        outbox.add_listener(self.wake)

    # ---- API for other threads ---------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="mqtt-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Publish `offline`, disconnect cleanly and return (bounded by shutdown_timeout_s)."""
        self._stop.set()
        self.wake()
        if self._thread is not None:
            self._thread.join(self.settings.report.shutdown_timeout_s + 2.0)
        self._wake_r.close()
        self._wake_w.close()

    def wake(self) -> None:
        self._new_work.set()
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"\0")

    def request_rebirth(self) -> None:
        """Republish every retained topic now (the `rebirth` command)."""
        self._rebirth.set()
        self.wake()

    def status(self) -> LinkStatus:
        with self._status_lock:
            return self._status

    def _set_status(self, **changes: object) -> None:
        with self._status_lock:
            status = replace(self._status, **changes)  # type: ignore[arg-type]
            if status.connected:
                status = replace(status, down_since=None)
            elif status.down_since is None:
                status = replace(status, down_since=time.time())
            self._status = status

    # ---- the link thread ---------------------------------------------------------------

    def alive(self) -> bool:
        """The link thread is running (or not started yet). False only when it has died: then
        nothing will ever reconnect, and the daemon stops feeding systemd's watchdog."""
        return self._thread is None or self._thread.is_alive() or self._stop.is_set()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                continue_quickly, stable = self._attempt()
            except Exception as exc:
                # A bug must not silently end the link (the will fires and nothing ever
                # reconnects): log it, drop this connection and start a new one.
                log.exception("broker link failed; starting a new connection")
                err = message("mqtt.link_error", detail=repr(exc)[:200])
                self._set_status(connected=False, last_error=err.text, last_error_msg=err)
                continue_quickly, stable = False, False
            if stable:
                attempt = 0
            if self._stop.is_set():
                break
            if continue_quickly:
                continue
            delay = backoff_delay(
                attempt, self.settings.broker.reconnect_min_s, self.settings.broker.reconnect_max_s
            )
            attempt += 1
            log.info("reconnecting to the broker in %.1f s", delay)
            self._stop.wait(delay)

    def _attempt(self) -> tuple[bool, bool]:
        """One connection, from CONNECT to its end: (retry at once, it lasted long enough to
        reset the backoff)."""
        boot = self.outbox.next_boot()
        conn = Connection(
            self._endpoint,
            self._protocol,
            self._availability_will(boot),
            max_inflight=self.settings.report.max_inflight,
        )
        try:
            ack = self._connect(conn)
            if ack is not None and ack.ok:
                self._remember_protocol()
                began = time.monotonic()
                self._serve(conn, boot, ack)
                return False, time.monotonic() - began >= _STABLE_S
            return self._maybe_fall_back(conn, ack), False
        finally:
            conn.abort()  # a no-op after a clean close; else the socket must not leak

    def _connect(self, conn: Connection) -> ConnAck | None:
        where = self._endpoint.address
        try:
            conn.open(self.settings.broker.connect_timeout_s)
        except TransportError as exc:
            self._fail(exc.msg or message("mqtt.why.other", detail=str(exc)))
            return None
        deadline = time.monotonic() + self.settings.broker.connect_timeout_s
        while time.monotonic() < deadline:
            if self._stop.is_set():
                conn.abort()
                return None
            for event in conn.pump(0.2):
                if isinstance(event, ConnAck):
                    if not event.ok:
                        self._fail(message("mqtt.refused", where=where, why=why(event.reason)))
                        conn.abort()
                    return event
                if isinstance(event, Closed):
                    self._fail(message("mqtt.closed", where=where, why=why(event.reason)))
                    return None
        seconds = self.settings.broker.connect_timeout_s
        self._fail(message("mqtt.no_connack", where=where, seconds=seconds))
        conn.abort()
        return None

    def _first_protocol(self) -> Protocol:
        """`auto` starts with the protocol that last got a CONNACK: a 3.1.1-only broker
        would otherwise cost a refused MQTT 5 CONNECT (which some brokers log, password
        included) and a boot number at every start."""
        mode = self.settings.broker.protocol
        if mode != "auto":
            return Protocol(mode)
        remembered = self.outbox.get_kv(_PROTOCOL_KEY)
        known = {str(p).encode(): p for p in Protocol}
        return known.get(remembered or b"", Protocol.V5)

    def _remember_protocol(self) -> None:
        if self.settings.broker.protocol != "auto":
            return
        value = str(self._protocol).encode()
        try:
            if self.outbox.get_kv(_PROTOCOL_KEY) != value:
                self.outbox.put_kv(_PROTOCOL_KEY, value)
        except TransportError as exc:
            # Only a saving at the next start: a full disk must not cost a good connection.
            log.warning("MQTT version not remembered: %s", exc)

    def _maybe_fall_back(self, conn: Connection, ack: ConnAck | None) -> bool:
        """In `auto` mode, try MQTT 3.1.1 when the broker refuses (or drops) an MQTT 5 CONNECT.

        Returns True to retry at once: the broker said outright that it does not speak MQTT 5
        (only that case, so a broker refusing both versions is not hammered).
        """
        if self.settings.broker.protocol != "auto":
            return False
        refused = ack is not None and ack.protocol_refused
        if refused or (ack is None and conn.opened):
            other = Protocol.V311 if self._protocol is Protocol.V5 else Protocol.V5
            log.warning("broker did not take MQTT %s; trying MQTT %s", self._protocol, other)
            self._protocol = other
        return refused and self._protocol is Protocol.V311

    def _fail(self, msg: Message) -> None:
        # The journal gets the English; `edge-agent status` renders the message.
        if msg.text != self.status().last_error:
            log.warning("%s", msg.text)
        else:
            log.debug("%s", msg.text)
        self._set_status(connected=False, last_error=msg.text, last_error_msg=msg)

    def _availability(
        self, boot: int, status: Literal["online", "offline"], reason: str = ""
    ) -> AvailabilityPayload:
        return AvailabilityPayload(
            site_id=self.settings.site.site_id,
            seq=self.outbox.last_seq,
            boot=boot,
            ts=utc_now(),
            status=status,
            reason=reason,
            keepalive_s=self.settings.broker.keepalive_s,
        )

    def _availability_will(self, boot: int) -> Will:
        payload = self._availability(boot, "offline", "connection lost (will)")
        return Will(self._topic("availability"), payload.to_bytes(), qos=1, retain=True)

    def _topic(self, name: str) -> str:
        return topic_for(self.settings.broker.prefix, self.settings.site.site_id, name)

    # ---- one connection ----------------------------------------------------------------

    def _serve(self, conn: Connection, boot: int, ack: ConnAck) -> None:
        log.info(
            "connected to %s:%d (MQTT %s, boot %d%s)",
            self._endpoint.host,
            self._endpoint.port,
            self._protocol,
            boot,
            ", session resumed" if ack.session_present else "",
        )
        self._set_status(
            connected=True,
            protocol=str(self._protocol),
            boot=boot,
            connected_since=time.time(),
            connects=self.status().connects + 1,
            last_error="",
            last_error_msg=None,
        )
        self.outbox.set_live_boot(boot)
        if time.monotonic() >= self._retry_refused_at:
            self._retry_refused_at = time.monotonic() + _REFUSED_RETRY_S
            if retried := self.outbox.retry_refused():
                log.info("retrying %d report(s) the broker refused before", retried)
        window = self.settings.report.max_inflight
        if ack.receive_maximum:
            window = min(window, ack.receive_maximum)
        session = _Session(self, conn, boot, window)
        began = time.monotonic()
        try:
            # Subscribe first: a command sent on seeing `online` finds the subscription, and
            # the announce and the first reports still leave back to back.
            if self._on_message is not None:
                conn.subscribe([(self._topic(n), TOPICS[n].qos) for n in self._subscriptions])
            session.announce("birth")
            session.run()
            if not self._stop.is_set():
                self._note_drop(session, time.monotonic() - began)
        finally:
            self.outbox.set_live_boot(None)
            self.outbox.release()
            self._set_status(connected=False, connected_since=None)
            if self._on_down is not None:
                self._on_down()

    def _note_drop(self, session: _Session, lasted_s: float) -> None:
        rows = [r for r in session.inflight.values() if isinstance(r, Row)]
        if not rows or lasted_s >= _STABLE_S:
            self._suspect = (0, 0)
            return
        oldest = min(rows, key=lambda r: r.seq)
        seq, drops = self._suspect
        drops = drops + 1 if seq == oldest.seq else 1
        self._suspect = (oldest.seq, drops)
        if drops >= _POISON_DROPS:
            reason = f"connection dropped {drops} times in a row while sending it"
            self.outbox.refuse(oldest.seq, reason)
            self._record_refusal(f"{oldest.topic} seq {oldest.seq}", reason)
            self._suspect = (0, 0)

    def _record_refusal(
        self, what: str, reason: str, hint: str = "check the broker ACL for this site"
    ) -> None:
        log.error("%s refused: %s (%s)", what, reason, hint)
        status = self.status()
        self._set_status(refused=status.refused + 1, last_refusal=f"{what}: {reason}")


class _Session:
    """State of one live connection: what is in flight, where the drain is."""

    def __init__(self, link: Link, conn: Connection, boot: int, window: int) -> None:
        self.link = link
        self.conn = conn
        self.boot = boot
        self.window = window
        self.inflight: dict[int, Row | str] = {}  # mid -> outbox row, or a direct topic name
        self.cursor = 0
        self.more = True
        rate = link.settings.report.drain_rate_per_s
        self.bucket = TokenBucket(rate, window, time.monotonic())

    def publish_direct(self, name: str, payload: bytes) -> None:
        topic = TOPICS[name]
        mid = self.conn.publish(self.link._topic(name), payload, topic.qos, topic.retained)
        self.inflight[mid] = name

    def announce(self, cause: str) -> None:
        """online + meta straight to the broker; the daemon queues a fresh state."""
        link = self.link
        self.publish_direct("availability", link._availability(self.boot, "online").to_bytes())
        meta = link._birth(cause, link._protocol)
        stamped = meta.model_copy(update={"seq": link.outbox.last_seq, "boot": self.boot})
        self.publish_direct("meta", stamped.to_bytes())

    def run(self) -> None:
        link = self.link
        while not self.conn.closed:
            if link._stop.is_set():
                self.shutdown()
                return
            if link._rebirth.is_set():
                link._rebirth.clear()
                self.announce("rebirth")
            if link._new_work.is_set():
                link._new_work.clear()
                self.more = True
            self.fill()
            self.handle(self.conn.pump(self.timeout(), link._wake_r))

    def fill(self) -> None:
        room = self.window - len(self.inflight)
        if room <= 0 or not self.more:
            return
        now = time.monotonic()
        n = min(room, self.bucket.available(now))
        if n <= 0:
            return
        rows = self.link.outbox.pending(self.cursor, n)
        if len(rows) < n:
            self.more = False
        for row in rows:
            self.cursor = row.seq
            live = row.live_boot == self.boot
            payload = row.payload if live else as_historical(row.payload)
            try:
                mid = self.conn.publish(row.topic, payload, row.qos, row.retain, row.correlation)
            except UnsendableError as exc:
                # Sending it again can never work: keep it on disk, counted, and move on.
                self.link.outbox.set_aside(row.seq, exc.message)
                self.link._record_refusal(
                    f"report seq {row.seq}", exc.message, "it can never be sent: set aside"
                )
                continue
            self.inflight[mid] = row
        self.bucket.take(now, len(rows))

    def timeout(self) -> float:
        if self.more and len(self.inflight) < self.window:
            return min(_IDLE_S, self.bucket.wait_s(time.monotonic()))
        return _IDLE_S

    def handle(self, events: list[Event]) -> None:
        acked: list[int] = []
        for event in events:
            if isinstance(event, PubAck):
                item = self.inflight.pop(event.mid, None)
                if item is None:
                    continue
                if isinstance(item, str):
                    if not event.ok:
                        self.link._record_refusal(self.link._topic(item), event.reason)
                elif event.ok:
                    acked.append(item.seq)
                else:
                    self.link.outbox.refuse(item.seq, event.reason)
                    self.link._record_refusal(f"{item.topic} seq {item.seq}", event.reason)
            elif isinstance(event, Inbound):
                self.dispatch(event)
            elif isinstance(event, Closed):
                log.warning("connection to the broker lost: %s", event.reason)
                lost = message("mqtt.connection_lost", why=why(event.reason))
                self.link._set_status(last_error=lost.text, last_error_msg=lost)
        self.link.outbox.ack(acked)

    def dispatch(self, message: Inbound) -> None:
        handler = self.link._on_message
        if handler is None:
            return
        try:
            handler(message)
        except Exception:
            log.exception("handler for %s failed", message.topic)

    def shutdown(self) -> None:
        """`offline` (retained), wait for its PUBACK and the pending acks, then DISCONNECT."""
        link = self.link
        offline = link._availability(self.boot, "offline", "clean shutdown").to_bytes()
        self.publish_direct("availability", offline)
        deadline = time.monotonic() + link.settings.report.shutdown_timeout_s
        while "availability" in self.inflight.values() and not self.conn.closed:
            if time.monotonic() > deadline:
                log.warning("broker did not acknowledge `offline` before shutdown")
                break
            self.handle(self.conn.pump(0.1))
        self.conn.disconnect()
        end = time.monotonic() + 1.0
        while not self.conn.closed and time.monotonic() < end:
            self.handle(self.conn.pump(0.1))
        log.info("disconnected from the broker")
