"""The centre's side of a command: sign, publish, and collect the replies as they come.

One `Connection` driven by the caller's thread. For a tier or the whole fleet the sites that
should answer are learnt from the retained `meta` records (site and tier), so the summary
can name the silent ones.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from agent.contract.envelope import sign
from agent.contract.topics import topic_for
from agent.errors import ProtocolRefused, TransportError
from agent.messages import Message, message
from agent.transport.mqtt import (
    ConnAck,
    Connection,
    Endpoint,
    Inbound,
    Protocol,
    ProtocolSetting,
    SubAck,
    protocol_refused,
    protocols,
)

FINAL = ("succeeded", "failed", "rejected")
_META_WAIT_S = 0.5  # retained meta records arrive right after the SUBACK


class _Unanswered(TransportError):
    """The broker closed the connection without answering the CONNECT: under `auto`, the
    next version is tried (some 3.1.1-only brokers close an MQTT 5 CONNECT so)."""


@dataclass(frozen=True)
class Reply:
    site_id: str
    status: str
    reason: str
    output: Any
    topic: str
    correlation: bytes | None
    after_s: float  # since the command was published
    # `reason` as a message, for the operator's language (None from an older agent, or one
    # this centre cannot read: `reason` is shown then).
    reason_msg: Message | None = None


@dataclass
class Outcome:
    command_id: str
    expected: set[str]
    replies: list[Reply] = field(default_factory=list)

    def final(self) -> dict[str, Reply]:
        done: dict[str, Reply] = {}
        for reply in self.replies:
            if reply.status in FINAL and reply.site_id not in done:
                done[reply.site_id] = reply
        return done

    def summary(self) -> dict[str, Any]:
        final = self.final()
        answered = {r.site_id for r in self.replies}
        return {
            "expected": len(self.expected),
            "answered": len(answered),
            "succeeded": sum(r.status == "succeeded" for r in final.values()),
            "failed": sum(r.status == "failed" for r in final.values()),
            "rejected": sum(r.status == "rejected" for r in final.values()),
            "silent": sorted(self.expected - answered),
            "unfinished": sorted((answered & self.expected) - set(final)),
        }


def new_command_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S-") + secrets.token_hex(6)


class Sender:
    def __init__(
        self, where: Endpoint, prefix: str, protocol: ProtocolSetting = Protocol.V5
    ) -> None:
        self.where = where
        self.prefix = prefix
        self._order = protocols(protocol)
        self.protocol = self._order[0]  # after open(): the one the broker took
        self.conn: Connection | None = None
        self.sites: dict[str, str] = {}  # site_id -> tier, from retained meta
        self.sent_at = 0.0
        self._inbox: list[Inbound] = []

    def __enter__(self) -> Sender:
        self.open()
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def open(self, timeout_s: float = 5.0) -> None:
        for protocol in self._order:
            self.protocol = protocol
            conn = Connection(self.where, protocol)
            conn.open(timeout_s)
            try:
                self._wait(conn, ConnAck, timeout_s, "CONNACK")
                break
            except (ProtocolRefused, _Unanswered):
                conn.abort()
                if protocol is self._order[-1]:
                    raise
        filters = [(f"{self.prefix}/+/cmd/reply/#", 1), (f"{self.prefix}/+/meta", 1)]
        conn.subscribe(filters)
        self._wait(conn, SubAck, timeout_s, "SUBACK")
        end = time.monotonic() + _META_WAIT_S
        while time.monotonic() < end:
            self._pump(conn, 0.05)
        self.conn = conn

    def _wait(self, conn: Connection, kind: type, timeout_s: float, what: str) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not conn.closed:
            for event in conn.pump(0.05):
                if isinstance(event, ConnAck) and event.protocol_refused:
                    raise protocol_refused(self.where, conn.protocol, event.reason)
                if isinstance(event, ConnAck) and not event.ok:
                    raise TransportError(
                        message("centre.broker_refused", reason=str(event.reason)),
                        message("centre.broker_refused_hint"),
                    )
                if isinstance(event, kind):
                    return
                if isinstance(event, Inbound):
                    self._note(event)
        # Closed with no CONNACK at all: how RabbitMQ 3.10 answers an MQTT 5 CONNECT.
        unanswered = conn.closed and kind is ConnAck
        raise (_Unanswered if unanswered else TransportError)(
            message(
                "centre.no_answer",
                what=what,
                broker=f"{self.where.host}:{self.where.port}",
                seconds=timeout_s,
            ),
            message("centre.no_answer_hint"),
        )

    def _pump(self, conn: Connection, timeout_s: float) -> None:
        for event in conn.pump(timeout_s):
            if isinstance(event, Inbound):
                self._note(event)

    def _note(self, message: Inbound) -> None:
        parts = message.topic.split("/")
        if message.topic.endswith("/meta") and message.payload:
            try:
                meta = json.loads(message.payload)
                self.sites[str(meta["site_id"])] = str(meta["site"]["tier"])
            except (ValueError, KeyError, TypeError):
                return
        elif "cmd" in parts:
            self._inbox.append(message)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.disconnect()
            end = time.monotonic() + 1.0
            while not self.conn.closed and time.monotonic() < end:
                self.conn.pump(0.05)
            self.conn = None

    def expected_sites(self, target: Mapping[str, Any]) -> set[str]:
        if "site" in target:
            return {str(target["site"])}
        if "tier" in target:
            return {s for s, tier in self.sites.items() if tier == target["tier"]}
        return set(self.sites)

    def send(
        self,
        private: Ed25519PrivateKey,
        key_id: str,
        action: str,
        args: Mapping[str, Any],
        target: Mapping[str, Any],
        *,
        validity_s: float = 300.0,
        command_id: str | None = None,
        response_topic: str | None = None,
    ) -> tuple[str, bytes]:
        """Sign and publish; returns (command id, the bytes sent)."""
        assert self.conn is not None, "open() first"
        now = datetime.now(UTC)
        command_id = command_id or new_command_id()
        payload = sign(
            private,
            key_id,
            command_id=command_id,
            action=action,
            args=args,
            target=target,
            issued_at=now,
            expires_at=now + timedelta(seconds=validity_s),
            nonce=secrets.token_hex(16),
        )
        self.publish_raw(payload, target, command_id.encode(), response_topic)
        return command_id, payload

    def publish_raw(
        self,
        payload: bytes,
        target: Mapping[str, Any],
        correlation: bytes | None = None,
        response_topic: str | None = None,
    ) -> None:
        """Publish bytes on the target's command topic (tests use it to replay and forge)."""
        assert self.conn is not None, "open() first"
        if "site" in target:
            site = str(target["site"])
            topic = topic_for(self.prefix, site, "cmd")
            # A reply topic inside the site's own space, which a per-site ACL lets it write.
            response_topic = response_topic or topic_for(self.prefix, site, "cmd_reply")
        else:
            topic = topic_for(self.prefix, "", "fleet_cmd")
        self.conn.publish(topic, payload, 1, False, correlation, response_topic=response_topic)
        self.sent_at = time.monotonic()

    def collect(
        self,
        command_id: str,
        expected: set[str],
        timeout_s: float,
        on_reply: Callable[[Reply], None] | None = None,
    ) -> Outcome:
        """Replies to `command_id` until every expected site has a final one, or timeout."""
        assert self.conn is not None, "open() first"
        outcome = Outcome(command_id, set(expected))
        start = self.sent_at or time.monotonic()
        end = time.monotonic() + timeout_s
        while time.monotonic() < end and not self.conn.closed:
            self._pump(self.conn, 0.02)
            inbox, self._inbox = self._inbox, []
            for inbound in inbox:
                reply = parse_reply(inbound, command_id, time.monotonic() - start)
                if reply is None:
                    continue
                outcome.replies.append(reply)
                if on_reply is not None:
                    on_reply(reply)
            if expected and set(outcome.final()) >= expected:
                break
        return outcome


def parse_reply(message: Inbound, command_id: str, after_s: float) -> Reply | None:
    try:
        data = json.loads(message.payload)
        if data.get("command_id") != command_id:
            return None
        return Reply(
            site_id=str(data["site_id"]),
            status=str(data["status"]),
            reason=str(data.get("reason", "")),
            output=data.get("output"),
            topic=message.topic,
            correlation=message.correlation,
            after_s=after_s,
            reason_msg=_reason_msg(data.get("reason_msg")),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _reason_msg(data: object) -> Message | None:
    """A reply's message, or None when it has none or it is damaged (the English stays)."""
    if data is None:
        return None
    try:
        return Message.model_validate(data)
    except ValueError:
        return None
