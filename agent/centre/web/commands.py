"""Operator commands from the page: signed with the centre's key through
agent/centre/sender.py (the one signer), published per site, and the replies pushed to the
page as they come, and kept (with who sent what) in the centre's database.

One thread owns the MQTT connection (the transport is driven by its caller's thread); the
web handlers only queue requests for it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.centre.sender import FINAL, Reply, Sender, new_command_id, parse_reply
from agent.centre.settings import CentreSettings
from agent.centre.store.base import Database, open_part
from agent.i18n import LANGUAGES
from agent.messages import Message, dump_message, load_message, message, render_or
from agent.transport.mqtt import Endpoint, Inbound, ProtocolSetting, endpoint

log = logging.getLogger(__name__)

# The actions the page offers (names from agent/commands/actions.py).
OFFERED = ("run-checks", "identify", "restart-codec", "rejoin")
MAX_SITES = 500  # one click must not become a fleet-wide broadcast by accident
VALIDITY_S = 300.0  # the envelope's expires_at - issued_at
# After expires_at a site may still take the command: an agent tolerates its clock being up to
# `commands.max_skew_s` (60 s by default) behind ours; then it runs the action (a self-test,
# a codec query: seconds to a minute) and its reply crosses the outbox and the broker. A site
# that has not answered by expires_at + GRACE_S is marked no_answer; a reply after that still
# lands and replaces it.
GRACE_S = 120.0
NO_ANSWER = "no_answer"
# Of several centre processes, each marks the commands it sent; the leader (centre/leader.py)
# also those whose sender is gone (stopped, killed), found in the log every ADOPT_EVERY_S once
# ADOPT_AFTER_S past their deadline (the sender, alive, has marked them by then). A site's
# no_answer is written at most once whoever races (Log.add's `unless`).
ADOPT_EVERY_S = 5.0
ADOPT_AFTER_S = 5.0
_ONCE = {NO_ANSWER: (*FINAL, NO_ANSWER), "accepted": ("accepted",)} | {s: (s,) for s in FINAL}
_FROM_SITES = ("accepted", "progress", *FINAL)  # a reply's status: anything else is not taken
_OUTPUT_LIMIT = 4000
_NAMED = 20  # unknown ids named in a refusal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS web_commands (
    id INTEGER PRIMARY KEY, at REAL NOT NULL, command_id TEXT NOT NULL, operator TEXT NOT NULL,
    action TEXT NOT NULL, site_id TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL,
    output TEXT
);
CREATE INDEX IF NOT EXISTS web_commands_by_site ON web_commands (site_id, id);
"""
# Added later (ALTER TABLE on an older database): the reason as a message, the answer-by time
# of a `sent` row (epoch), and the verdict of a run-checks reply.
_ADDED = {"reason_json": "TEXT", "deadline": "REAL", "verdict": "TEXT"}


def _v2_added(db: Database) -> None:
    for name, kind in _ADDED.items():
        db.add_column("web_commands", name, kind)
    db.execute(
        "CREATE INDEX IF NOT EXISTS web_commands_by_command ON web_commands (command_id, id)"
    )


class CommandRefused(ValueError):
    """A request the page may not make; `msg` is shown to the operator in the page's
    language, `code` (its id) and `extra` (its parameters) go to the page's script too."""

    def __init__(self, msg: Message, **extra: Any) -> None:
        super().__init__(msg.text)
        self.msg = msg
        self.code = msg.id
        self.extra = extra


@dataclass(frozen=True)
class Request:
    command_id: str
    operator: str
    action: str
    sites: tuple[str, ...]


def _verdict(output: Any) -> str | None:
    """A run-checks reply's verdict (ready, degraded, fault), else None."""
    if isinstance(output, dict) and isinstance(output.get("verdict"), str):
        return str(output["verdict"])[:40]
    return None


@dataclass
class _Sent:
    """One command from the page and where each of its sites stands: None while waiting, else
    its outcome: the verdict of a run-checks, a final status, or no_answer."""

    request: Request
    deadline: float  # epoch: expires_at + GRACE_S
    at: float  # epoch, when it was sent
    outcomes: dict[str, str | None] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        for site in self.request.sites:
            self.outcomes.setdefault(site, None)

    def note(self, site: str, status: str, verdict: str | None) -> None:
        if site not in self.outcomes:
            return  # not a site this command went to
        if status in FINAL:  # a late reply replaces no_answer
            self.outcomes[site] = verdict if status == "succeeded" and verdict else status
        elif status == NO_ANSWER and self.outcomes[site] is None:
            self.outcomes[site] = NO_ANSWER

    def waiting(self) -> list[str]:
        return [s for s, o in self.outcomes.items() if o is None]

    def tally(self) -> dict[str, Any]:
        """For the page's count line: "25 sent: 20 answered (17 ready, 3 fault), 5 no answer"."""
        answered: dict[str, int] = {}
        for outcome in self.outcomes.values():
            if outcome is not None and outcome != NO_ANSWER:
                answered[outcome] = answered.get(outcome, 0) + 1
        values = list(self.outcomes.values())
        return {
            "sent": len(values),
            "answered": sum(answered.values()),
            "outcomes": answered,
            "no_answer": values.count(NO_ANSWER),
            "waiting": values.count(None),
        }


def _summary(output: Any) -> str:
    """A short line for the page: a run-checks report's verdict, else compact JSON."""
    if isinstance(output, dict) and isinstance(output.get("verdict"), str):
        return f"verdict={output['verdict']}"
    if output is None:
        return ""
    text = json.dumps(output, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 200 else text[:199] + "…"


# The reasons our agents put in command replies, by the code the page translates them with.
_REASONS = [
    (re.compile(r"running checks: (?P<components>.+)"), "page.reply.checks"),
    (re.compile(r"the agent restarted while running it; send it again"), "page.reply.restarted"),
    (re.compile(r"the agent stopped before running it; send it again"), "page.reply.stopped"),
]


def _reason_fields(reason: str, msg: Message | None) -> dict[str, Any]:
    """What the page shows for a reply's reason: the site's message in each language (the
    English alone from an older site), and the older code for the reasons it knows."""
    return {
        "reason_msg": reason_msg(reason),
        "reason_by_lang": {lang: render_or(msg, reason, lang) for lang in LANGUAGES},
    }


def reason_msg(reason: str) -> dict[str, str] | None:
    """A reply's reason as a code and parameters; None for a text this centre does not know
    (shown as the site sent it)."""
    for pattern, code in _REASONS:
        if m := pattern.fullmatch(reason):
            return {"code": code, **m.groupdict()}
    return None


class Log:
    """The commands sent from the page and their replies (own connection to the store)."""

    def __init__(self, db_path: Path | str) -> None:
        """`db_path`: the SQLite file or a PostgreSQL URL (settings.store_location)."""
        self.db = open_part(db_path, "web_commands", _SCHEMA, [_v2_added])
        self._lock = threading.Lock()

    def add(self, row: dict[str, Any], unless: tuple[str, ...] = ()) -> bool:
        """Add a row; with `unless`, only if the site has no row of those statuses for this
        command yet (several centre processes hear every reply, and any may mark no_answer):
        whether it was added. One write transaction: writers take turns on both backends, so
        the check sees every row committed before it."""
        output = row.get("output")
        text = None if output is None else json.dumps(output, ensure_ascii=False)[:_OUTPUT_LIMIT]
        with self._lock, self.db.transaction():
            if unless and self._has(row["command_id"], row["site_id"], unless):
                return False
            self.db.execute(
                "INSERT INTO web_commands (at, command_id, operator, action, site_id, status,"
                " reason, output, reason_json, deadline, verdict) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (row["at"], row["command_id"], row["operator"], row["action"], row["site_id"],
                 row["status"], row["reason"], text, dump_message(row.get("reason_message")),
                 row.get("deadline"), _verdict(output)),
            )  # fmt: skip
        return True

    def _has(self, command_id: str, site_id: str, statuses: tuple[str, ...]) -> bool:
        sql = "SELECT 1 FROM web_commands WHERE command_id = ? AND site_id = ? AND status IN "
        marks = "(" + ",".join("?" * len(statuses)) + ")"  # placeholders only
        return bool(self.db.execute(sql + marks, (command_id, site_id, *statuses)).fetchone())

    def sent(self, command_id: str) -> _Sent | None:
        """A command sent from the page, rebuilt from its rows (None: not one of ours)."""
        with self._lock:
            rows = self.db.execute(
                "SELECT at, operator, action, site_id, status, deadline, verdict "
                "FROM web_commands WHERE command_id = ? ORDER BY id",
                (command_id,),
            ).fetchall()
        if not rows:
            return None
        at, operator, action = rows[0][:3]
        sites = tuple(dict.fromkeys(r[3] for r in rows if r[4] == "sent"))
        deadline = max((r[5] for r in rows if r[5] is not None), default=at)
        sent = _Sent(Request(command_id, operator, action, sites), deadline, at)
        for _, _, _, site, status, _, verdict in rows:
            sent.note(site, status, verdict)
        return sent

    def waiting(self) -> list[_Sent]:
        """The commands with a site that has not answered yet (for a restarted centre)."""
        with self._lock:
            ids = [r[0] for r in self.db.execute(
                "SELECT DISTINCT s.command_id FROM web_commands s WHERE s.status = 'sent'"
                " AND s.deadline IS NOT NULL AND NOT EXISTS (SELECT 1 FROM web_commands f"
                " WHERE f.command_id = s.command_id AND f.site_id = s.site_id"
                " AND f.status IN ('succeeded', 'failed', 'rejected', 'no_answer'))"
            )]  # fmt: skip
        return [s for cid in ids if (s := self.sent(cid)) is not None]

    def recent(self, site_id: str, limit: int = 20) -> list[dict[str, Any]]:
        with self._lock:
            rows = self.db.execute(
                "SELECT at, command_id, operator, action, site_id, status, reason, verdict, "
                "reason_json FROM web_commands WHERE site_id = ? ORDER BY id DESC LIMIT ?",
                (site_id, limit),
            ).fetchall()
        keys = ("at", "command_id", "operator", "action", "site_id", "status", "reason", "verdict")
        out = []
        for r in rows:
            row = dict(zip(keys, r[:-1], strict=True))
            if row["verdict"] is None:
                del row["verdict"]
            out.append(row | _reason_fields(row["reason"], load_message(r[-1])))
        return out

    def close(self) -> None:
        self.db.close()


def load_key(settings: CentreSettings) -> tuple[Any, str] | Message:
    """(private key, key id), or why the page cannot send commands."""
    from agent.centre.keys import load_private_key  # noqa: PLC0415
    from agent.errors import ConfigError  # noqa: PLC0415

    path = settings.command_key
    if path is None:
        return message("web.no_command_key")
    if not path.exists():
        return message("web.command_key_missing", path=str(path))
    try:
        key = load_private_key(str(path))
    except ConfigError as exc:
        return exc.msg or message("web.command_key_unusable", path=str(path), error=exc.message)
    return key, settings.key_id or path.stem


class Commander:
    """Queue requests, sign and send them, turn replies into events for the page."""

    def __init__(
        self,
        settings: CentreSettings,
        on_event: Callable[[str, dict[str, Any]], None],
        *,
        validity_s: float | None = None,
        grace_s: float | None = None,
        leads: Callable[[], bool] = lambda: True,
    ) -> None:
        """`leads`: whether this process leads (it then also marks other processes' overdue
        commands, see ADOPT_EVERY_S)."""
        self.settings = settings
        self.on_event = on_event
        self._leads = leads
        self._adopt_at = 0.0
        self.validity_s = VALIDITY_S if validity_s is None else validity_s
        self.grace_s = GRACE_S if grace_s is None else grace_s
        self.log = Log(settings.store_location)
        loaded = load_key(settings)
        # Why the page cannot send commands (None: it can), and the same in English for
        # the log and older readers.
        self.unavailable_msg = loaded if isinstance(loaded, Message) else None
        self.unavailable = loaded.text if isinstance(loaded, Message) else ""
        self._key = None if isinstance(loaded, Message) else loaded
        self._requests: queue.SimpleQueue[Request] = queue.SimpleQueue()
        # Commands with a site still to answer, or whose deadline has not passed. Those of a
        # previous run (or of another process that died) the leader takes from the log when
        # overdue (_adopt). Older ones come back from the log when a late reply names them.
        self._pending: dict[str, _Sent] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-commands", daemon=True)
        self.connected = threading.Event()

    def start(self) -> Commander:
        if self._key is not None:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.log.close()

    def submit(
        self,
        operator: str,
        action: str,
        sites: list[str],
        known: Callable[[set[str]], set[str]] | None = None,
    ) -> str:
        """Queue a command; `known` gives those of the ids the centre has heard of (a typo
        or a stale link must not become a command to a site id nobody owns)."""
        if self.unavailable_msg is not None:
            raise CommandRefused(message("page.commands.off", why=self.unavailable_msg))
        if action not in OFFERED:
            raise CommandRefused(
                message("web.action_not_offered", action=repr(action), offered=", ".join(OFFERED))
            )
        chosen = tuple(dict.fromkeys(s for s in sites if isinstance(s, str) and s))
        if not chosen:
            raise CommandRefused(message("web.no_site_chosen"))
        if len(chosen) > MAX_SITES:
            said = message("page.send.toomany", count=len(chosen), max=MAX_SITES)
            raise CommandRefused(said, count=len(chosen), max=MAX_SITES)
        if known is not None:
            heard = known(set(chosen))
            unknown = [s for s in chosen if s not in heard]
            if unknown:
                named = unknown[:_NAMED]
                if len(unknown) > _NAMED:
                    named.append(f"… (+{len(unknown) - _NAMED})")
                said = message("page.send.unknown", ids=", ".join(named))
                raise CommandRefused(said, ids=named)
        request = Request(new_command_id(), operator, action, chosen)
        self._requests.put(request)
        log.info("dashboard: %s sends %s %s to %d site(s)", operator, action,
                 request.command_id, len(chosen))  # fmt: skip
        return request.command_id

    # ---- the connection's thread --------------------------------------------------------

    def _run(self) -> None:
        base = self.settings.broker.client_id or "edge-agent-centre"
        where = dataclasses.replace(
            endpoint(self.settings.broker, f"{base}-web-commands-{os.getpid()}"),
            session_expiry_s=0,
            clean_start=True,
        )
        while not self._stop.is_set():
            broker = self.settings.broker
            sender = _LiveSender(where, broker.prefix, self._reply, broker.protocol)
            try:
                sender.open(self.settings.broker.connect_timeout_s)
            except Exception as exc:  # any failure: say so, and retry
                log.warning("dashboard: command connection: %s; retrying", exc)
                self._expire()  # no reply can come while the centre cannot hear
                self._stop.wait(2.0)
                continue
            self.connected.set()
            try:
                self._serve(sender)
            finally:
                self.connected.clear()
                sender.close()

    def _serve(self, sender: _LiveSender) -> None:
        assert self._key is not None
        private, key_id = self._key
        while not self._stop.is_set() and sender.conn is not None and not sender.conn.closed:
            try:
                while True:
                    request = self._requests.get_nowait()
                    self._send(sender, private, key_id, request)
            except queue.Empty:
                pass
            sender.pump(0.05)
            self._expire()

    def _send(self, sender: _LiveSender, private: Any, key_id: str, request: Request) -> None:
        now = time.time()
        # The envelope's expiry is taken at each site's send; the deadline from the last one.
        sent = _Sent(request, now + self.validity_s + self.grace_s, now)
        self._pending[request.command_id] = sent
        for site in request.sites:
            sender.send(private, key_id, request.action, {}, {"site": site},
                        validity_s=self.validity_s, command_id=request.command_id)  # fmt: skip
            sent.deadline = time.time() + self.validity_s + self.grace_s
            self._event(sent, site, "sent", deadline=sent.deadline)

    def _adopt(self, now: float) -> None:
        """The leader: overdue commands in the log that no process marks (their sender gone)."""
        if now < self._adopt_at or not self._leads():
            return
        self._adopt_at = now + ADOPT_EVERY_S
        try:
            waiting = self.log.waiting()
        except self.log.db.error:
            log.exception("dashboard: could not read the command log")
            return
        for sent in waiting:
            cid, due = sent.request.command_id, sent.deadline + ADOPT_AFTER_S
            if cid in self._pending:
                continue
            if due <= now:
                self._pending[cid] = sent
            else:  # look again when it falls due, not up to ADOPT_EVERY_S later
                self._adopt_at = min(self._adopt_at, due)

    def _expire(self) -> None:
        """Mark the sites that have not answered by their command's deadline."""
        now = time.time()
        self._adopt(now)
        for cid, sent in list(self._pending.items()):
            if now <= sent.deadline:
                continue
            for site in sent.waiting():
                sent.note(site, NO_ANSWER, None)
                self._event(sent, site, NO_ANSWER)
            del self._pending[cid]
            log.info("dashboard: %s %s: %s", sent.request.action, cid, sent.tally())

    def _reply(self, data: dict[str, Any], reply: Reply) -> None:
        command_id = str(data.get("command_id"))
        if reply.status not in _FROM_SITES:
            log.warning("dashboard: a reply from %r with status %r ignored",
                        reply.site_id[:64], reply.status[:64])  # fmt: skip
            return
        sent = self._pending.get(command_id)
        if sent is None:
            # A late reply to one of ours (its no_answer is replaced), or another centre's.
            try:
                sent = self.log.sent(command_id)
            except self.log.db.error:
                log.exception("dashboard: could not read the command log")
                return
        if sent is None or reply.site_id not in sent.outcomes:
            return  # not ours, or a site this command did not go to
        sent.note(reply.site_id, reply.status, _verdict(reply.output))
        self._event(
            sent,
            reply.site_id,
            reply.status,
            reason=reply.reason,
            reason_message=reply.reason_msg,
            output=reply.output,
        )

    def _event(
        self,
        sent: _Sent,
        site: str,
        status: str,
        *,
        reason: str = "",
        reason_message: Message | None = None,
        output: Any = None,
        deadline: float | None = None,
    ) -> None:
        request = sent.request
        now = time.time()
        row = {
            "at": now,
            "command_id": request.command_id,
            "operator": request.operator,
            "action": request.action,
            "site_id": site,
            "status": status,
            "reason": reason,
            "reason_message": reason_message,
            "output": output,
            "deadline": deadline,
        }
        try:
            # A site's answer, or its no_answer, is one row however many processes hear it.
            if not self.log.add(row, _ONCE.get(status, ())) and status == NO_ANSWER:
                return  # answered meanwhile, or marked by another centre process
        except self.log.db.error:
            log.exception("dashboard: could not log a command reply")
        event = {**row, "after_s": round(max(0.0, now - sent.at), 3), "summary": _summary(output),
                 "tally": sent.tally(), **_reason_fields(reason, reason_message)}  # fmt: skip
        if (verdict := _verdict(output)) is not None:
            event["verdict"] = verdict  # the page says it in its language, in its colour
        event.pop("output")
        event.pop("reason_message")
        self.on_event("reply", event)


class _LiveSender(Sender):
    """A Sender that hands each reply on as it arrives (any command id), instead of collecting
    one command's replies at a time: the page has many commands in flight."""

    def __init__(
        self,
        where: Endpoint,
        prefix: str,
        on_reply: Callable[[dict[str, Any], Reply], None],
        protocol: ProtocolSetting,
    ) -> None:
        super().__init__(where, prefix, protocol)
        self.on_reply = on_reply

    def _note(self, message: Inbound) -> None:
        if "cmd" not in message.topic.split("/"):
            super()._note(message)  # the retained meta records
            return
        try:
            data = json.loads(message.payload)
            command_id = str(data["command_id"])
        except (ValueError, KeyError, TypeError):
            return
        reply = parse_reply(message, command_id, 0.0)
        if reply is not None:
            self.on_reply(data, reply)

    def pump(self, timeout_s: float) -> None:
        if self.conn is not None:
            self._pump(self.conn, timeout_s)
