"""The rules' input read from a real fleet store filled with real payloads, and the schedule
the centre publishes kept in the store by the ingest through a real mosquitto."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.centre.alerts.facts import read_facts
from agent.centre.alerts.rules import RuleMemory, SessionFacts, evaluate
from agent.centre.alerts.settings import default_rules
from agent.centre.fleet import Condition
from agent.centre.ingest import Ingest
from agent.centre.store import PublishedSchedule, RosterEntry, Store
from agent.checks.live import LiveVerdict
from agent.checks.model import Status, Verdict
from agent.contract.payloads import ComponentState, OutboxHealth, StatePayload
from agent.contract.topics import topic_for
from agent.profiles.loader import load_profile
from agent.profiles.session import QueryResult
from agent.profiles.verdict import judge
from agent.schedule.model import SchedulePayload, Session
from agent.sim.fleet_site import Message, SimSite
from tests.fixtures.broker import wait_until
from tests.test_centre import centre_config, publisher  # noqa: F401 - a fixture
from tests.test_centre_live import live
from tests.test_dashboard import feed

NOW = datetime.now(UTC).replace(microsecond=0)
HOP = Session(session_id="hop-19", title="Họp giao ban", start=NOW - timedelta(minutes=20),
              end=NOW + timedelta(hours=2))  # fmt: skip
LATER = Session(session_id="hop-20", start=NOW + timedelta(days=1),
                end=NOW + timedelta(days=1, hours=1))  # fmt: skip
PROFILES = Path(__file__).resolve().parent.parent / "firmware_profiles"


def state(site: SimSite, pending: int = 0, **components: ComponentState) -> Message:
    """A state as an agent makes it, with components of our own (a probe's real reasons)."""
    payload = StatePayload(
        site_id=site.site_id, seq=site._next(), boot=site.boot, ts=datetime.now(UTC),
        cause="heartbeat", components=components,
        verdict=Verdict.DEGRADED if any(c.status is Status.WARN for c in components.values())
        else site.verdict(),
        last_check=datetime.now(UTC),
        outbox=OutboxHealth(pending=pending, pending_bytes=0, dropped_checks=0, refused=0),
    )  # fmt: skip
    return topic_for("vc", site.site_id, "state"), payload.to_bytes(), True


def old_codec() -> ComponentState:
    """The codec check's outcome on a Cisco below the profile's min_firmware (9.15)."""
    profile = load_profile(PROFILES, "cisco-roomos")
    out = judge(profile, [QueryResult("version", {"version": "9.14.3"})], "codec").outcome
    return ComponentState(status=out.status, reason=out.reason, reason_msg=out.reason_msg)


def schedule(store: Store, scope: str, *entries: Session, issued: datetime = NOW) -> None:
    payload = SchedulePayload(issued_at=issued, entries=list(entries))
    store.apply_batch([PublishedSchedule(scope, payload, time.time())])


def test_read_facts_from_real_reports(tmp_path: Path) -> None:
    store = Store(tmp_path / "centre.sqlite")
    store.import_roster(
        [RosterEntry("d1", "Huyện Một", "district", "p1", None),
         RosterEntry("c-never", "Xã Chưa", "commune", "d1", 30)],
        time.time(),
    )  # fmt: skip
    p1 = SimSite("p1", tier="province", name="Tỉnh")
    d1 = SimSite("d1", tier="district", parent="p1")
    c1 = SimSite("c1", parent="d1", name="Xã Một", expected=20)
    c2 = SimSite("c2", parent="d1", expected=20)
    c2.statuses["camera"] = Status.FAIL
    c3 = SimSite("c3", parent="d1")
    for s in (p1, d1, c1, c2, c3):
        feed(store, *s.birth())
    schedule(store, "", HOP, LATER)
    schedule(store, "c3", HOP.model_copy(update={"cancelled": True}))  # c3 is not in it
    feed(
        store,
        live(c1, LiveVerdict.POOR, NOW - timedelta(minutes=3)),
        c1.attendance("hop-19", 12),
        c1.attendance("hop-19", 7),  # the newest counts
        c2.attendance("other", 30),  # another session's: not this one's
        state(d1, pending=250, codec=old_codec()),
        c1.availability("offline", "connection lost (will)"),
    )
    now = time.time()
    facts = {f.site_id: f for f in read_facts(store, now)}
    assert set(facts) == {"p1", "d1", "c1", "c2", "c3", "c-never"}
    assert {s: f.district for s, f in facts.items()} == {
        "p1": "", "d1": "d1", "c1": "d1", "c2": "d1", "c3": "d1", "c-never": "d1"
    }  # fmt: skip
    c1f = facts["c1"]
    assert (c1f.name, c1f.condition, c1f.attendance, c1f.summoned) == (
        "Xã Một", Condition.OFFLINE, 7, 20
    )  # fmt: skip
    assert c1f.since is not None and now - 10 < c1f.since <= now
    assert c1f.session == SessionFacts("hop-19", HOP.start.timestamp(), HOP.end.timestamp(),
                                       "Họp giao ban")  # fmt: skip
    assert c1f.live_verdict == "poor" and c1f.live_session is not None
    assert c1f.live_since == (NOW - timedelta(minutes=3)).timestamp()
    assert (facts["c2"].condition, facts["c2"].failing) == (Condition.FAULT, ("camera",))
    assert facts["c2"].attendance is None
    assert facts["c3"].session is not None and facts["c3"].session.session_id == "hop-20"
    assert facts["c-never"].condition is Condition.NEVER_SEEN
    assert (facts["c-never"].name, facts["c-never"].summoned) == ("Xã Chưa", 30)
    d1f = facts["d1"]
    assert (d1f.name, d1f.pending, d1f.condition) == ("Huyện Một", 250, Condition.DEGRADED)
    assert [(f.component, f.version, f.minimum) for f in d1f.firmware] == [
        ("codec", "9.14.3", "9.15")
    ]
    assert facts["c2"].firmware == () and facts["c2"].pending == 0
    # the sessions given by the caller replace the stored every-site schedule
    given = {f.site_id: f for f in read_facts(store, now, sessions=[LATER])}
    assert given["c1"].session is not None and given["c1"].session.session_id == "hop-20"
    store.close()

    # and the rules over them, read from the file by path as the engine does, ten minutes
    # apart (the outbox's hold: 600 s from the first turn that saw it)
    rules, path = default_rules(), tmp_path / "centre.sqlite"
    _, memory = evaluate(read_facts(path, now), rules, RuleMemory(), now)
    alerts, _ = evaluate(read_facts(path, now + 600), rules, memory, now + 600)
    fired = {a.key: a for a in alerts}
    assert sorted(fired) == [
        # 7 of 20 at c1; no count at all from the others summoned (c3 is not in hop-19)
        "attendance:c-never", "attendance:c1", "attendance:c2", "attendance:d1",
        "attendance:p1",
        "check-t15:c2", "down-t15:c-never", "down-t15:c1", "firmware:d1", "outbox:d1",
    ]  # fmt: skip
    assert fired["outbox:d1"].fired_at == now + 600


def test_the_newest_issued_schedule_wins_whatever_order_it_comes_in(tmp_path: Path) -> None:
    store = Store(tmp_path / "centre.sqlite")
    schedule(store, "", HOP, issued=NOW)
    schedule(store, "", LATER, issued=NOW - timedelta(minutes=1))  # an older retained copy
    assert [e.session_id for e in store.schedules()[""].entries] == ["hop-19"]
    schedule(store, "", LATER, issued=NOW + timedelta(minutes=1))
    assert [e.session_id for e in store.schedules()[""].entries] == ["hop-20"]
    store.close()


def test_the_ingest_keeps_the_schedule_the_centre_publishes(
    broker: Any,
    tmp_path: Path,
    publisher: Callable[..., None],  # noqa: F811
) -> None:
    from agent.centre.settings import CentreSettings  # noqa: PLC0415

    def body(*entries: Session, issued: datetime = NOW) -> bytes:
        return SchedulePayload(issued_at=issued, entries=list(entries)).model_dump_json().encode()

    # retained before the centre starts: read at start
    publisher(("vc/schedule", body(HOP), True))
    settings = CentreSettings.model_validate(centre_config(broker, tmp_path))
    ingest = Ingest(settings).start()
    store = Store(settings.db_path)
    try:
        assert wait_until(lambda: "" in store.schedules(), 10, 0.1)
        assert [e.session_id for e in store.schedules()[""].entries] == ["hop-19"]
        # published while it runs (a new schedule, one site's, a broken one): kept live
        rejected = ingest.rejected
        publisher(("vc/schedule", b"{not json", True))
        assert wait_until(lambda: ingest.rejected == rejected + 1, 10, 0.1)
        later = NOW + timedelta(seconds=5)
        publisher(("vc/schedule", body(HOP, LATER, issued=later), True),
                  ("vc/c9/schedule", body(LATER), True))  # fmt: skip
        assert wait_until(lambda: len(store.schedules().get("", SchedulePayload()).entries)
                          == 2 and "c9" in store.schedules(), 10, 0.1)  # fmt: skip
        # a schedule is not a site: no row, no condition for it
        assert not store.known({"", "schedule", "c9"})
    finally:
        store.close()
        ingest.stop()
    db = sqlite3.connect(settings.db_path)
    assert db.execute("SELECT count(*) FROM sites").fetchone() == (0,)
    db.close()


def test_only_the_centres_schedule_topics_are_taken_for_schedules() -> None:
    from agent.centre.ingest import parse_schedule  # noqa: PLC0415
    from agent.transport.listener import Received  # noqa: PLC0415

    body = SchedulePayload(entries=[HOP]).model_dump_json().encode()

    def scope(topic: str) -> str | None:
        got = parse_schedule("vc", Received(topic, body, True), 0.0)
        return None if got is None else got.scope

    assert scope("vc/schedule") == ""
    assert scope("vc/c1/schedule") == "c1"
    # an empty site id would pass for every site's schedule; deeper topics are not schedules
    for topic in ("vc//schedule", "vc/a/b/schedule", "other/schedule", "vc/c1/state"):
        assert scope(topic) is None, topic


def test_a_sites_odd_firmware_words_are_not_taken_for_a_version() -> None:
    from agent.centre.alerts.facts import firmware_of  # noqa: PLC0415
    from agent.centre.fleet import ComponentRow  # noqa: PLC0415
    from agent.messages import message  # noqa: PLC0415

    # what a site sends is untrusted: a message where a version should be, a missing minimum
    odd = message("profile.verdict.below", label="firmware", value=message("fleet.never"),
                  minimum="9.15")  # fmt: skip
    short = message("profile.verdict.below", label="firmware", value="1.0")
    fine = message("profile.verdict.below", label="firmware", value="9.1", minimum="9.15")
    rows = {n: ComponentRow("warn", "", reason_msg=m)
            for n, m in (("codec", odd), ("ptz", short), ("display", fine))}  # fmt: skip
    assert [(f.component, f.version, f.minimum) for f in firmware_of(rows)] == [
        ("display", "9.1", "9.15")
    ]
