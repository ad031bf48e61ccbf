"""One leader among the centre processes (agent/centre/leader.py): the pure decisions, then
two Leadership objects on one real store, once per backend (an SQLite file, a real
PostgreSQL): exactly one leads, and when it is gone the other takes over within 2 s."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
import pytest

from agent.centre import leader as leader_mod
from agent.centre.leader import (
    TRY_EVERY_S,
    Change,
    Leadership,
    State,
    after,
    due,
    lock_url,
    read,
)
from agent.centre.store.base import open_database

# ---- the pure decisions ------------------------------------------------------------------


def test_a_follower_tries_every_second_and_the_leader_checks_every_tick() -> None:
    follower = State(False, next_try=10.0)
    assert not due(follower, 9.9) and due(follower, 10.0)
    assert due(State(True, next_try=1e9), 5.0)  # the leader: every tick, whatever next_try


def test_taking_and_losing_the_lead_is_told_once() -> None:
    state, change = after(State(), 1.0, holds=True)
    assert state.leading and change is Change.LEADS
    state, change = after(state, 2.0, holds=True)
    assert state.leading and change is Change.NONE
    state, change = after(state, 3.0, holds=False)
    assert not state.leading and change is Change.STEPPED_DOWN
    assert state.next_try == 3.0 + TRY_EVERY_S  # tries again, not at once
    state, change = after(state, 4.0, holds=False)
    assert change is Change.NONE


def test_keepalives_only_where_the_url_is_tcp() -> None:
    tcp = lock_url("postgresql://edge@db.example:5432/centre?connect_timeout=9")
    assert tcp == (
        "postgresql://edge@db.example:5432/centre?connect_timeout=9&keepalives=1"
        "&keepalives_idle=1&keepalives_interval=1&keepalives_count=3&tcp_user_timeout=3000"
    )  # the URL's own setting kept
    sock = lock_url("postgresql:///centre?host=/run/postgresql&user=edge")
    assert sock == "postgresql:///centre?host=/run/postgresql&user=edge&connect_timeout=3"


# ---- two processes' leaderships on one store ---------------------------------------------


def _wait(cond: object, timeout: float) -> float:
    """Seconds until cond() held; fails past timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if cond():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.02)
    pytest.fail(f"not within {timeout} s")


def _both(location: Path | str) -> tuple[Leadership, Leadership]:
    one, two = Leadership(location, "a"), Leadership(location, "b")
    one.poll()
    two.poll()
    return one, two


def test_exactly_one_leads_and_says_who(store_location: Path | str) -> None:
    one, two = _both(store_location)
    try:
        assert one.is_leader() and not two.is_leader()
        assert not two.poll()  # trying again changes nothing while the leader lives
        db = open_database(store_location)
        try:
            who = read(db, time.time())
        finally:
            db.close()
        assert who is not None and (who.instance, who.pid) == ("a", os.getpid())
    finally:
        one.stop()
        two.stop()


def test_the_other_leads_within_2_s_when_the_leader_stops(store_location: Path | str) -> None:
    one, two = _both(store_location)
    one.start(), two.start()
    try:
        assert one.is_leader()
        one.stop()  # its lock released: as a process that ends
        took = _wait(two.is_leader, 2.0)
        print(f"took over in {took:.2f} s")
        db = open_database(store_location)
        try:  # recorded by the new leader's thread right after it took the lead
            _wait(lambda: getattr(read(db, time.time()), "instance", None) == "b", 1.0)
        finally:
            db.close()
    finally:
        one.stop()
        two.stop()


def test_a_terminated_backend_steps_the_leader_down_and_the_other_leads(pg_url: str) -> None:
    one, two = _both(pg_url)
    one.start(), two.start()
    try:
        assert one.is_leader()
        pid = one._lock.backend_pid()  # type: ignore[attr-defined]
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        start = time.monotonic()
        _wait(lambda: not one.is_leader(), 2.0)  # a leader that lost the database stops
        _wait(two.is_leader, 2.0 - (time.monotonic() - start))
        print(f"took over in {time.monotonic() - start:.2f} s")
        assert not one.is_leader()  # and the old one, reconnected, follows
        time.sleep(TRY_EVERY_S * 1.5)
        assert not one.is_leader() and two.is_leader()
    finally:
        one.stop()
        two.stop()


def test_a_dead_leaders_record_names_nobody(store_location: Path | str) -> None:
    one, two = _both(store_location)
    try:
        db = open_database(store_location)
        try:
            assert read(db, time.time()) is not None
            assert read(db, time.time() + leader_mod.STALE_S + 1) is None
        finally:
            db.close()
    finally:
        one.stop()
        two.stop()


# ---- once-only work: overdue page commands ----------------------------------------------


class _Events(list[tuple[str, str]]):
    def __call__(self, kind: str, data: dict[str, object]) -> None:
        self.append((str(data["site_id"]), str(data["status"])))


def test_an_overdue_command_of_a_dead_process_is_marked_no_answer_once(
    store_location: Path | str,
) -> None:
    from agent.centre.sender import Reply  # noqa: PLC0415
    from agent.centre.settings import CentreSettings  # noqa: PLC0415
    from agent.centre.web.commands import ADOPT_AFTER_S, NO_ANSWER, Commander, Log  # noqa: PLC0415

    where = "db_url" if isinstance(store_location, str) else "db_path"
    settings = CentreSettings.model_validate({where: str(store_location)})
    log = Log(store_location)
    now = time.time()
    sent = {"at": now - 400, "command_id": "cmd-1", "operator": "op", "action": "identify",
            "status": "sent", "reason": "", "deadline": now - ADOPT_AFTER_S - 1}  # fmt: skip
    log.add(sent | {"site_id": "s1"})
    log.add(sent | {"site_id": "s2"})
    log.add(sent | {"site_id": "s2", "status": "succeeded"})  # s2 answered
    # The process that sent it is gone; two others run: one leads.
    leader_events, other_events = _Events(), _Events()
    leader = Commander(settings, leader_events, leads=lambda: True)
    other = Commander(settings, other_events, leads=lambda: False)
    also = Commander(settings, _Events(), leads=lambda: True)  # a second leader, as in a handover
    try:
        for c in (other, leader, also, leader, other):
            c._expire()

        def rows(status: str) -> list[str]:
            found = log.db.execute(
                "SELECT site_id FROM web_commands WHERE status = ?", (status,)
            ).fetchall()
            return [r[0] for r in found]

        assert rows(NO_ANSWER) == ["s1"]  # once, and not the site that answered
        assert leader_events == [("s1", NO_ANSWER)] and other_events == []
        # Every process hears every reply: a late answer is one row, and each page is told.
        reply = Reply("s1", "succeeded", "", {"ok": True}, "vc/s1/cmd/reply/x", None, 0.0)
        for c in (leader, other):
            c._reply({"command_id": "cmd-1"}, reply)
        assert rows("succeeded") == ["s2", "s1"]
        assert leader_events[-1] == other_events[-1] == ("s1", "succeeded")
    finally:
        for c in (leader, other, also):
            c.stop()
        log.close()


def test_no_instance_is_taken_for_dead_until_the_store_has_been_steady(tmp_path: Path) -> None:
    """After a database outage longer than link.STALE_S every row is stale, running instances'
    too: the leader waits until the store has taken its writes for STALE_S (time for them
    to write theirs again) before it takes any for dead and visits its session."""
    from agent.centre import link  # noqa: PLC0415
    from agent.centre.orphans import Adopter  # noqa: PLC0415
    from agent.centre.settings import CentreSettings  # noqa: PLC0415

    settings = CentreSettings.model_validate({"db_path": str(tmp_path / "centre.sqlite")})
    db = link.open_link(settings.store_location)
    link.record(db, "b", up=True, since=0.0, judged_at=None, now=time.time() - 60)  # stale
    db.close()
    tried: list[str] = []
    steady = [False]

    def try_hold(instance: str) -> None:
        tried.append(instance)  # None: it runs somewhere, nothing visited

    adopter = Adopter(settings, "a", lambda: True, try_hold, steady=lambda: steady[0])
    adopter.once()
    assert tried == []
    steady[0] = True
    adopter.once()
    assert tried == ["b"]


def test_the_store_is_steady_again_only_for_s_after_an_outage_ends() -> None:
    import logging  # noqa: PLC0415

    from agent.centre.store.base import Outage  # noqa: PLC0415

    outage = Outage(logging.getLogger("test"))
    now = time.time()
    assert outage.steady(15.0, now)  # none yet
    outage.failed("database away: %s", "x")
    assert not outage.steady(15.0, now + 100)
    outage.ended("back after %.0f s")
    assert not outage.steady(15.0, time.time() + 14)
    assert outage.steady(15.0, time.time() + 15.5)
