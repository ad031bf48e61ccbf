"""Commands in the running agent: verify, remember, answer, run (in a worker), audit.

`on_message` runs on the link thread and only does cheap things: validation (an Ed25519
verify), the durable id record, the audit line and queueing the reply. Actions run on a small
thread pool, so a long one (a self-test, `identify` for minutes) never blocks the link or the
reporting loop.

Replies go through the outbox (store-and-forward, like every report): to the command's MQTT 5
response topic with its correlation data, or to `<prefix>/<site_id>/cmd/reply` (MQTT 3.1.1,
or no response topic given). `rejected` replies are rate-limited (a flood of garbage must not
fill the outbox); every refusal is audited whether answered or not.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import JsonValue

from agent import messages
from agent.commands.actions import ACTIONS, ActionContext, ActionFailed, disabled_actions
from agent.commands.store import AUDIT_NAME, DB_NAME, AuditLog, SeenStore
from agent.config import Settings
from agent.contract.envelope import (
    Command,
    Identity,
    Policy,
    Reason,
    Rejection,
    public_key_from_b64,
    reject,
    validate,
)
from agent.contract.payloads import CommandReplyPayload, ReplyStatus, utc_now
from agent.contract.topics import is_within, publish_topic_problem, topic_for
from agent.errors import ConfigError, TransportError
from agent.messages import Message, message
from agent.transport.outbox import Outbox
from agent.transport.pacing import TokenBucket

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
_REJECT_RATE = 1.0  # rejected replies per second on average...
_REJECT_BURST = 30  # ...after a burst of this many


@dataclass(frozen=True)
class Route:
    """Where a command's replies go: its response topic and correlation data (MQTT 5).

    `note` says why a response topic the message asked for is not used; every reply of the
    command carries it, so the sender learns why its replies came elsewhere."""

    response_topic: str | None = None
    correlation: bytes | None = None
    note: Message | None = None


# MQTT 5 binary data carries a two-byte length, as strings do.
_MAX_CORRELATION_BYTES = 65_535


def reply_route(settings: Settings, response_topic: object, correlation: object) -> Route:
    """The route for replies to a received message, from its untrusted MQTT 5 properties.

    Nothing in the properties is covered by the command's signature, so anyone who may publish
    on the command topic chooses them. A response topic is used only when it can be published
    to and lies in the reply space (`<prefix>/<site_id>/cmd/reply` and below, plus
    `commands.reply_topics`): otherwise an unsigned message could make the agent publish where
    it must not (another site's topics, its own retained ones) or hand paho a topic it refuses.
    Pure."""
    data = correlation if isinstance(correlation, bytes) else None
    if data is not None and len(data) > _MAX_CORRELATION_BYTES:
        data = None
    if response_topic is None:
        return Route(None, data)
    own = topic_for(settings.broker.prefix, settings.site.site_id, "cmd_reply")
    problem = publish_topic_problem(response_topic)
    if problem is None:
        assert isinstance(response_topic, str)
        # commands.reply_topics extends the reply space outside the fleet's own topics
        # only: inside <prefix>/ nothing but this site's cmd/reply may be answered on (a
        # setting of "vc" must not let an unsigned message aim replies at any site's state).
        extra = (
            ()
            if is_within(response_topic, settings.broker.prefix)
            else (settings.commands.reply_topics)
        )
        if any(is_within(response_topic, base) for base in (own, *extra)):
            return Route(response_topic, data)
        problem = "is outside this site's reply topics"
    shown = ascii(response_topic)[:80] if isinstance(response_topic, str) else "?"
    note = message("command.route_note", topic=shown, problem=problem, own=own)
    return Route(None, data, note)


STATUS_IDS = {
    "sent": "command.status.sent",
    "accepted": "command.status.accepted",
    "progress": "command.status.progress",
    "succeeded": "command.status.succeeded",
    "failed": "command.status.failed",
    "rejected": "command.status.rejected",
}


def status_msg(status: str) -> Message:
    """A command's status in the reader's words (one this release does not know, as it is)."""
    if status in STATUS_IDS:
        return messages.message(STATUS_IDS[status])
    return message("command.status.unknown", status=status)


def load_keys(settings: Settings) -> dict[str, Ed25519PublicKey]:
    keys: dict[str, Ed25519PublicKey] = {}
    for i, entry in enumerate(settings.commands.keys):
        where = f"commands.keys[{i}] ({entry.key_id})"
        try:
            text = entry.public_key if entry.public_key is not None else _read(entry.path)
            keys[entry.key_id] = public_key_from_b64(text)
        except (ValueError, OSError) as exc:
            raise ConfigError(
                message("command.site.bad_public_key", where=where, error=str(exc)),
                message("command.site.hint.paste_key"),
            ) from None
    return keys


def _read(path: Path | None) -> str:
    assert path is not None
    return path.read_text(encoding="ascii")


def policy_from_settings(settings: Settings) -> Policy:
    cfg = settings.commands
    return Policy(
        keys=load_keys(settings),
        max_skew_s=cfg.max_skew_s,
        max_validity_s=cfg.max_validity_s,
        actions={name: spec.args for name, spec in ACTIONS.items()},
        disabled=disabled_actions(settings),
    )


class CommandService:
    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        context: ActionContext,
        *,
        clock: Clock = utc_now,
        max_workers: int = 4,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.context = context
        self.policy = policy_from_settings(settings)
        if settings.commands.enabled and not self.policy.keys:
            log.warning("commands: no centre key in [commands] keys; every command is refused")
        self.me = Identity(settings.site.site_id, settings.site.tier.value)
        state = settings.paths.state_dir
        self.store = SeenStore(state / DB_NAME)
        self.audit = AuditLog(state / AUDIT_NAME)
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers, thread_name_prefix="command")
        self._budget = TokenBucket(_REJECT_RATE, _REJECT_BURST, time.monotonic())
        self._budget_lock = threading.Lock()
        self._unanswered = 0  # refusals neither answered nor logged since the last one that was
        # Accepted commands not yet started: answered `failed` if shutdown drops them, so the
        # centre never waits on an `accepted` that will not be followed.
        self._queued: dict[Future[None], tuple[Command, Route]] = {}
        self._queued_lock = threading.RLock()  # add_done_callback may call back at once
        self._answer_interrupted()

    def _answer_interrupted(self) -> None:
        """Answer `failed` for what the previous run accepted and never finished: the centre
        must not wait on an `accepted` that will never be followed, and the id is spent (a
        resend with it is a replay), so the reason says to send it again."""
        reason = message("command.interrupted")
        for command_id, action in self.store.interrupted():
            self.store.set_status(command_id, "failed")
            self.audit.append("failed", command_id=command_id, action=action, reason=reason.text)
            log.warning("command %s (%s): %s", command_id, action, reason.text)
            self._reply(command_id, "failed", reason, None, Route())

    def register_counter(self, counter: Callable[[], JsonValue]) -> None:
        """`count-now` answers with what `counter()` returns (the attendance issue's hook)."""
        self.context.counter = counter

    def close(self, wait: bool = False) -> None:
        # Waiting means finishing what was accepted; not waiting (shutdown) drops the queue,
        # and each dropped command is answered (it is remembered as seen: it will not run
        # after the restart, so the centre must send it again).
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        with self._queued_lock:
            dropped = [job for future, job in self._queued.items() if future.cancelled()]
            self._queued.clear()
        for command, route in dropped:
            reason = message("command.dropped")
            self.store.set_status(command.id, "failed")
            self.audit.append("failed", command_id=command.id, action=command.action,
                              reason=reason.text, duration_s=0.0)  # fmt: skip
            self._reply(command.id, "failed", reason, None, route)
        self.store.close()

    # ---- receiving ---------------------------------------------------------------------

    def decide(self, raw: bytes, now: datetime | None = None) -> Command | Rejection:
        """Validate and, for a command that passes, record it as seen (durably). A refusal
        leaves no trace but its return value."""
        now = now or self._clock()
        verdict = validate(raw, self.policy, self.me, now)
        if isinstance(verdict, Rejection):
            return verdict
        body = verdict.body
        keep = body.expires_at + timedelta(seconds=self.policy.max_skew_s)
        earlier = self.store.remember(
            body.id, body.nonce, body.action, keep.timestamp(), now.timestamp()
        )
        if earlier is not None:
            return reject(
                Reason.REPLAY,
                "command.detail.replay",
                body.id,
                command=body.id,
                status=status_msg(earlier),
            )
        return verdict

    def on_message(
        self, raw: bytes, route: Route = Route(), *, fleet: bool = False
    ) -> Command | Rejection:
        """Handle one message from a command topic (the link thread). On the fleet topic a
        command for other sites is not ours to answer, only to audit."""
        verdict = self.decide(raw)
        if isinstance(verdict, Rejection) and fleet and verdict.reason is Reason.OTHER_SITE:
            verdict = replace(verdict, quiet=True)
        if isinstance(verdict, Rejection):
            self.audit.append(
                "rejected",
                command_id=verdict.command_id,
                reason=verdict.reason.value,
                detail=verdict.detail,
                answered=not verdict.quiet,
            )
            if verdict.quiet:
                log.debug("command not for this site: %s", verdict.text())
                return verdict
            # Answered and logged within one budget: a flood of garbage (anyone may publish
            # on the command topic) must fill neither the outbox nor the journal. The audit
            # above still records every refusal.
            if self._may_answer_rejection():
                if self._unanswered:
                    log.warning(
                        "%d more refused command(s) were not answered or logged (too many); "
                        "the audit log has each",
                        self._unanswered,
                    )
                    self._unanswered = 0
                log.warning("command %s refused: %s", verdict.command_id or "?", verdict.text())
                # The English stays `<reason code>: <detail>` (docs/mqtt.md): older centres
                # and scripts match on the code.
                self._reply(verdict.command_id, "rejected", verdict.message(), None, route,
                            english=verdict.text())  # fmt: skip
            else:
                self._unanswered += 1
                log.debug("command %s refused, not answered: %s", verdict.command_id or "?",
                          verdict.text())  # fmt: skip
            return verdict
        self.audit.append(
            "accepted",
            command_id=verdict.id,
            action=verdict.action,
            args=verdict.args.model_dump(mode="json"),
            key_id=verdict.key_id,
            target=verdict.body.target.model_dump(),
            issued_at=verdict.body.issued_at,
            expires_at=verdict.body.expires_at,
        )
        log.info("command %s accepted: %s", verdict.id, verdict.action)
        self._reply(verdict.id, "accepted", None, None, route)
        with self._queued_lock:
            future = self._pool.submit(self._execute, verdict, route)
            self._queued[future] = (verdict, route)
            future.add_done_callback(self._forget)
        return verdict

    def _forget(self, future: Future[None]) -> None:
        if not future.cancelled():
            with self._queued_lock:
                self._queued.pop(future, None)

    def _may_answer_rejection(self) -> bool:
        with self._budget_lock:
            now = time.monotonic()
            if self._budget.available(now) < 1:
                return False
            self._budget.take(now)
            return True

    # ---- running -----------------------------------------------------------------------

    def _execute(self, command: Command, route: Route) -> None:
        spec = ACTIONS[command.action]

        def progress(msg: Message) -> None:
            self._reply(command.id, "progress", msg, None, route)

        context = replace(self.context, progress=progress)
        status: ReplyStatus = "succeeded"
        reason: str | Message | None = None
        output: JsonValue = None
        started = time.monotonic()
        try:
            output = spec.run(context, command.args)
        except ActionFailed as exc:
            status, output = "failed", exc.output
            reason = exc.reason_msg() or str(exc)
        except Exception as exc:
            log.exception("command %s (%s) crashed", command.id, command.action)
            status = "failed"
            reason = message("command.internal_error", error=f"{type(exc).__name__}: {exc}")
        took = round(time.monotonic() - started, 3)
        text = reason.text if isinstance(reason, Message) else reason or ""
        self.store.set_status(command.id, status)
        self.audit.append(
            status, command_id=command.id, action=command.action, reason=text, duration_s=took
        )
        log.info("command %s (%s): %s %s", command.id, command.action, status, text)
        self._reply(command.id, status, reason, output, route)

    def _reply(
        self,
        command_id: str,
        status: ReplyStatus,
        reason: str | Message | None,
        output: JsonValue,
        route: Route,
        *,
        english: str = "",
    ) -> None:
        """`reason` a message where we have one: the centre shows it in its operator's
        language; its English text (or `english`) goes beside it for older centres."""
        msg = reason if isinstance(reason, Message) else None
        if not english:
            english = msg.text if msg is not None else reason if isinstance(reason, str) else ""
        if route.note is not None:
            english = f"{english}; {route.note.text}" if english else route.note.text
            if msg is not None:
                msg = message("command.with_note", reason=msg, note=route.note)
            elif not reason:
                msg = route.note
        payload = CommandReplyPayload(
            site_id=self.me.site_id,
            ts=utc_now(),
            command_id=command_id,
            status=status,
            reason=english,
            reason_msg=msg,
            output=output,
        )
        try:
            self.outbox.put(payload, topic=route.response_topic, correlation=route.correlation)
        except TransportError as exc:
            # The state dir is full or failing. The command still runs (it is remembered as
            # seen, so raising here would leave it neither run nor answered); the centre sees
            # no reply and can ask again once the site reports again.
            log.error("command %s: %s reply not stored: %s", command_id or "?", status, exc)
