"""`centre serve`: subscribe to every site's reports and store them.

Two subscriptions, both through agent.transport.listener (the one paho owner stays in
agent/transport/mqtt.py):
- the live one, shared (`$share/<group>/<prefix>/+/<topic>`) so that several centre
  processes split the load; it keeps a persistent session, so a restart of the centre loses
  nothing the broker queued meanwhile;
- at start, a short non-shared one on the retained topics (availability, meta, state):
  MQTT does not send retained messages to shared subscriptions, and the retained picture is
  what tells a fresh centre which sites exist and which are offline.
- within the live one, not shared: each regional broker's bridge state
  (`<prefix>/$bridge/<region>/state`, agent/centre/brokers.py), retained, so every process
  knows at once which regions are cut off.

Messages go through a queue to one writer thread that stores them in batches (one
transaction each), then records condition changes (offline, silent, verdicts) as events.

The writer also records the centre's own link to the broker (agent/centre/link.py). While it
is down the centre is blind, not the sites: conditions are judged at the moment the link went
down, and stay so until SETTLE_S after it returns, time for the broker to deliver what it
queued for the centre meanwhile, so a site that kept reporting is not called silent.

A live message is acknowledged to the broker only after its batch is committed (or after it
was refused and logged as a bad report): the broker keeps everything else in the centre's
session and sends it again after a restart, so a centre killed with reports in memory loses
none (the store's (site_id, seq) key drops the copies it had already committed). The
subscription's Receive Maximum bounds the unacknowledged messages, and so the queue: a writer
held up (another process's lock, a slow disk) makes the broker hold the backlog instead of the
centre's memory growing.

A clean stop while another instance runs hands this one's share over (`_hand_over`): the
broker (mosquitto, EMQX) goes on giving a disconnected persistent session its share of a
shared subscription, so the stopping instance first leaves the share group (UNSUBSCRIBE,
connection kept) and stores what its session had already been given. The last instance
running keeps its subscription, so its session queues everything until it starts again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator
from typing import Any

from pydantic import ValidationError

from agent.centre import brokers, link
from agent.centre.alerts import store as alert_store
from agent.centre.metrics import INGEST
from agent.centre.settings import CentreSettings
from agent.centre.store import Event, Incoming, PublishedSchedule, RegionState, Store
from agent.centre.store.base import Outage, StoreError
from agent.contract.payloads import PAYLOADS, Envelope, parse_report
from agent.contract.topics import TOPICS, Direction, Scope, topic_for
from agent.errors import ConfigError
from agent.messages import message
from agent.schedule.model import ScheduleError, parse_payload
from agent.transport.listener import Listener, Received
from agent.transport.mqtt import Endpoint, Protocol, endpoint

log = logging.getLogger(__name__)

INGESTED = ("availability", "meta", "state", "checks", "attendance", "live", "live_event")
RETAINED = tuple(n for n in INGESTED if TOPICS[n].retained)
_BATCH = 2000
# Receive Maximum of the live subscription: reports received and not yet committed. A few
# batches' worth, so that acknowledging after the commit never starves the writer.
IN_FLIGHT = 4000
_RETRY_S = 1.0
_SWEEP_S = 1.0
_PRUNE_S = 3600.0
SETTLE_S = 3.0
QUIET_S = 0.5  # nothing new from the broker for this long: what it had for us is in
HAND_OVER_S = 10.0  # a hand-over's bound: UNSUBACK, then what the session held


def schedule_filters(prefix: str) -> list[str]:
    """The schedules the centre publishes (every site's, one site's): read back and kept in
    the store, so the alert rules know the sessions."""
    return [topic_for(prefix, "", "fleet_schedule"), topic_for(prefix, "+", "schedule")]


def live_filters(prefix: str, group: str) -> list[str]:
    share = f"$share/{group}/" if group else ""
    reports = [f"{prefix}/+/{TOPICS[n].suffix}" for n in INGESTED]
    return [share + f for f in reports + schedule_filters(prefix)]


def retained_filters(prefix: str) -> list[str]:
    return [f"{prefix}/+/{TOPICS[n].suffix}" for n in RETAINED] + schedule_filters(prefix)


_BY_SUFFIX = {
    t.suffix: t.payload
    for t in TOPICS.values()
    if t.direction is Direction.OUT and t.scope is Scope.SITE and t.name in INGESTED
}


def parse(prefix: str, message: Received) -> Envelope:
    """The payload model of a message on `<prefix>/<site_id>/<suffix>`; ValueError if not.
    Fields this centre does not know (a newer agent's) are ignored, not refused."""
    head = prefix + "/"
    if not message.topic.startswith(head):
        raise ValueError("outside the prefix")
    site_id, _, suffix = message.topic[len(head) :].partition("/")
    kind = _BY_SUFFIX.get(suffix)
    if kind is None:
        raise ValueError(f"not a topic the centre reads: {suffix!r}")
    payload = parse_report(PAYLOADS[kind], message.payload)
    if payload.site_id != site_id:
        raise ValueError(f"payload site_id {payload.site_id!r} on another site's topic")
    _check_int64(payload.model_dump(), kind)
    return payload


def parse_schedule(prefix: str, message: Received, now: float) -> PublishedSchedule | None:
    """The schedule on a schedule topic (ScheduleError if it is not one); None for a message
    on another topic."""
    scope: str | None = None
    if message.topic == topic_for(prefix, "", "fleet_schedule"):
        scope = ""
    elif message.topic.startswith(prefix + "/") and message.topic.endswith("/schedule"):
        site_id = message.topic[len(prefix) + 1 : -len("/schedule")]
        # "" would pass for every site's schedule
        scope = site_id if site_id and "/" not in site_id else None
    if scope is None:
        return None
    return PublishedSchedule(scope, parse_payload(message.payload, message.topic), now)


_INT64 = range(-(2**63), 2**63)


def _check_int64(value: object, where: str) -> None:
    """SQLite stores integers in 64 bits; a bigger one raises OverflowError in the store,
    which would stop the writer thread. Refuse it here, as a bad report."""
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        raise ValueError(f"{where}: number out of range (64-bit integers only)")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_int64(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_int64(item, f"{where}[{i}]")


class _Forwarder(Listener):
    """A Listener that only forwards: the base keeps every message for tests and the demo,
    which a centre running for months cannot afford (the transport has no switch for it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._link_lock = threading.Lock()
        self._lost: tuple[float, int] | None = None  # (when, connects then)
        self.received = 0  # by the listener's thread only

    def _receive(self, message: Received) -> None:
        self.received += 1
        if self._on_message is not None:
            self._on_message(message)

    def _serve(self, conn: Any, number: int) -> None:
        # Each connection ends here; the base class says nothing of it, and the centre must
        # know it is blind.
        try:
            super()._serve(conn, number)
        finally:
            with self._link_lock:
                if self._lost is None and not self._stop.is_set():
                    self._lost = (time.time(), self.connects)

    def lost_since(self) -> float | None:
        """When the link to the broker was lost; None while connected (a CONNACK since)."""
        with self._link_lock:
            if self._lost is not None and self.connects > self._lost[1]:
                self._lost = None
            return None if self._lost is None else self._lost[0]


class Ingest:
    """The running centre: subscriptions, the writer thread, and the store it fills."""

    def __init__(
        self, settings: CentreSettings, instance: str = "", leads: Callable[[], bool] = lambda: True
    ) -> None:
        """`leads`: whether this process leads (agent/centre/leader.py): the full sweep and
        pruning are done once, by the leader; the sweep of each batch's sites by every one."""
        self.settings = settings
        self._leads = leads
        self.prefix = settings.broker.prefix
        base = settings.broker.client_id or f"edge-agent-centre-{socket.gethostname()}"
        self.client_id = base + (f"-{instance}" if instance else "")
        self.store = Store(settings.store_location)
        # Bounded by the live subscription's Receive Maximum (IN_FLIGHT), not here: blocking
        # the listener's thread on a full queue would also stop its keepalives and the
        # acknowledgements that free the queue. The one-off retained pass adds one message per
        # retained topic and site at start.
        self._queue: queue.SimpleQueue[Received | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._writer = threading.Thread(target=self._write, name="centre-writer", daemon=True)
        self._live: _Forwarder | None = None
        self.stored = 0
        self.rejected = 0
        self.events: list[Event] = []
        self.instance = instance
        # The link's own connection: recorded by the writer thread, never the listener's
        # (which must not wait on the database while it keeps the broker's keepalive).
        self._link_db = link.open_link(settings.store_location)
        self._link: tuple[bool, float] = (True, time.time())  # (up, since)
        self._frozen_at: float | None = None
        self._settle_until = 0.0
        self._link_written = 0.0
        # Held while the row is written, and by a hand-over that deletes it for good.
        self._row_lock = threading.Lock()
        self._row_gone = False
        self._outage = Outage(log)
        self._unavailable = self.store.db.unavailable
        self._db_error = self.store.db.error

    def _endpoint(self, client_id: str, session_expiry_s: int | None = None) -> Endpoint:
        where = endpoint(self.settings.broker, client_id)
        if session_expiry_s is not None:
            where = dataclasses.replace(where, session_expiry_s=session_expiry_s, clean_start=True)
        return where

    def start(self) -> Ingest:
        self._writer.start()
        # Live first, so nothing published during the retained pass is missed.
        self._live = _Forwarder(
            dataclasses.replace(self._endpoint(self.client_id), receive_maximum=IN_FLIGHT),
            # The bridges' states too, not shared: every process needs each, and they are
            # retained (a shared subscription would not get the current one at start).
            [
                *live_filters(self.prefix, self.settings.share_group),
                brokers.bridge_state_filter(self.prefix),
            ],
            protocol=self.settings.broker.protocol,
            on_message=self._queue.put,
            manual_ack=True,
        )
        self._live.start(timeout=self.settings.broker.connect_timeout_s)
        if self._live.protocol is Protocol.V311 and self.settings.share_group:
            self._live.stop()
            raise ConfigError(
                message(
                    "centre.settings.share_group_needs_v5",
                    group=self.settings.share_group,
                    where=f"{self.settings.broker.host}:{self.settings.broker.port}",
                    setting=self.settings.broker.protocol,
                ),
                message("centre.settings.hint.share_group"),
            )
        if self.settings.retained_wait_s > 0:
            self._retained_pass()
        return self

    def _retained_pass(self) -> None:
        client_id = f"{self.client_id}-retained-{os.getpid()}"
        last = [time.monotonic()]

        def take(message: Received) -> None:
            last[0] = time.monotonic()
            if message.retain:
                self._queue.put(message)

        assert self._live is not None
        snap = _Forwarder(
            self._endpoint(client_id, 0),
            retained_filters(self.prefix),
            protocol=self._live.protocol,
            on_message=take,
        )
        snap.start(timeout=self.settings.broker.connect_timeout_s)
        try:
            # The broker sends retained messages right after the SUBACK: stop once they pause.
            end = time.monotonic() + self.settings.retained_wait_s
            while time.monotonic() < end and time.monotonic() - last[0] < 0.3:
                time.sleep(0.05)
        finally:
            snap.stop()

    def stop(self, forget: bool = True, dead: Collection[str] = ()) -> None:
        """`forget`: delete this instance's link row (a clean stop); kept by the leader's
        visits to a dead instance's session (agent/centre/orphans.py). `dead`: instances whose
        rows this process's visits kept fresh: they do not take over a share."""
        if forget:
            self._hand_over(dead)
        # The writer first, while the live connection can still send its acknowledgements:
        # what arrives meanwhile stays unacknowledged, and the broker keeps it for next time.
        self._stop.set()
        self._queue.put(None)
        self._writer.join(10)
        if self._live is not None:
            self._live.stop()
        if forget:
            with self._housekeeping("forgetting the centre's link"):
                link.forget(self._link_db, self.instance)
        self._link_db.close()
        self.store.close()

    def _hand_over(self, dead: Collection[str]) -> None:
        """Leave the share group if another instance runs, and store what this session had
        already been given: else the broker keeps queueing this instance's share in it until
        it starts again. The row goes first, then the others are read: of instances stopping
        at once, the last to look sees none and stays subscribed, so the group is never left
        empty (the broker would drop what nobody subscribes to)."""
        live = self._live
        shared = [f for f in live.filters if f.startswith("$share/")] if live else []
        if live is None or not shared or not self._writer.is_alive():
            return
        check = None
        try:
            check = link.open_link(self.settings.store_location)
            with self._row_lock:
                self._row_gone = True
                link.forget(check, self.instance)
            running = link.others_running(check, self.instance, time.time())
            others = [name for name in running if name not in dead]
        except (StoreError, self._unavailable, self._db_error) as exc:
            # Cannot tell: keep the subscription (nothing is lost, only late), as a lone centre.
            log.warning("centre: cannot read the other instances (%s); keeping this one's "
                        "broker session subscribed", str(exc).splitlines()[0])  # fmt: skip
            return
        finally:
            if check is not None:
                check.close()
        if not others:
            return
        log.info(
            "centre: instance %s stops; its share of the reports goes to the other instances",
            self.instance or '""',
        )
        if not live.unsubscribe(shared, HAND_OVER_S):
            log.warning(
                "centre: the broker did not confirm the unsubscribe within %.0f s; what it"
                " still queues for this instance waits for its restart",
                HAND_OVER_S,
            )
        self.until_quiet(lambda: live.received, QUIET_S, HAND_OVER_S)

    def until_quiet(self, count: Callable[[], int], quiet_s: float, max_s: float) -> None:
        """Wait until `count()` has not changed for `quiet_s` (at most `max_s`), the writer
        storing meanwhile."""
        seen, quiet_since = count(), time.monotonic()
        end = time.monotonic() + max_s
        while time.monotonic() < end and self._writer.is_alive():
            time.sleep(0.1)
            if (now := count()) != seen:
                seen, quiet_since = now, time.monotonic()
            elif time.monotonic() - quiet_since >= quiet_s:
                return

    def wait(self, stop: threading.Event) -> None:
        while not stop.wait(0.5):
            if not self._writer.is_alive():
                log.error("centre: the writer thread died; stopping")
                return

    # ---- writer thread --------------------------------------------------------------------

    def _write(self) -> None:
        next_sweep = time.monotonic() + _SWEEP_S
        next_prune = time.monotonic()
        done = False
        while not done:
            batch: list[Received] = []
            try:
                first = self._queue.get(timeout=max(0.0, next_sweep - time.monotonic()))
                batch.append(first) if first is not None else None
                done = first is None
                while not done and len(batch) < _BATCH:
                    item = self._queue.get_nowait()
                    if item is None:
                        done = True
                    else:
                        batch.append(item)
            except queue.Empty:
                pass
            if batch:
                self._store(batch)
            with self._housekeeping("recording the centre's link"):
                self._watch_link()
            sweep_due = time.monotonic() >= next_sweep
            if sweep_due:
                next_sweep = time.monotonic() + _SWEEP_S
            if sweep_due and self._leads():
                s = self.settings
                with self._housekeeping("the silence sweep"):
                    at = self.judged_at()
                    self._sweep(self.store.maybe_silent(at, s.silent_after, s.report_interval_s))
            # A follower's prune stays due: a process that takes the lead prunes at once.
            if time.monotonic() >= next_prune and self._leads():
                next_prune = time.monotonic() + _PRUNE_S
                with self._housekeeping("pruning old history"):
                    cutoff = time.time() - self.settings.history_days * 86400
                    self.store.prune(cutoff)
                    alert_store.prune(self.settings.store_location, cutoff)
        if self._leads():
            with self._housekeeping("the last sweep"):
                self._sweep()

    # ---- the centre's own link ---------------------------------------------------------

    def judged_at(self) -> float:
        """The time conditions are judged at: now, or the moment the link was lost."""
        return time.time() if self._frozen_at is None else self._frozen_at

    def _watch_link(self) -> None:
        if self._live is None or not self._live.connects:
            return  # not connected yet: start() succeeds or says why
        now = time.time()
        lost = self._live.lost_since()
        up, since = self._link
        if up and lost is not None:
            self._link = (False, lost)
            if self._frozen_at is None:
                self._frozen_at = lost
            log.warning("centre: lost the broker; site conditions frozen until it is back")
        elif not up and lost is None:
            self._link = (True, now)
            self._settle_until = time.monotonic() + SETTLE_S
            log.info("centre: the broker is back after %.0f s", now - since)
        elif (
            up
            and self._frozen_at is not None
            and time.monotonic() >= self._settle_until
            and self._queue.empty()
        ):
            self._frozen_at = None
            log.info("centre: site conditions judged live again")
        elif now - self._link_written < link.HEARTBEAT_S:
            return
        self._record_link(now)

    def _record_link(self, now: float) -> None:
        up, since = self._link
        with self._row_lock:
            if self._row_gone:
                return  # handing over: the other instances must not count this one
            link.record(
                self._link_db, self.instance, up=up, since=since, judged_at=self._frozen_at,
                now=now,
            )  # fmt: skip
        self._link_written = now

    @contextlib.contextmanager
    def _housekeeping(self, what: str) -> Iterator[None]:
        """Housekeeping the database refuses now (locked past its timeout, disk full) is done
        at its next turn: it must not end the writer, and with it the centre's intake."""
        try:
            yield
        except self._unavailable as exc:
            self.store.rollback()
            self._database_lost(f"{what} failed", exc)

    def _database_lost(self, what: str, exc: Exception) -> None:
        # Said once per outage, not at every retry (once a second while the server is away).
        self._outage.failed(
            "centre: %s: %s; the database is unavailable: reports stay on the broker,"
            " unacknowledged, until it is back (check the disk, the database server, and who"
            " else holds the database)",
            what,
            str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
        )

    def _database_back(self) -> None:
        self._outage.ended(
            "centre: the database is back after %.0f s; storing what the broker kept"
        )

    def database_steady(self, for_s: float) -> bool:
        """The store took every write for the last `for_s` (as far as this process wrote)."""
        return self._outage.steady(for_s, time.time())

    @property
    def database_lost(self) -> float | None:
        """Since when the store refuses every write; None while it takes them."""
        return self._outage.since

    def _store(self, batch: list[Received]) -> None:
        now = time.time()
        items: list[Incoming | PublishedSchedule | RegionState] = []
        for received in batch:
            region = brokers.region_of_topic(self.prefix, received.topic)
            if region is not None:
                if received.payload not in (b"0", b"1"):
                    self.rejected += 1
                    log.warning("centre: %s: rejected: not 0 or 1", received.topic)
                else:
                    items.append(RegionState(region, received.payload == b"1", now))
                continue
            try:
                schedule = parse_schedule(self.prefix, received, now)
                if schedule is not None:
                    items.append(schedule)
                    continue
                payload = parse(self.prefix, received)
            except (ValueError, ValidationError, ScheduleError) as exc:
                self.rejected += 1
                INGEST.rejected()
                log.warning("centre: %s: rejected: %s", received.topic, str(exc).splitlines()[0])
                continue
            items.append(Incoming(payload, received.retain, now))
        touched = self._commit(items)
        if touched is None:
            return  # stopping with the database unwritable: the broker keeps them
        # Committed, or refused and logged: only now may the broker forget them.
        if self._live is not None:
            self._live.ack(m.receipt for m in batch if m.receipt is not None)
        # Right after the batch, so a change that lasts less than a sweep is still recorded.
        with self._housekeeping("recording condition changes"):
            self._sweep(touched)

    def _commit(self, items: list[Incoming | PublishedSchedule | RegionState]) -> set[str] | None:
        """Store the items; the site ids touched, or None if the database refused them until
        the centre stopped."""
        while True:
            try:
                touched = self.store.apply_batch(items)
                self.stored += len(items)
                INGEST.stored(items, time.time())
                self._database_back()
                return touched
            except self._unavailable as exc:
                # The database's trouble (locked past the timeout, disk full, I/O error, the
                # server gone), not the reports': keep them unacknowledged and try again (a
                # lost PostgreSQL connection is opened again by the next try).
                self.store.rollback()
                self._database_lost(f"cannot store {len(items)} report(s)", exc)
                if self._stop.wait(_RETRY_S):
                    return None
            except (self._db_error, ValueError, TypeError):
                # One bad report must not cost the batch, nor stop the centre.
                log.exception(
                    "centre: storing a batch of %d failed; storing one by one", len(items)
                )
                self.store.rollback()
                try:
                    return self._one_by_one(items)
                except self._unavailable:
                    continue  # the database, not a report: the whole batch again, unacked

    def _one_by_one(self, items: list[Incoming | PublishedSchedule | RegionState]) -> set[str]:
        """Store each alone; a report the database refuses as such is counted and logged (and
        then acknowledged). OperationalError is the database's trouble, not the report's: it
        goes up, so nothing is acknowledged that was not stored."""
        touched: set[str] = set()
        for item in items:
            try:
                touched |= self.store.apply_batch([item])
                self.stored += 1
                INGEST.stored([item], time.time())
            except self._unavailable:
                self.store.rollback()
                raise
            except (self._db_error, ValueError, TypeError) as exc:
                self.store.rollback()
                self.rejected += 1
                INGEST.rejected()
                if isinstance(item, Incoming):
                    what = f"{item.payload.site_id} seq {item.payload.seq}"
                elif isinstance(item, RegionState):
                    what = f"the state of region {item.region}"
                else:
                    what = f"the schedule of {item.scope or 'every site'}"
                log.error("centre: %s: not stored: %s", what, exc)
        return touched

    def _sweep(self, site_ids: set[str] | None = None) -> None:
        if site_ids is not None and not site_ids:
            return
        s = self.settings
        events = self.store.record_conditions(
            self.judged_at(), s.silent_after, s.report_interval_s, s.gap_grace_s, site_ids
        )
        for ev in events:
            log.info("centre: %s %s -> %s %s", ev.site_id, ev.old, ev.new, ev.detail)
        self.events.extend(events)
