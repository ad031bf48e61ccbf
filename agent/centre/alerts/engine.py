"""The alert engine: every `[alerts] evaluate_every_s`, the rules over the fleet store, the
difference with the alerts already firing, and the notifications that difference makes.

One evaluation (`tick`):
1. read_facts → evaluate, rule by rule (a rule that fails is logged and its alerts are left
   as they were: neither raised nor recovered on a guess);
2. new alerts: a silenced one opens its incident at once and sends nothing; the others join
   a pending group per (kind, district), anchored at its first member's `fired_at`; a group
   is flushed once `group_window_s` has passed since that anchor: routing → queue, THEN
   the store's `raised` (so a kill between the two re-evaluates after the restart and
   queues the same keys again, which the queue ignores);
3. recovered alerts: RECOVERED to those who were told (not for a silenced one; escalations
   included), then closed;
4. firing, unacknowledged alerts: a REMINDER to those told (escalations included) every
   `remind_every_s` (round n of the group they were raised in), and, for a critical one,
   ESCALATED to level 2 after `escalate_after_s`, and to level 3 after as long again.

Restart safety: everything a key is made of is on disk. The rules' hold starts are kept in
`alert_holds` (so `fired_at` is the same after a restart even where the store has no start
of its own), and who was told of what, in which group and up to which escalation level, in
`alert_told`. Both tables are the engine's own, in the centre's database.

One evaluator: several `centre serve` processes may share the database; only the one that
leads (agent/centre/leader.py) evaluates. A process that takes the lead starts from the store
(hold starts, who was told), not from what it remembered while another one led.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from agent.centre.alerts.contacts import ContactStore
from agent.centre.alerts.facts import read_facts, read_regions
from agent.centre.alerts.model import (
    Alert,
    AlertKind,
    AlertState,
    Contact,
    NotificationEvent,
    Rule,
    Severity,
)
from agent.centre.alerts.queue import NotificationQueue
from agent.centre.alerts.routing import notifications
from agent.centre.alerts.rules import RuleMemory, evaluate
from agent.centre.alerts.store import AlertStore
from agent.centre.leader import Leadership
from agent.centre.settings import CentreSettings
from agent.centre.store import Store
from agent.centre.store.base import Database, Outage, open_part, unavailable_errors
from agent.messages import dump_message

log = logging.getLogger(__name__)
# The share of its process's time the evaluation may take: a costly one spaces the next out.
COST_SHARE = 0.25

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alert_holds (key TEXT PRIMARY KEY, since REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alert_told (
    key TEXT PRIMARY KEY, fired_at REAL NOT NULL, anchor REAL NOT NULL,
    level INTEGER NOT NULL DEFAULT 1
);
"""


def engine_tables(location: Path | str) -> Database:
    """The engine's own tables (hold timers, who was told), brought up to date."""
    return open_part(location, "alert_engine", _SCHEMA)


@contextlib.contextmanager
def _yielding(db: Database) -> Iterator[Database]:
    """A write transaction on `db`, handing `db` to the block."""
    with db.transaction():
        yield db


def local_hour(ts: float) -> int:
    """The hour on the centre's wall clock (the system's time zone)."""
    return time.localtime(ts).tm_hour


@dataclass
class _Group:
    """Alerts of one kind in one district, raised together once the window has passed."""

    kind: AlertKind
    district: str
    anchor: float  # the first member's fired_at
    alerts: dict[str, Alert] = field(default_factory=dict)


@dataclass(frozen=True)
class _Told:
    fired_at: float
    anchor: float
    level: int


@dataclass(frozen=True)
class _Now:
    """What one evaluation's steps share."""

    now: float
    hour: int
    contacts: Sequence[Contact]
    astore: AlertStore
    queue: NotificationQueue

    def send(
        self,
        event: NotificationEvent,
        alerts: Sequence[Alert],
        *,
        level: int = 1,
        round_: int = 0,
        reached: Mapping[str, int] | None = None,
    ) -> int:
        """Route and queue; the number of new notifications."""
        items = notifications(
            event, alerts, self.contacts, now=self.now, local_hour=self.hour, level=level,
            round_=round_, reached=reached,
        )  # fmt: skip
        return self.queue.enqueue(items)


@dataclass
class TickResult:
    """What one evaluation did (for logs and tests)."""

    firing: int = 0
    raised: list[str] = field(default_factory=list)
    silenced: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    queued: int = 0
    failed_rules: list[str] = field(default_factory=list)


def _fired(a: Alert) -> float:
    return a.fired_at if a.fired_at is not None else a.since


class AlertEngine:
    """Runs in its own thread (`start`/`stop`), or one `tick(now)` at a time (tests, with
    their own clock). Opens its connections in the thread that first ticks."""

    def __init__(
        self,
        settings: CentreSettings,
        *,
        clock: Callable[[], float] = time.time,
        hour: Callable[[float], int] = local_hour,
        on_queued: Callable[[], object] = lambda: None,
        leadership: Leadership | None = None,
    ) -> None:
        """`leadership`: the process's (cmd_serve's, running); without one the engine keeps
        its own and tries it at each evaluation."""
        self.settings = settings
        self._on_queued = on_queued
        self.alerts = settings.alerts
        self.db_path = settings.db_path
        self._clock = clock
        self._hour = hour
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._own_lead = leadership is None
        self.leadership = leadership or Leadership(settings.store_location)
        self._term = 0
        self._memory: RuleMemory | None = None
        self._pending: list[_Group] = []
        self._cost = 0.0  # how long the last evaluation took (s)
        self._unavailable = unavailable_errors()
        self._outage = Outage(log)
        self._reminded: dict[tuple[float, str], int] = {}  # (anchor, rule) -> last round
        self._conns: tuple[Store, AlertStore, ContactStore, NotificationQueue] | None = None
        self._db: Database | None = None
        self.ticks = 0
        self.errors = 0

    # ---- connections and the engine's own tables -----------------------------------------

    def _open(self) -> tuple[Store, AlertStore, ContactStore, NotificationQueue]:
        if self._conns is None:
            path = self.settings.store_location
            self._conns = (Store(path), AlertStore(path), ContactStore(path),
                           NotificationQueue(path))  # fmt: skip
            self._db = engine_tables(path)
        return self._conns

    def close(self) -> None:
        if self._conns is not None:
            for conn in self._conns:
                with contextlib.suppress(Exception):
                    conn.close()
            self._conns = None
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._own_lead:
            self.leadership.stop()  # another process may lead

    @property
    def _sql(self) -> Database:
        assert self._db is not None  # _open first
        return self._db

    def _tx(self) -> contextlib.AbstractContextManager[Database]:
        return _yielding(self._sql)

    def _load_memory(self) -> RuleMemory:
        rows = self._sql.execute("SELECT key, since FROM alert_holds").fetchall()
        return RuleMemory(MappingProxyType({str(k): float(s) for k, s in rows}))

    def _save_memory(self, before: RuleMemory, after: RuleMemory) -> None:
        if dict(before.started) == dict(after.started):
            return
        with self._tx() as db:
            db.execute("DELETE FROM alert_holds")
            db.executemany("INSERT INTO alert_holds (key, since) VALUES (?, ?)",
                           list(after.started.items()))  # fmt: skip

    def _told(self) -> dict[str, _Told]:
        rows = self._sql.execute("SELECT key, fired_at, anchor, level FROM alert_told")
        return {str(k): _Told(float(f), float(a), int(lv)) for k, f, a, lv in rows}

    def _mark_told(self, alerts: Sequence[Alert], anchor: float, level: int = 1) -> None:
        with self._tx() as db:
            db.executemany(
                "INSERT INTO alert_told (key, fired_at, anchor, level) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key) DO UPDATE SET fired_at = excluded.fired_at,"
                " anchor = excluded.anchor, level = excluded.level",
                [(a.key, _fired(a), anchor, level) for a in alerts],
            )

    def _forget_told(self, key: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM alert_told WHERE key = ?", (key,))

    # ---- one evaluator -------------------------------------------------------------------

    def lead(self) -> bool:
        """Whether this process is the one evaluator."""
        lead = self.leadership
        if not (lead.is_leader() if lead.running else lead.poll()):
            return False
        if lead.term != self._term:
            # Another process may have led since this one last did: what it did is in the
            # store; what this one remembered is not current.
            self._term = lead.term
            self._memory = None
            self._pending = []
            self._reminded = {}
            log.info("alerts: this process evaluates the rules")
        return True

    # ---- one evaluation ------------------------------------------------------------------

    def _evaluate(
        self, store: Store, now: float, memory: RuleMemory, result: TickResult
    ) -> tuple[dict[str, Alert], RuleMemory, set[str]]:
        """Rule by rule, so one failing rule leaves the others working. The failed rules'
        ids are returned: their alerts are neither raised nor recovered this time."""
        facts = read_facts(store, now)
        regions = read_regions(store)
        firing: dict[str, Alert] = {}
        started: dict[str, float] = {}
        failed: set[str] = set()
        for rule in self.alerts.rules:
            try:
                alerts, mem = evaluate(facts, [rule], memory, now, regions)
            except Exception as exc:  # a rule's bug, or a fact it did not expect
                log.error("alerts: rule %s failed, its alerts stay as they are: %r", rule.id, exc)
                failed.add(rule.id)
                started.update({k: v for k, v in memory.started.items()
                                if k.startswith(rule.id + ":")})  # fmt: skip
                continue
            started.update(mem.started)
            firing.update({a.key: a for a in alerts})
        result.failed_rules = sorted(failed)
        return firing, RuleMemory(MappingProxyType(started)), failed

    def tick(self, now: float | None = None) -> TickResult:
        """One evaluation at `now` (default: the clock)."""
        now = self._clock() if now is None else now
        result = TickResult()
        store, astore, contacts_store, queue = self._open()
        if self._memory is None:
            self._memory = self._load_memory()
        before = self._memory
        current, memory, failed = self._evaluate(store, now, before, result)
        self._save_memory(before, memory)
        self._memory = memory
        result.firing = len(current)
        stored = {a.key: a for a in astore.firing()}
        told = self._told()
        ctx = _Now(now, self._hour(now), contacts_store.list(), astore, queue)
        rules = {r.id: r for r in self.alerts.rules}

        self._take_new(current, stored=stored, told=told, astore=astore, now=now, result=result)
        # A pending alert that stopped before its group went out was never told: forget it.
        for g in self._pending:
            for key in [k for k in g.alerts if k not in current and g.alerts[k].rule not in failed]:
                del g.alerts[key]
        self._pending = [g for g in self._pending if g.alerts]
        result.queued += self._flush(ctx, result)

        # Still firing: a new reason is recorded (only then: a write per alert per tick is
        # too much for a province); the alert as stored carries the acknowledgement.
        for key, a in current.items():
            old = stored.get(key)
            if old is not None and dump_message(old.reason) != dump_message(a.reason):
                astore.raised(a)

        # Recovered: told ones hear it, then the incident closes. Those of one kind in one
        # district that end in the same evaluation go as one message, as they were raised
        # (a district's uplink back: one "recovered" listing its communes, not forty).
        ended = [
            (key, old)
            for key, old in stored.items()
            if key not in current and old.rule not in failed
        ]
        back: dict[tuple[str, str], list[Alert]] = {}
        reached: dict[str, int] = {}  # told up to which escalation level
        for key, old in ended:
            was = told.get(key)
            if was is not None and was.fired_at == _fired(old):
                gone = old.model_copy(update={"state": AlertState.RESOLVED, "resolved_at": now})
                back.setdefault((old.kind.value, old.district), []).append(gone)
                reached[key] = was.level
        for group in back.values():
            result.queued += ctx.send(NotificationEvent.RECOVERED, group, reached=reached)
        astore.resolved_all([key for key, _old in ended], now)
        for key, _old in ended:
            if key in told:
                self._forget_told(key)
            result.recovered.append(key)

        firing_told = [
            (a, told[k])
            for k, a in stored.items()
            if k in current and k in told and told[k].fired_at == _fired(a)
        ]
        result.queued += self._remind(ctx, firing_told, rules)
        result.queued += self._escalate(ctx, firing_told, rules)
        self.ticks += 1
        return result

    def _take_new(
        self,
        current: dict[str, Alert],
        *,
        stored: dict[str, Alert],
        told: dict[str, _Told],
        astore: AlertStore,
        now: float,
        result: TickResult,
    ) -> None:
        # New alerts: silenced ones open their incident now; the others wait in their group.
        pending = {k for g in self._pending for k in g.alerts}
        new = sorted((a for k, a in current.items() if k not in stored),
                     key=lambda a: (_fired(a), a.key))  # fmt: skip
        for a in new:
            was = told.get(a.key)
            if a.key in pending:
                self._update_pending(a)
            elif was is not None and was.fired_at == _fired(a):
                # Queued and marked told, then the centre died before it was recorded
                # raised (a group is recorded one alert at a time): record it now, tell
                # nobody again (regrouped, it would make a new key: a second message).
                astore.raised(a)
                result.raised.append(a.key)
            elif astore.silenced(a, now):
                astore.raised(a)
                result.silenced.append(a.key)
            else:
                self._join(a)
        # Raised under a silence that has ended since, and still firing: told now, as new
        # (a maintenance window from 22:00 to 06:00 holds a 23:00 failure back, not for ever).
        for key, a in current.items():
            was = told.get(key)
            untold = was is None or was.fired_at != _fired(a)
            if key in stored and key not in pending and untold and not astore.silenced(a, now):
                self._join(a)
                pending.add(key)

    def _update_pending(self, a: Alert) -> None:
        for g in self._pending:
            if a.key in g.alerts:
                g.alerts[a.key] = a

    def _join(self, a: Alert) -> None:
        fired = _fired(a)
        window = self.alerts.group_window_s
        for g in self._pending:
            same = (g.kind, g.district) == (a.kind, a.district)
            if same and g.anchor <= fired <= g.anchor + window:
                g.alerts[a.key] = a
                return
        self._pending.append(_Group(a.kind, a.district, fired, {a.key: a}))

    def _flush(self, ctx: _Now, result: TickResult) -> int:
        queued = 0
        keep: list[_Group] = []
        for g in self._pending:
            if ctx.now < g.anchor + self.alerts.group_window_s:
                keep.append(g)
                continue
            members = sorted(g.alerts.values(), key=lambda a: a.key)
            told = [a for a in members if not ctx.astore.silenced(a, ctx.now)]  # silenced since
            told_keys = {a.key for a in told}
            if told:
                queued += ctx.send(NotificationEvent.RAISED, told)
                self._mark_told(told, g.anchor)
            for a in members:
                ctx.astore.raised(a)
                (result.raised if a.key in told_keys else result.silenced).append(a.key)
        self._pending = keep
        return queued

    def _remind(
        self, ctx: _Now, firing: Sequence[tuple[Alert, _Told]], rules: dict[str, Rule]
    ) -> int:
        """Round n of a group's reminder is due n × remind_every_s after its anchor; the
        alerts of the group still firing and unacknowledged go out together."""
        rounds: dict[tuple[float, str, int], list[Alert]] = {}
        reached = {a.key: was.level for a, was in firing}  # the escalated-to hear them too
        for a, was in firing:
            rule = rules.get(a.rule)
            if rule is None or rule.remind_every_s is None or a.acked_at is not None:
                continue
            n = int((ctx.now - was.anchor) // rule.remind_every_s)
            if n >= 1 and self._reminded.get((was.anchor, a.rule), 0) < n:
                rounds.setdefault((was.anchor, a.rule, n), []).append(a)
        queued = 0
        for (anchor, rule_id, n), alerts in sorted(rounds.items()):
            queued += ctx.send(NotificationEvent.REMINDER, alerts, round_=n, reached=reached)
            self._reminded[(anchor, rule_id)] = n
        return queued

    def _escalate(
        self, ctx: _Now, firing: Sequence[tuple[Alert, _Told]], rules: dict[str, Rule]
    ) -> int:
        queued = 0
        for a, was in firing:
            rule = rules.get(a.rule)
            if (rule is None or rule.escalate_after_s is None or a.acked_at is not None
                    or a.severity is not Severity.CRITICAL):  # fmt: skip
                continue
            level = was.level
            # Level 2 after escalate_after_s, level 3 after as long again; one step a tick.
            due = int((ctx.now - _fired(a)) // rule.escalate_after_s) + 1
            if level >= 3 or due <= level:
                continue
            level += 1
            queued += ctx.send(NotificationEvent.ESCALATED, [a], level=level, round_=level)
            if level == 2:
                ctx.astore.escalate(a.key)
            self._mark_told([a], was.anchor, level)
        return queued

    # ---- the thread ----------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    started = time.monotonic()
                    if self.lead() and self.tick().queued:
                        self._on_queued()
                    self._cost = time.monotonic() - started
                    self._outage.ended("alerts: the database answers again after %.0f s")
                except self._unavailable as exc:  # busy or gone, on either engine
                    self.errors += 1
                    self._outage.failed(
                        "alerts: the database is unavailable, evaluating again next time: %s",
                        str(exc).strip().split("\n")[0],
                    )
                except Exception as exc:  # one bad row never stops the alerts
                    self.errors += 1
                    log.error("alerts: evaluation failed, trying again next time: %r", exc)
                self._stop.wait(self._next_wait(self._clock()))
        finally:
            self.close()

    def _next_wait(self, now: float) -> float:
        """Until the next evaluation, or sooner when a group's window ends first: a group
        goes out when its window ends, not up to an evaluation interval later. Never sooner
        than COST_SHARE allows: an evaluation reads the whole fleet (1.2 s of Python at 20,000
        sites), and run back to back it would hold the process's interpreter lock against
        its own writer, whose reports would then wait (bench/scale.py)."""
        wait = self.alerts.evaluate_every_s
        for g in self._pending:
            wait = min(wait, g.anchor + self.alerts.group_window_s - now)
        return max(wait, 0.05, self._cost * (1 - COST_SHARE) / COST_SHARE)

    def start(self) -> AlertEngine:
        self._thread = threading.Thread(target=self._run, name="centre-alerts", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


__all__ = ["AlertEngine", "TickResult", "local_hour"]
