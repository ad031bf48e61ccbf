"""The alert engine against a real fleet store filled with real payloads, the real alerts
store, directory and queue on one SQLite file; the time of each evaluation is given, so the
group window, reminder rounds and escalation are exact."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.centre.alerts import engine as engine_module
from agent.centre.alerts import rules as rules_mod
from agent.centre.alerts.contacts import ContactStore
from agent.centre.alerts.engine import AlertEngine
from agent.centre.alerts.model import (
    AlertKind,
    Channel,
    ChannelKind,
    Contact,
    Notification,
    NotificationEvent,
    Rule,
    Severity,
)
from agent.centre.alerts.queue import NotificationQueue
from agent.centre.alerts.store import AlertStore, Scope
from agent.centre.settings import CentreSettings
from agent.centre.store import RegionState, RosterEntry, Store
from agent.checks.live import LiveVerdict
from agent.messages import render
from agent.sim.fleet_site import SimSite
from tests.fixtures.broker import wait_until
from tests.test_alert_facts import HOP, schedule, state
from tests.test_centre_live import live
from tests.test_dashboard import feed

DOWN = Rule(id="down", kind=AlertKind.SITE_DOWN, lead_minutes=15, for_s=0)
DROPPED = Rule(id="dropped", kind=AlertKind.CALL_DROPPED, severity=Severity.CRITICAL, for_s=10,
               remind_every_s=60, escalate_after_s=100)  # fmt: skip
OUTBOX = Rule(id="outbox", kind=AlertKind.OUTBOX_BACKLOG, pending_over=10, for_s=5)


def hook(contact_id: str, **extra: Any) -> Contact:
    return Contact(
        id=contact_id, name=contact_id,
        channels=(Channel(kind=ChannelKind.WEBHOOK, address=f"http://127.0.0.1:9/{contact_id}"),),
        **extra,
    )  # fmt: skip


CONTACTS = (
    hook("tech-d1", districts=("d1",), language="vi"),
    hook("tech-d2", districts=("d2",)),
    hook("desk", level=2, language="en"),
    hook("boss", level=3),
)


class World:
    def __init__(self, tmp_path: Path, *rules: Rule, window: float = 10.0) -> None:
        self.path = tmp_path / "centre.sqlite"
        self.settings = CentreSettings.model_validate({
            "db_path": str(self.path),
            "alerts": {"group_window_s": window, "rules": [r.model_dump() for r in rules]},
        })  # fmt: skip
        self.store = Store(self.path)
        contacts = ContactStore(self.path)
        for c in CONTACTS:
            contacts.put(c)
        contacts.close()
        self.alerts = AlertStore(self.path)
        self.queue = NotificationQueue(self.path)
        self.sites = {s: SimSite(s, parent="d1", name=f"Xã {s}") for s in ("c1", "c2", "c3")}
        for site in self.sites.values():
            feed(self.store, *site.birth())
        schedule(self.store, "", HOP)

    def engine(self) -> AlertEngine:
        return AlertEngine(self.settings)

    def offline(self, *ids: str) -> None:
        feed(self.store, *(self.sites[i].availability("offline", "will") for i in ids))

    def online(self, *ids: str) -> None:
        for i in ids:
            self.sites[i].boot += 1  # the agent restarted: its `online` ends the old will
            feed(self.store, self.sites[i].availability(), self.sites[i].state())

    def queued(self) -> list[Notification]:
        rows = self.queue._db.execute("SELECT id FROM notifications ORDER BY id").fetchall()
        got = [self.queue.get(r[0]) for r in rows]
        return [n for n in got if n is not None]

    def told(self, event: NotificationEvent) -> list[tuple[str, list[str]]]:
        return [(n.contact_id, sorted(a.site_id for a in n.alerts))
                for n in self.queued() if n.event is event]  # fmt: skip


def test_a_group_goes_out_once_its_window_has_passed_and_recovery_follows(tmp_path: Path) -> None:
    w = World(tmp_path, DOWN, window=10.0)
    engine = w.engine()
    w.offline("c1", "c2")
    t0 = time.time()
    engine.tick(t0)
    engine.tick(t0 + 5)
    assert w.queued() == [] and w.alerts.firing() == []  # waiting for the rest of the group
    w.offline("c3")
    engine.tick(t0 + 6)
    result = engine.tick(t0 + 11)
    assert sorted(result.raised) == ["down:c1", "down:c2", "down:c3"]
    # one message listing the three sites, to d1's technician only (a warning: not the desk)
    assert w.told(NotificationEvent.RAISED) == [("tech-d1", ["c1", "c2", "c3"])]
    assert {a.key for a in w.alerts.firing()} == {"down:c1", "down:c2", "down:c3"}
    assert len(w.alerts.incidents(open_only=True)) == 3
    engine.tick(t0 + 12)
    assert len(w.queued()) == 1  # said once, not once an evaluation

    w.online("c1")
    result = engine.tick(t0 + 20)
    assert result.recovered == ["down:c1"]
    assert w.told(NotificationEvent.RECOVERED) == [("tech-d1", ["c1"])]
    assert {a.key for a in w.alerts.firing()} == {"down:c2", "down:c3"}
    assert [i.site_id for i in w.alerts.incidents() if i.closed_at is not None] == ["c1"]

    # the others back in one evaluation: one message listing both, not one each
    w.online("c2", "c3")
    result = engine.tick(t0 + 30)
    assert sorted(result.recovered) == ["down:c2", "down:c3"]
    assert w.told(NotificationEvent.RECOVERED) == [("tech-d1", ["c1"]), ("tech-d1", ["c2", "c3"])]
    assert w.alerts.firing() == []


def test_a_silenced_alert_opens_its_incident_and_sends_nothing(tmp_path: Path) -> None:
    w = World(tmp_path, DOWN, window=0.0)
    t0 = time.time()
    w.alerts.add_silence(scope=Scope.SITE, value="c1", starts_at=t0 - 60, ends_at=t0 + 3600,
                         who="Lan", why="thay bộ mã hoá", at=t0 - 60)  # fmt: skip
    engine = w.engine()
    w.offline("c1", "c2")
    result = engine.tick(t0 + 1)
    assert result.silenced == ["down:c1"] and result.raised == ["down:c2"]
    assert w.told(NotificationEvent.RAISED) == [("tech-d1", ["c2"])]
    assert sorted(i.site_id for i in w.alerts.incidents(open_only=True)) == ["c1", "c2"]
    w.online("c1", "c2")
    engine.tick(t0 + 2)
    # only those told hear the recovery
    assert w.told(NotificationEvent.RECOVERED) == [("tech-d1", ["c2"])]
    assert w.alerts.incidents(open_only=True) == []


def test_an_alert_held_back_by_a_silence_is_told_once_the_silence_ends(tmp_path: Path) -> None:
    w = World(tmp_path, DOWN, window=0.0)
    t0 = time.time()
    w.alerts.add_silence(scope=Scope.DISTRICT, value="d1", starts_at=t0 - 60, ends_at=t0 + 600,
                         who="Lan", why="bảo trì đường truyền", at=t0 - 60)  # fmt: skip
    engine = w.engine()
    w.offline("c1")
    assert engine.tick(t0 + 1).silenced == ["down:c1"]
    engine.tick(t0 + 300)
    assert w.told(NotificationEvent.RAISED) == []  # still inside the window
    engine.tick(t0 + 601)  # the window is over and c1 is still down
    assert w.told(NotificationEvent.RAISED) == [("tech-d1", ["c1"])]
    engine.tick(t0 + 602)
    assert len(w.told(NotificationEvent.RAISED)) == 1  # once
    w.online("c1")
    engine.tick(t0 + 700)
    assert w.told(NotificationEvent.RECOVERED) == [("tech-d1", ["c1"])]


class Killed(BaseException):
    """The process dying at that instruction."""


def dies_on_the_second_call(real: Callable[..., Any]) -> Callable[..., Any]:
    """`real`, but the process dies at its second call (the first has done its work)."""
    calls = 0

    def wrapped(*args: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise Killed
        return real(*args)

    return wrapped


def test_a_kill_between_queueing_and_recording_loses_nothing_and_adds_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # outbox_backlog: the store has no start of its own for it, so its fired_at rests on the
    # hold start the engine keeps on disk
    w = World(tmp_path, OUTBOX, window=0.0)
    feed(w.store, state(w.sites["c1"], pending=50), state(w.sites["c2"], pending=60))
    t0 = time.time()
    first = w.engine()
    first.tick(t0)
    assert w.queued() == []  # held for 5 s

    def killed(self: AlertStore, alert: object) -> None:
        raise Killed

    monkeypatch.setattr(AlertStore, "raised", killed)
    with pytest.raises(Killed):
        first.tick(t0 + 6)
    keys = [n.key for n in w.queued()]
    assert len(keys) == 1 and w.alerts.firing() == []  # queued, not yet recorded
    monkeypatch.undo()

    second = w.engine()  # the restarted centre: nothing in memory
    result = second.tick(t0 + 30)
    assert sorted(result.raised) == ["outbox:c1", "outbox:c2"]
    assert [n.key for n in w.queued()] == keys  # the same key again: ignored
    assert {a.key: a.fired_at for a in w.alerts.firing()} == {
        "outbox:c1": t0 + 5, "outbox:c2": t0 + 5
    }  # fmt: skip


def test_a_kill_half_way_through_recording_a_group_tells_nobody_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = World(tmp_path, OUTBOX, window=0.0)
    feed(w.store, state(w.sites["c1"], pending=50), state(w.sites["c2"], pending=60))
    t0 = time.time()
    first = w.engine()
    first.tick(t0)
    monkeypatch.setattr(AlertStore, "raised", dies_on_the_second_call(AlertStore.raised))
    with pytest.raises(Killed):
        first.tick(t0 + 6)
    monkeypatch.undo()
    assert [a.key for a in w.alerts.firing()] == ["outbox:c1"]  # one recorded, one not
    told = [(n.key, sorted(a.site_id for a in n.alerts)) for n in w.queued()]
    assert [sites for _k, sites in told] == [["c1", "c2"]]

    second = w.engine()  # restarted: c2 was told with c1, and must not be told alone now
    result = second.tick(t0 + 30)
    assert result.raised == ["outbox:c2"]
    assert [(n.key, sorted(a.site_id for a in n.alerts)) for n in w.queued()] == told
    assert {a.key for a in w.alerts.firing()} == {"outbox:c1", "outbox:c2"}


def test_a_kill_half_way_through_closing_a_group_tells_nobody_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = World(tmp_path, DOWN, window=0.0)
    engine = w.engine()
    w.offline("c1", "c2")
    t0 = time.time()
    engine.tick(t0)
    w.online("c1", "c2")
    monkeypatch.setattr(AlertStore, "_resolve", dies_on_the_second_call(AlertStore._resolve))
    with pytest.raises(Killed):
        engine.tick(t0 + 10)
    monkeypatch.undo()
    told = [(n.key, sorted(a.site_id for a in n.alerts)) for n in w.queued()
            if n.event is NotificationEvent.RECOVERED]  # fmt: skip
    assert [sites for _k, sites in told] == [["c1", "c2"]]
    assert len(w.alerts.firing()) == 2  # nothing half-closed

    w.engine().tick(t0 + 20)  # restarted
    again = [(n.key, sorted(a.site_id for a in n.alerts)) for n in w.queued()
             if n.event is NotificationEvent.RECOVERED]  # fmt: skip
    assert again == told  # the same group, the same key: one message
    assert w.alerts.firing() == []


def test_the_engine_wakes_for_a_group_deadline_before_its_next_evaluation(tmp_path: Path) -> None:
    w = World(tmp_path, DOWN, window=3.0)
    engine = w.engine()
    t0 = time.time()
    assert engine._next_wait(t0) == w.settings.alerts.evaluate_every_s
    w.offline("c1")
    engine.tick(t0)
    [group] = engine._pending
    # the group's window ends 3 s after its first member fired: wake then, not later
    assert engine._next_wait(group.anchor + 2.5) == pytest.approx(0.5)
    assert engine._next_wait(group.anchor + 10) == 0.05


def test_a_costly_evaluation_spaces_out_the_next_one(tmp_path: Path) -> None:
    """At 20,000 sites an evaluation reads the fleet for ~1.2 s: run every 2 s it held the
    process against its own writer and reports waited (bench/scale.py, p99 over 1 s)."""
    w = World(tmp_path, DOWN, window=3.0)
    engine = w.engine()
    t0 = time.time()
    w.offline("c1")
    engine.tick(t0)
    [group] = engine._pending
    engine._cost = 1.2
    rest = 1.2 * (1 - engine_module.COST_SHARE) / engine_module.COST_SHARE
    assert engine._next_wait(group.anchor + 2.5) == pytest.approx(rest)  # even a group waits
    engine._cost = 0.01  # a province's fleet: the interval and the groups as before
    assert engine._next_wait(group.anchor + 2.5) == pytest.approx(0.5)
    engine.start()
    try:
        assert wait_until(lambda: engine._cost > 0, 10)  # the thread measures what it spent
    finally:
        engine.stop()


def dropped_world(tmp_path: Path) -> tuple[World, float]:
    w = World(tmp_path, DROPPED, window=0.0)
    began = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=20)
    feed(w.store, live(w.sites["c1"], LiveVerdict.DROPPED, began))
    return w, began.timestamp() + DROPPED.for_s


def test_reminders_come_once_a_round_even_across_a_restart_until_acknowledged(
    tmp_path: Path,
) -> None:
    w, fired = dropped_world(tmp_path)
    engine = w.engine()
    engine.tick(fired + 1)
    assert sorted(w.told(NotificationEvent.RAISED)) == [("desk", ["c1"]), ("tech-d1", ["c1"])]
    for at in (fired + 30, fired + 59):
        engine.tick(at)
    assert w.told(NotificationEvent.REMINDER) == []
    engine.tick(fired + 61)
    engine.tick(fired + 62)
    assert len(w.told(NotificationEvent.REMINDER)) == 2  # round 1, to both
    engine.tick(fired + 99)
    restarted = w.engine()
    restarted.tick(fired + 99.5)  # round 1 again after a restart: the same keys
    assert len(w.told(NotificationEvent.REMINDER)) == 2
    restarted.tick(fired + 121)
    assert len(w.told(NotificationEvent.REMINDER)) == 4  # round 2
    w.alerts.ack("dropped:c1", "Lan", fired + 130)
    for at in (fired + 181, fired + 250, fired + 400):
        restarted.tick(at)
    assert len(w.told(NotificationEvent.REMINDER)) == 4
    assert w.told(NotificationEvent.ESCALATED) == [("desk", ["c1"])]  # at 100 s, before ack


def test_escalation_goes_to_each_next_level_once(tmp_path: Path) -> None:
    rule = DROPPED.model_copy(update={"remind_every_s": None})
    w, fired = dropped_world(tmp_path)
    w.settings.alerts.rules = [rule]
    engine = w.engine()
    engine.tick(fired + 1)
    engine.tick(fired + 99)
    assert w.told(NotificationEvent.ESCALATED) == []
    engine.tick(fired + 101)
    engine.tick(fired + 150)
    assert w.told(NotificationEvent.ESCALATED) == [("desk", ["c1"])]
    alert = w.alerts.alert("dropped:c1")
    assert alert is not None and alert.escalated
    w.engine().tick(fired + 201)  # a restart in between changes nothing
    engine.tick(fired + 202)
    engine.tick(fired + 900)
    assert w.told(NotificationEvent.ESCALATED) == [("desk", ["c1"]), ("boss", ["c1"])]


def test_who_an_alert_was_escalated_to_hears_its_reminders_and_its_recovery(
    tmp_path: Path,
) -> None:
    w, fired = dropped_world(tmp_path)
    engine = w.engine()
    engine.tick(fired + 1)
    for at in (fired + 101, fired + 201):  # escalated to the desk, then to the boss
        engine.tick(at)
    assert w.told(NotificationEvent.ESCALATED) == [("desk", ["c1"]), ("boss", ["c1"])]
    engine.tick(fired + 241)  # reminder round 4 (every 60 s)
    reminded = [who for who, _ in w.told(NotificationEvent.REMINDER)]
    assert reminded.count("boss") == 1  # once, not at each earlier round it was not told of
    assert reminded.count("desk") == reminded.count("tech-d1")  # no second copy for the desk
    feed(w.store, live(w.sites["c1"], LiveVerdict.IN_CALL, datetime.now(UTC)))
    engine.tick(fired + 250)
    assert sorted(w.told(NotificationEvent.RECOVERED)) == [
        ("boss", ["c1"]),
        ("desk", ["c1"]),
        ("tech-d1", ["c1"]),
    ]


def test_an_acknowledged_critical_alert_is_not_escalated(tmp_path: Path) -> None:
    w, fired = dropped_world(tmp_path)
    engine = w.engine()
    engine.tick(fired + 1)
    w.alerts.ack("dropped:c1", "Lan", fired + 50)
    engine.tick(fired + 150)
    engine.tick(fired + 300)
    assert w.told(NotificationEvent.ESCALATED) == []
    assert w.told(NotificationEvent.REMINDER) == []


def test_a_failing_rule_leaves_its_alerts_alone_and_the_others_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = World(tmp_path, DOWN, OUTBOX, window=0.0)
    feed(w.store, state(w.sites["c2"], pending=50))
    w.offline("c1")
    t0 = time.time()
    engine = w.engine()
    engine.tick(t0)
    engine.tick(t0 + 10)
    assert {a.key for a in w.alerts.firing()} == {"down:c1", "outbox:c2"}

    def broken(*_: object) -> None:
        raise RuntimeError("a bug in one rule")

    monkeypatch.setitem(rules_mod._KINDS, AlertKind.OUTBOX_BACKLOG, broken)
    w.online("c1")
    result = engine.tick(t0 + 20)
    assert result.failed_rules == ["outbox"] and result.recovered == ["down:c1"]
    assert {a.key for a in w.alerts.firing()} == {"outbox:c2"}  # not recovered on a guess


def test_only_one_process_evaluates(tmp_path: Path) -> None:
    w = World(tmp_path, DOWN)
    one, two = w.engine(), w.engine()
    assert one.lead() and not two.lead()
    one.close()  # its process ends: the kernel drops the lock
    deadline = time.monotonic() + 2.0  # a follower tries again every second (centre/leader.py)
    while not two.lead() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert two.lead()
    two.close()


REGION = Rule(id="region-down", kind=AlertKind.REGION_DOWN, severity=Severity.CRITICAL, for_s=60)


def test_a_cut_region_is_one_alert_to_the_desk_not_one_per_site_to_its_technicians(
    store_location: Path | str,
) -> None:
    """On both backends (the regions' facts are a query of their own): region r001 (three
    communes of d1) cut off during a session → past the hold one RAISED to the desk only,
    no site_down for its sites; the bridge back → RECOVERED to the desk."""
    where = "db_url" if isinstance(store_location, str) else "db_path"
    settings = CentreSettings.model_validate({
        where: str(store_location),
        "alerts": {"group_window_s": 0.0, "rules": [r.model_dump() for r in (DOWN, REGION)]},
    })  # fmt: skip
    store, contacts = Store(store_location), ContactStore(store_location)
    astore, queue = AlertStore(store_location), NotificationQueue(store_location)
    for c in CONTACTS:
        contacts.put(c)
    t0 = time.time()
    sites = {s: SimSite(s, parent=d, name=f"Xã {s}")
             for s, d in (("c1", "d1"), ("c2", "d1"), ("c3", "d1"), ("c4", "d2"))}  # fmt: skip
    store.import_roster([RosterEntry(s.site_id, s.name, "commune", s.parent, None,
                                     region="r002" if s.site_id == "c4" else "r001")
                         for s in sites.values()], t0)  # fmt: skip
    for site in sites.values():
        feed(store, *site.birth())
    schedule(store, "", HOP)  # a session running: site_down would fire for an unheard site

    def bridge(up: bool) -> None:
        touched = store.apply_batch([RegionState("r001", up, time.time())])
        store.record_conditions(time.time(), 3.0, 5.0, 30.0, touched)

    def told(event: NotificationEvent) -> list[tuple[str, list[str]]]:
        rows = queue._db.execute("SELECT id FROM notifications ORDER BY id").fetchall()
        got = [n for n in (queue.get(r[0]) for r in rows) if n is not None and n.event is event]
        return [(n.contact_id, [a.site_id for a in n.alerts]) for n in got]

    engine = AlertEngine(settings)
    try:
        assert engine.tick(t0).firing == 0
        bridge(False)
        cut = store.sites(time.time(), 5.0, 30.0)
        assert {s.site_id: s.region_down_since is not None for s in cut} == {
            "c1": True, "c2": True, "c3": True, "c4": False}  # fmt: skip
        assert engine.tick(t0 + 30).raised == []  # held: a bridge flap pages nobody
        result = engine.tick(t0 + 61)
        assert (result.firing, result.raised) == (1, ["region-down:region:r001"])
        # the desk only: not d1's technician (its district's sites), not level 3 yet
        assert told(NotificationEvent.RAISED) == [("desk", ["region:r001"])]
        (a,) = astore.firing()
        assert (a.site_name, a.district, a.tier) == ("r001", "", "region")
        assert render(a.reason, "en").startswith(
            "regional broker r001 cut off from the centre: 3 sites of the roster unreachable"
        )
        (inc,) = astore.incidents(open_only=True)
        assert inc.site_id == "region:r001"
        engine.tick(t0 + 90)
        assert len(told(NotificationEvent.RAISED)) == 1  # said once

        bridge(True)
        result = engine.tick(t0 + 120)
        assert result.recovered == ["region-down:region:r001"]
        assert told(NotificationEvent.RECOVERED) == [("desk", ["region:r001"])]
        assert astore.firing() == []
        assert [k for k in result.raised if k.startswith("down:")] == []
    finally:
        engine.close()
        for s in (store, contacts, astore, queue):
            s.close()
