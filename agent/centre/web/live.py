"""Live updates for the page: the fleet watch (a poll of the store, diffed into batches of
changed tiles) and the fan-out of server-sent events to every open page.

The watch reads the store through its own SQLite connection (WAL lets it read while the
ingest writes). It recomputes every site's condition each tick with the current time, so a
site that turns silent with no message at all still changes colour; while the centre has lost
the broker (agent/centre/link.py), with the moment it lost it instead, and the page is told
(a `centre` event) so that it marks every tile as not current.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from agent.centre import fleet, leader, link, report
from agent.centre.settings import CentreSettings
from agent.centre.store import Store
from agent.centre.store.base import Outage
from agent.centre.web import views

log = logging.getLogger(__name__)

TICK_S = 0.5
FULL_EVERY_S = 10.0
_MAX_INCREMENTAL = 2000
ATTENDANCE_EVERY_S = 5.0
HEARTBEAT_S = 15.0
ALLOWED_EVERY_S = 2.0
_CLIENT_QUEUE = 256


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


@dataclass(eq=False)
class _Client:
    queue: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(_CLIENT_QUEUE))
    lost: bool = False


class Hub:
    """Every open page's event stream. A page too slow to keep up is dropped; its browser
    reconnects and reloads the whole picture, which is cheaper than queueing without end."""

    def __init__(self) -> None:
        self._clients: set[_Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    @property
    def clients(self) -> int:
        return len(self._clients)

    def publish(self, event: str, data: Any) -> None:
        """From the event loop's thread."""
        text = sse(event, data)
        for client in list(self._clients):
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                client.lost = True
                self._clients.discard(client)

    def close_all(self) -> None:
        """End every stream (at shutdown: an open stream would hold the server up)."""
        for client in list(self._clients):
            client.lost = True
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait("")
        self._clients.clear()

    def publish_threadsafe(self, event: str, data: Any) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.publish, event, data)

    async def stream(self, first: list[str], still_allowed: Any) -> AsyncIterator[str]:
        client = _Client()
        self._clients.add(client)
        try:
            for text in first:
                yield text
            # Checked every ALLOWED_EVERY_S even while updates flow: a revoked display or a
            # removed account loses its open page within seconds, not at a quiet moment.
            allowed_until = time.monotonic() + ALLOWED_EVERY_S
            idle = 0.0
            while not client.lost:
                wait = max(0.0, allowed_until - time.monotonic())
                try:
                    text = await asyncio.wait_for(client.queue.get(), wait)
                    if client.lost:
                        return
                    yield text
                except TimeoutError:
                    idle += wait
                if time.monotonic() >= allowed_until:
                    if not still_allowed():
                        return  # the session ended: the page reconnects and must log in
                    allowed_until = time.monotonic() + ALLOWED_EVERY_S
                if idle >= HEARTBEAT_S:
                    idle = 0.0
                    yield ": keepalive\n\n"
        finally:
            self._clients.discard(client)


class FleetWatch:
    """The current tiles and counters, refreshed every tick; changes go to the hub."""

    def __init__(self, settings: CentreSettings, hub: Hub) -> None:
        self.settings = settings
        self.hub = hub
        self.store = Store(settings.store_location)
        self.lock = threading.Lock()  # one SQLite connection, used from worker threads
        self.tiles: dict[str, views.Tile] = {}
        self.labels = views.Labels()  # of the last full read
        self.attendance = views.NO_SESSION
        self._attendance_at = 0.0
        self._running: views.Running | None = None
        self._full_at = 0.0
        self._event_id = 0
        self._live_rev = 0
        self.rows: dict[str, fleet.SiteRow] = {}  # of the last reads: the live picture's input
        self.live: fleet.LivePicture | None = None
        self.ticks = 0
        self.centre = link.NOT_RUNNING
        self.leader: leader.Leader | None = None  # which serve process leads (centre/leader.py)
        self._leader_at = 0.0
        self._outage = Outage(log)  # the store not answering, said once per outage

    def close(self) -> None:
        with self.lock:
            self.store.close()

    def judged_at(self) -> float:
        """Now, or the moment the centre lost the broker (its sites' last known state)."""
        frozen = self.centre.judged_at
        return time.time() if frozen is None else frozen

    def read_centre(self) -> bool:
        """Re-read the centre's own link; whether it changed."""
        with self.lock:
            now = link.read(self.store.db, time.time())
            if time.monotonic() - self._leader_at >= leader.RECORD_EVERY_S:
                self._leader_at = time.monotonic()
                self.leader = leader.read(self.store.db, time.time())
        changed, self.centre = now != self.centre, now
        return changed

    def sites(self, site_ids: set[str] | None = None) -> list[Any]:
        s = self.settings
        at = self.judged_at()
        with self.lock:
            return self.store.sites(at, s.report_interval_s, s.gap_grace_s, site_ids)

    def known(self, site_ids: set[str]) -> set[str]:
        with self.lock:
            return self.store.known(site_ids)

    def refresh(self) -> tuple[list[views.Tile], bool]:
        """Re-read the store: (changed tiles, whether attendance changed). Worker thread.

        Each tick re-reads only the sites whose condition the ingest recorded as changed
        (its `events`, written right after each batch and by its silence sweep); every
        FULL_EVERY_S all sites, which also catches what events do not record (a renamed
        site, a new reason for the same condition). At 12,000 sites a full read costs
        about half a second of CPU; the events query, a few milliseconds."""
        if self.read_centre():
            self._full_at = 0.0  # judged at another moment: every tile again
        now = self.judged_at()
        with self.lock:
            newest, changed_ids = self.store.changed_since(self._event_id)
            # A live state moves without a condition change (in the call -> dropped).
            live_rev, live_ids = self.store.live_changed_since(self._live_rev)
        changed_ids |= live_ids
        # Many changes at once (a broker restart, the first sweep): one full read is cheaper
        # than a long IN list, which SQLite also caps.
        if (
            not self.tiles
            or len(changed_ids) > _MAX_INCREMENTAL
            or time.monotonic() - self._full_at >= FULL_EVERY_S
        ):
            self._full_at = time.monotonic()
            rows = self.sites()
            self.rows = {r.site_id: r for r in rows}
            self.labels = views.labels(rows)
            new = views.tiles(rows, now, self.settings.silent_after, self.labels)
            diff = views.changed(self.tiles, new)
            self.tiles = new
        elif changed_ids:
            rows = self.sites(changed_ids)
            self.rows.update((r.site_id, r) for r in rows)
            new = views.tiles(rows, now, self.settings.silent_after, self.labels)
            diff = views.changed(self.tiles, new)
            self.tiles.update(new)
        else:
            diff = []
        self._event_id, self._live_rev = newest, live_rev
        if diff:  # every change to the picture changes a tile (its `live` or its `c`)
            self.live = fleet.live_picture(
                list(self.rows.values()), now, self.settings.silent_after
            )
        att_changed = False
        if time.monotonic() - self._attendance_at >= ATTENDANCE_EVERY_S:
            self._attendance_at = time.monotonic()
            att = self._read_attendance()
            att_changed, self.attendance = att != self.attendance, att
        self.ticks += 1
        return diff, att_changed

    def _read_attendance(self) -> views.Attendance:
        with self.lock:
            session = self.store.latest_session()
            if session is None:
                return views.NO_SESSION
            if self._running is None or self._running.session_id != session:
                self._running = views.Running(session)
            new = self.store.attendance_since(session, self._running.rowid)
            expected = self.store.expected_of()
        for rowid, row in new:
            self._running.add(rowid, row)
        rows = list(self._running.rows.values())
        return views.attendance(report.session_report(session, rows, expected))

    def counters(self) -> dict[str, Any]:
        return views.counters(self.tiles, self.attendance, self.live)

    def snapshot(self) -> dict[str, Any]:
        return {
            "counters": self.counters(),
            "tiles": list(self.tiles.values()),
            "centre": self.centre_json(),
            "leader": None if self.leader is None else self.leader.to_json(),
        }

    def centre_json(self) -> dict[str, object]:
        """The centre's health for the page: its link to the broker and whether the store
        answers (while it does not, every tile is its site's last state read)."""
        lost = self._outage.since
        return {
            **self.centre.to_json(),
            "database": "up" if lost is None else "down",
            "database_since": lost,
        }

    async def run(self, stop: asyncio.Event) -> None:
        unavailable = self.store.db.unavailable
        while not stop.is_set():
            centre = self.centre_json()
            try:
                diff, att_changed = await asyncio.to_thread(self.refresh)
                self._outage.ended("dashboard: the database answers again after %.0f s")
            except unavailable as exc:
                self._outage.failed(
                    "dashboard: the database is unavailable: %s; showing the last state read"
                    " until it is back",
                    str(exc).strip().split("\n")[0],
                )
                diff, att_changed = [], False
            except Exception:
                log.exception("dashboard: reading the fleet failed; retrying")
                diff, att_changed = [], False
            if self.centre_json() != centre:
                self.hub.publish("centre", self.centre_json())
            if diff or att_changed:
                self.hub.publish("tiles", {"tiles": diff, "counters": self.counters()})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), TICK_S)

    def detail(self, site_id: str, replies: list[dict[str, Any]]) -> dict[str, Any] | None:
        rows = self.sites({site_id})
        if not rows:
            return None
        with self.lock:
            verdicts = self.store.verdicts(site_id)
            metrics = self.store.metrics(site_id)
            session = self.store.latest_session()
            curve = self.store.attendance(session, site_id) if session else []
            meta_expected = self.store.expected_of().get(site_id, ("", None))[1]
            live_session = rows[0].live.session_id if rows[0].live else None
            live_media = self.store.live_media(live_session, site_id) if live_session else []
            live_events = self.store.live_events(live_session, site_id) if live_session else []
        expected = next((r.expected for r in reversed(curve) if r.expected), meta_expected)
        return views.detail(
            rows[0],
            self.judged_at(),
            self.settings.silent_after,
            verdicts=verdicts,
            curve=[(r.ts, r.count) for r in curve],
            expected=expected,
            session_id=session,
            metrics=metrics,
            replies=replies,
            known=self.labels,
            live=views.live_detail(rows[0], self.judged_at(), live_media, live_events),
        )
