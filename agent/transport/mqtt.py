"""The only module that imports paho. Everything else speaks in typed values.

`Connection` is one paho client for one network connection, driven by the caller's thread
with `pump()` (paho's external-loop API): a new client per connection attempt, so a new will
(with its `boot`) goes with every CONNECT and nothing of paho's in-memory queue outlives a
connection — the outbox, not paho, decides what is resent and how it is marked. Events (CONNACK,
PUBACK with its reason code, SUBACK, UNSUBACK, messages, close) come back as values from
`pump()`, so no agent logic runs inside paho callbacks.

paho's numeric codes, ssl errors and OSErrors are turned into `TransportError` or event
values here, at the boundary.

Why one file past 400 lines: it is the only importer of paho by design (docs/architecture.md),
so everything paho-specific (callbacks, properties, reason codes, TLS, protocol fallback)
stays behind this one boundary instead of leaking into a second module.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import select
import socket
import ssl
import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt import properties as paho_properties
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from agent.config import BrokerSettings
from agent.contract.topics import publish_topic_problem
from agent.errors import ProtocolRefused, TransportError
from agent.messages import Message, message

log = logging.getLogger(__name__)

_POLL_IN = select.POLLIN | select.POLLHUP | select.POLLERR
_UNSUPPORTED_PROTOCOL = 0x84  # MQTT 5 CONNACK reason; paho maps 3.1.1's code 1 to it too
_MAX_BINARY = 65_535  # MQTT 5 binary data and strings carry a two-byte length


def _read_utf_tolerant(buffer: bytes, maxlen: int) -> tuple[str, int]:
    """paho's reader of MQTT 5 string properties, minus its character checks.

    paho treats U+FEFF (which MQTT 5, 1.5.4, says a receiver must keep), U+0000 and bad UTF-8
    in any property of a received PUBLISH as a malformed packet and drops the connection. The
    broker then redelivers the same QoS 1 message to our persistent session at every
    reconnect, so one message with such a response topic or user property (mosquitto forwards
    U+FEFF) would keep a site off the air for good. Properties are untrusted anyway: they are
    decoded as they are (bad bytes as surrogate escapes) and judged by whoever uses them
    (`publish_topic_problem` refuses what cannot be published)."""
    if maxlen < 2:
        raise MalformedPacket("Not enough data to read string length")
    length = int.from_bytes(buffer[:2], "big")
    if length > maxlen - 2:
        raise MalformedPacket("Length delimited string too long")
    return bytes(buffer[2 : 2 + length]).decode("utf-8", "surrogateescape"), length + 2


paho_properties.readUTF = _read_utf_tolerant


class UnsendableError(TransportError):
    """paho (or MQTT itself) cannot carry this message at all: sending it again cannot help."""


class Protocol(StrEnum):
    V5 = "5"
    V311 = "3.1.1"


ProtocolSetting = Protocol | Literal["auto", "5", "3.1.1"]  # broker.protocol, or a version


def protocols(setting: str) -> tuple[Protocol, ...]:
    """The versions to try, in order, for a `broker.protocol` value ("auto": 5, then 3.1.1)."""
    return (Protocol.V5, Protocol.V311) if setting == "auto" else (Protocol(setting),)


def protocol_refused(where: Endpoint, protocol: Protocol, reason: str) -> ProtocolRefused:
    return ProtocolRefused(
        message(
            "mqtt.protocol_refused",
            where=where.address,
            version=str(protocol),
            why=why(reason),
        ),
        message("mqtt.hint.protocol"),
    )


# paho's words (CONNACK reason names, its error strings, and ours in `_mark_closed`) ->
# messages, so a technician reads why in their language. Anything else is shown as is.
_WHY = {
    "Bad user name or password": message("mqtt.why.bad_credentials"),
    "Not authorized": message("mqtt.why.not_authorized"),
    "Bad authentication method": message("mqtt.why.not_authorized"),
    "Authorisation failed.": message("mqtt.why.not_authorized"),
    "Unsupported protocol version": message("mqtt.why.unsupported_protocol"),
    "Client identifier not valid": message("mqtt.why.client_id"),
    "Server unavailable": message("mqtt.why.unavailable"),
    "Server busy": message("mqtt.why.unavailable"),
    "Connection rate exceeded": message("mqtt.why.unavailable"),
    "Banned": message("mqtt.why.banned"),
    "The connection was refused.": message("mqtt.why.port_closed"),
    "The connection was lost.": message("mqtt.why.lost"),
    "The client is not currently connected.": message("mqtt.why.not_connected"),
    "A TLS error occurred.": message("mqtt.why.tls"),
    "A network protocol error occurred when communicating with the broker.": message(
        "mqtt.why.protocol_error"
    ),
    "Client or broker did not communicate in the keepalive interval.": message(
        "mqtt.why.keepalive"
    ),
    "not connected": message("mqtt.why.not_connected"),
    "socket closed": message("mqtt.why.lost"),
    "aborted": message("mqtt.why.lost"),
}
_WHY_ERRNO = {
    errno.ECONNREFUSED: message("mqtt.why.port_closed"),
    errno.ETIMEDOUT: message("mqtt.why.timed_out"),
    errno.EHOSTUNREACH: message("mqtt.why.no_route"),
    errno.ENETUNREACH: message("mqtt.why.no_route"),
    errno.ECONNRESET: message("mqtt.why.reset"),
}


def why(reason: str) -> Message:
    """A reason paho gave (see `_WHY`) as a message."""
    return _WHY.get(reason) or message("mqtt.why.other", detail=reason)


def _os_why(exc: OSError | ssl.SSLError) -> Message:
    if isinstance(exc, socket.gaierror):
        return message("mqtt.why.unknown_host")
    if isinstance(exc, TimeoutError | socket.timeout):
        return message("mqtt.why.timed_out")
    if isinstance(exc, ssl.SSLError):
        return message("mqtt.why.tls")
    if known := _WHY_ERRNO.get(exc.errno or 0):
        return known
    text = exc.strerror or str(exc) or type(exc).__name__
    return message("mqtt.why.other", detail=text)


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class Endpoint:
    """Where and how to connect; built once at start-up, so bad settings fail early."""

    host: str
    port: int
    client_id: str
    keepalive_s: int
    username: str | None = None
    password: str | None = None
    tls: ssl.SSLContext | None = None
    session_expiry_s: int = 0
    clean_start: bool = False
    # MQTT 5 Receive Maximum: at most this many QoS 1 messages unacknowledged towards us; the
    # broker holds the rest. None: not sent (the broker's 65,535).
    receive_maximum: int | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ConnAck:
    ok: bool
    reason: str
    session_present: bool = False
    receive_maximum: int | None = None
    protocol_refused: bool = False


@dataclass(frozen=True)
class PubAck:
    mid: int
    ok: bool
    reason: str


@dataclass(frozen=True)
class Inbound:
    topic: str
    payload: bytes
    retain: bool
    qos: int
    response_topic: str | None = None
    correlation: bytes | None = None
    mid: int = 0  # for `Connection.ack` when the connection acknowledges manually


@dataclass(frozen=True)
class SubAck:
    mid: int
    ok: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class UnsubAck:
    mid: int
    ok: bool
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Closed:
    reason: str
    before_connack: bool


Event = ConnAck | PubAck | SubAck | UnsubAck | Inbound | Closed


# ---- settings -> endpoint (start-up validation) ----------------------------------------


def _readable(field: str, path: Path) -> None:
    if not path.is_file():
        raise TransportError(
            message("mqtt.file_missing", field=field, path=str(path)),
            message("mqtt.hint.put_file", field=field),
        )
    try:
        with path.open("rb"):
            pass
    except OSError as exc:
        raise TransportError(
            message("mqtt.file_unreadable", field=field, path=str(path), detail=str(exc.strerror)),
            message("mqtt.hint.readable"),
        ) from None


def tls_context(broker: BrokerSettings) -> ssl.SSLContext | None:
    """The TLS context from settings, or None; every problem names the field and the file."""
    if broker.tls_ca is None:
        return None
    _readable("tls_ca", broker.tls_ca)
    try:
        context = ssl.create_default_context(cafile=str(broker.tls_ca))
    except (ssl.SSLError, ValueError) as exc:
        raise TransportError(
            message("mqtt.bad_ca", path=str(broker.tls_ca), detail=str(exc)),
            message("mqtt.hint.ca"),
        ) from None
    if broker.tls_cert is not None and broker.tls_key is not None:
        _readable("tls_cert", broker.tls_cert)
        _readable("tls_key", broker.tls_key)
        try:
            context.load_cert_chain(str(broker.tls_cert), str(broker.tls_key))
        except ssl.SSLError as exc:
            raise TransportError(
                message(
                    "mqtt.bad_cert",
                    cert=str(broker.tls_cert),
                    key=str(broker.tls_key),
                    detail=str(exc.reason or exc),
                ),
                message("mqtt.hint.cert"),
            ) from None
    return context


def endpoint(broker: BrokerSettings, client_id: str) -> Endpoint:
    if broker.password is not None and broker.username is None:
        raise TransportError(message("mqtt.password_without_user"), message("mqtt.hint.username"))
    return Endpoint(
        host=broker.host,
        port=broker.port,
        client_id=client_id,
        keepalive_s=broker.keepalive_s,
        username=broker.username,
        password=broker.password.get_secret_value() if broker.password else None,
        tls=tls_context(broker),
        session_expiry_s=broker.session_expiry_s,
    )


# ---- one connection --------------------------------------------------------------------


def _reason_text(code: ReasonCode | int | MQTTErrorCode) -> str:
    if isinstance(code, ReasonCode):
        return str(code.getName())
    if isinstance(code, MQTTErrorCode):
        return str(paho.error_string(code))
    return str(code)


def _failed(code: ReasonCode | int) -> bool:
    return code.is_failure if isinstance(code, ReasonCode) else code >= 0x80


class Connection:
    """One paho client and one socket. Not thread-safe: one thread calls everything."""

    def __init__(
        self,
        where: Endpoint,
        protocol: Protocol,
        will: Will | None = None,
        max_inflight: int = 20,
        *,
        manual_ack: bool = False,
    ) -> None:
        self.where = where
        self.protocol = protocol
        self._events: list[Event] = []
        self._connacked = False
        self._closed = False
        self.opened = False  # TCP (and TLS) connected and CONNECT sent
        v5 = protocol is Protocol.V5
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=where.client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if v5 else where.clean_start,
            reconnect_on_failure=False,
            manual_ack=manual_ack,
        )
        client.max_inflight_messages_set(max_inflight)
        client.max_queued_messages_set(0)
        if where.username is not None:
            client.username_pw_set(where.username, where.password)
        if where.tls is not None:
            client.tls_set_context(where.tls)
        if will is not None:
            client.will_set(will.topic, will.payload, will.qos, will.retain)
        client.on_connect = self._on_connect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_unsubscribe = self._on_unsubscribe
        client.on_disconnect = self._on_disconnect
        self._client = client

    # paho callbacks: record events only.
    def _on_connect(
        self, _c: Any, _u: Any, flags: Any, reason: ReasonCode, props: Properties | None
    ) -> None:
        self._connacked = not reason.is_failure
        receive_max = getattr(props, "ReceiveMaximum", None) if props is not None else None
        self._events.append(
            ConnAck(
                ok=not reason.is_failure,
                reason=_reason_text(reason),
                session_present=bool(getattr(flags, "session_present", False)),
                receive_maximum=receive_max,
                protocol_refused=reason.value == _UNSUPPORTED_PROTOCOL,
            )
        )

    def _on_publish(
        self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _props: Properties | None
    ) -> None:
        self._events.append(PubAck(mid, not _failed(reason), _reason_text(reason)))

    def _on_subscribe(
        self, _c: Any, _u: Any, mid: int, reasons: list[ReasonCode], _props: Properties | None
    ) -> None:
        ok = not any(_failed(r) for r in reasons)
        self._events.append(SubAck(mid, ok, tuple(_reason_text(r) for r in reasons)))

    def _on_unsubscribe(
        self, _c: Any, _u: Any, mid: int, reasons: list[ReasonCode], _props: Properties | None
    ) -> None:
        # 3.1.1's UNSUBACK carries no reason codes: paho gives an empty list (a success).
        ok = not any(_failed(r) for r in reasons)
        self._events.append(UnsubAck(mid, ok, tuple(_reason_text(r) for r in reasons)))

    def _on_message(self, _c: Any, _u: Any, msg: paho.MQTTMessage) -> None:
        props = getattr(msg, "properties", None)
        self._events.append(
            Inbound(
                topic=msg.topic,
                payload=bytes(msg.payload),
                retain=bool(msg.retain),
                qos=msg.qos,
                response_topic=getattr(props, "ResponseTopic", None),
                correlation=getattr(props, "CorrelationData", None),
                mid=msg.mid,
            )
        )

    def _on_disconnect(
        self, _c: Any, _u: Any, _flags: Any, reason: ReasonCode, _props: Properties | None
    ) -> None:
        self._mark_closed(_reason_text(reason))

    def _mark_closed(self, reason: str) -> None:
        if not self._closed:
            self._closed = True
            self._events.append(Closed(reason, before_connack=not self._connacked))

    # ---- driving ----------------------------------------------------------------------

    def open(self, timeout_s: float) -> None:
        """TCP (+ TLS) connect and send CONNECT; the CONNACK comes later through pump()."""
        v5: dict[str, Any] = {}
        if self.protocol is Protocol.V5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = self.where.session_expiry_s
            if self.where.receive_maximum is not None:
                properties.ReceiveMaximum = self.where.receive_maximum
            # 3.1.1 takes clean_session in the constructor instead, and refuses these.
            v5 = {"clean_start": self.where.clean_start, "properties": properties}
        self._client.connect_timeout = timeout_s
        try:
            rc = self._client.connect(
                self.where.host, self.where.port, keepalive=self.where.keepalive_s, **v5
            )
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(
                message(
                    "mqtt.tls_refused", where=self.where.address, detail=str(exc.verify_message)
                ),
                message("mqtt.hint.tls"),
            ) from None
        except (OSError, ssl.SSLError) as exc:
            raise TransportError(
                message("mqtt.unreachable", where=self.where.address, why=_os_why(exc)),
                message("mqtt.hint.reachable"),
            ) from None
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            raise TransportError(
                message("mqtt.unreachable", where=self.where.address, why=why(_reason_text(rc))),
                message("mqtt.hint.reachable"),
            )
        self.opened = True

    def pump(self, timeout: float, wake: socket.socket | None = None) -> list[Event]:
        """Wait up to `timeout` for the socket (or `wake`), do the I/O, return what happened."""
        sock = self._client.socket()
        if sock is None or self._closed:
            self._mark_closed("not connected")
            return self._take()
        pending = sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
        # poll, not select: select refuses descriptors above 1023, which a process holding
        # many connections (a benchmark of 100 sites in one process) reaches.
        poller = select.poll()
        try:
            fd = sock.fileno()
            poller.register(fd, _POLL_IN | (select.POLLOUT if self._client.want_write() else 0))
            if wake is not None:
                poller.register(wake, select.POLLIN)
            ready = dict(poller.poll(0 if pending else timeout * 1000))
        except (OSError, ValueError):
            ready = {fd: select.POLLNVAL}
        flags = ready.get(fd, 0)
        if flags & select.POLLNVAL:
            self._mark_closed("socket closed")
            return self._take()
        if wake is not None and wake.fileno() in ready:
            with contextlib.suppress(BlockingIOError):
                wake.recv(4096)
        writable = bool(flags & select.POLLOUT)
        rc = MQTTErrorCode.MQTT_ERR_SUCCESS
        if flags & _POLL_IN or pending:
            rc = self._client.loop_read()
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS and (writable or self._client.want_write()):
            rc = self._client.loop_write()
        if rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            rc = self._client.loop_misc()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._mark_closed(_reason_text(rc))
        return self._take()

    def _take(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    @property
    def closed(self) -> bool:
        return self._closed

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int,
        retain: bool,
        correlation: bytes | None = None,
        *,
        response_topic: str | None = None,
    ) -> int:
        """Send (or queue in the socket buffer); the PUBACK comes back through pump().
        `correlation` and `response_topic` are MQTT 5 properties (dropped under 3.1.1).

        Raises UnsendableError for a message no broker could take (a wildcard topic, a
        property too long): paho raises ValueError for some of them, or fails while packing
        after it has queued the message, so they are refused here, before paho sees them."""
        problem = publish_topic_problem(topic)
        if problem is None and response_topic is not None:
            problem = publish_topic_problem(response_topic)
            problem = problem and f"response topic {problem}"
        if problem is None and correlation is not None and len(correlation) > _MAX_BINARY:
            problem = f"correlation data is longer than {_MAX_BINARY} bytes"
        if problem is not None:
            raise UnsendableError(f"topic {ascii(topic)[:80]}: {problem}", "")
        properties = None
        if self.protocol is Protocol.V5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.PayloadFormatIndicator = 1  # UTF-8 JSON
            properties.ContentType = "application/json"
            if correlation is not None:
                properties.CorrelationData = correlation
            if response_topic is not None:
                properties.ResponseTopic = response_topic
        try:
            info = self._client.publish(topic, payload, qos, retain, properties)
        except (ValueError, TypeError, struct.error) as exc:
            raise UnsendableError(f"topic {ascii(topic)[:80]}: {exc}", "") from None
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_QUEUE_SIZE):
            self._mark_closed(_reason_text(info.rc))
        return int(info.mid)

    def subscribe(self, filters: list[tuple[str, int]]) -> int | None:
        """Subscribe; the SUBACK comes back through pump() with the returned mid."""
        if not filters:
            return None
        rc, mid = self._client.subscribe(filters)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._mark_closed(_reason_text(rc))
        return int(mid) if mid is not None else None

    def unsubscribe(self, filters: list[str]) -> int | None:
        """Unsubscribe; the UNSUBACK comes back through pump() with the returned mid."""
        if not filters:
            return None
        rc, mid = self._client.unsubscribe(filters)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._mark_closed(_reason_text(rc))
        return int(mid) if mid is not None else None

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge an `Inbound` (a connection made with `manual_ack`): the broker forgets
        it. Only for this connection's own mids: after a reconnect they mean other messages."""
        if qos > 0 and not self._closed:
            rc = self._client.ack(mid, qos)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._mark_closed(_reason_text(rc))

    def disconnect(self) -> None:
        """Clean DISCONNECT (the broker discards the will); `pump()` until `closed`."""
        if not self._closed:
            rc = self._client.disconnect()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                self._mark_closed(_reason_text(rc))

    def abort(self) -> None:
        """Drop the socket without DISCONNECT (the broker will publish the will)."""
        sock = self._client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        self._mark_closed("aborted")
