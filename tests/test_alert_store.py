"""The alerts', incidents' and silences' tables on a real SQLite file: an alert raised twice
is one incident, acknowledgement keeps the first, silences cover what they say for the
window they say, retention keeps what is still open, and the time-to-acknowledge and
time-to-repair figures come out of known durations."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.centre.alerts import store as alert_store
from agent.centre.alerts.model import Alert, AlertKind, AlertState, Severity
from agent.centre.alerts.store import AlertStore, GroupBy, Scope
from agent.centre.ingest import Ingest
from agent.centre.settings import CentreSettings
from agent.errors import ConfigError
from agent.messages import message, render
from agent.sim.broker import Mosquitto
from tests.fixtures.broker import wait_until

T0 = 1_800_000_000.0


def alert(
    site: str = "hb-ls-qt",
    *,
    rule: str = "down-t15",
    district: str = "hb-ls",
    tier: str = "commune",
    fired_at: float = T0,
    severity: Severity = Severity.WARNING,
) -> Alert:
    return Alert(
        key=f"{rule}:{site}",
        rule=rule,
        kind=AlertKind.SITE_DOWN,
        severity=severity,
        site_id=site,
        district=district,
        tier=tier,
        since=fired_at - 120,
        fired_at=fired_at,
        reason=message("fleet.problem.offline_nowhy", last_seen="09:58"),
    )


@pytest.fixture
def store(store_location: Path | str) -> AlertStore:
    s = AlertStore(store_location)  # an SQLite file, then a PostgreSQL database
    yield s  # type: ignore[misc]
    s.close()


def test_raising_an_alert_already_firing_is_the_same_incident(store: AlertStore) -> None:
    first = store.raised(alert())
    again = store.raised(alert(fired_at=T0 + 2))  # the engine's next evaluation, a restart
    assert again.id == first.id and again.opened_at == T0
    assert [i.id for i in store.incidents()] == [first.id]
    (firing,) = store.firing()
    assert firing.key == "down-t15:hb-ls-qt" and firing.state is AlertState.FIRING
    # The reason survives the database as a message, rendered in the reader's language.
    assert render(firing.reason, "vi").startswith("mất liên lạc")


def test_resolved_closes_the_incident_and_a_new_firing_opens_another(store: AlertStore) -> None:
    first = store.raised(alert())
    closed = store.resolved("down-t15:hb-ls-qt", T0 + 300)
    assert closed is not None and closed.id == first.id
    assert closed.closed_at == T0 + 300 and closed.time_to_repair_s == 300
    assert store.firing() == []
    last = store.alert("down-t15:hb-ls-qt")  # the last resolved one is kept
    assert last is not None and last.state is AlertState.RESOLVED and last.resolved_at == T0 + 300
    assert store.resolved("down-t15:hb-ls-qt", T0 + 400) is None  # nothing left open
    second = store.raised(alert(fired_at=T0 + 1000))
    assert second.id != first.id and second.closed_at is None
    assert [i.id for i in store.incidents()] == [second.id, first.id]


def test_ack_by_key_or_number_and_a_second_ack_keeps_the_first(store: AlertStore) -> None:
    incident = store.raised(alert())
    acked = store.ack("down-t15:hb-ls-qt", "lan", T0 + 60)
    assert acked is not None and acked.acked_by == "lan" and acked.time_to_ack_s == 60
    again = store.ack(str(incident.id), "minh", T0 + 90)
    assert again is not None and (again.acked_by, again.acked_at) == ("lan", T0 + 60)
    assert store.firing()[0].acked_by == "lan"
    assert store.ack("#" + str(incident.id), "minh", T0 + 95) == again
    assert store.ack("999", "lan", T0) is None
    assert store.ack("down-t15:nowhere", "lan", T0) is None


def test_ack_by_key_takes_the_open_incident_not_an_older_closed_one(store: AlertStore) -> None:
    store.raised(alert())
    store.resolved("down-t15:hb-ls-qt", T0 + 10)
    current = store.raised(alert(fired_at=T0 + 100))
    acked = store.ack("down-t15:hb-ls-qt", "lan", T0 + 130)
    assert acked is not None and acked.id == current.id and acked.time_to_ack_s == 30


def test_a_closed_incident_is_not_acknowledged_afterwards(store: AlertStore) -> None:
    incident = store.raised(alert())
    store.resolved("down-t15:hb-ls-qt", T0 + 60)
    after = store.ack(str(incident.id), "lan", T0 + 120)
    assert after is not None and after.closed_at == T0 + 60
    assert (after.acked_by, after.acked_at) == (None, None)
    assert store.stats(GroupBy.SITE, T0)[0].to_ack.count == 0


def test_names_and_reasons_typed_by_people_are_one_bounded_line(store: AlertStore) -> None:
    store.raised(alert())
    acked = store.ack("down-t15:hb-ls-qt", "  Lan\x1b[31m\n ", T0 + 1)
    assert acked is not None and acked.acked_by == "Lan [31m"
    silence = store.add_silence(
        scope=Scope.SITE, value="hb-ls-qt", starts_at=T0, ends_at=T0 + 60, who="lan",
        why="cắt điện\r\nrow two\t" + "x" * 600, at=T0,
    )  # fmt: skip
    assert silence.reason.startswith("cắt điện row two x") and len(silence.reason) == 500
    assert store.silences(T0)[0].reason == silence.reason
    for who, why in (("lan", " \n\t "), ("\x00", "works")):
        with pytest.raises(ConfigError) as caught:
            store.add_silence(
                scope=Scope.ALL, value="", starts_at=T0, ends_at=T0 + 60, who=who, why=why, at=T0
            )
        assert "--" in caught.value.hint  # says which option to give
    with pytest.raises(ConfigError):
        store.ack("down-t15:hb-ls-qt", " ", T0)


def test_silences_cover_their_site_district_tier_or_everything(store: AlertStore) -> None:
    qt = alert("hb-ls-qt")
    other = alert("hb-mc-pl", district="hb-mc")
    district = alert("hb-ls", district="hb-ls", tier="district")

    def add(scope: Scope, value: str) -> int:
        s = store.add_silence(
            scope=scope, value=value, starts_at=T0, ends_at=T0 + 3600, who="lan",
            why="power works", at=T0,
        )  # fmt: skip
        return s.id

    def silenced(at: float) -> set[str]:
        return {a.key for a in (qt, other, district) if store.silenced(a, at)}

    cases = [
        (Scope.SITE, "hb-ls-qt", {qt.key}),
        (Scope.DISTRICT, "hb-mc", {other.key}),
        (Scope.TIER, "district", {district.key}),
        (Scope.ALL, "", {qt.key, other.key, district.key}),
    ]
    for n, (scope, value, covered) in enumerate(cases):
        silence_id = add(scope, value)
        assert silenced(T0 + n) == covered, scope
        assert store.end_silence(silence_id, T0 + n)
        assert silenced(T0 + n) == set()


def test_a_maintenance_window_silences_only_inside_it(store: AlertStore) -> None:
    window = store.add_silence(
        scope=Scope.DISTRICT, value="hb-ls", starts_at=T0 + 3600, ends_at=T0 + 7200,
        who="lan", why="fibre works", at=T0,
    )  # fmt: skip
    a = alert()
    assert not store.silenced(a, T0)
    assert not store.silenced(a, T0 + 3599)
    assert store.silenced(a, T0 + 3600)
    assert store.silenced(a, T0 + 7199)
    assert not store.silenced(a, T0 + 7200)
    assert [s.id for s in store.silences(T0)] == [window.id]  # to come: listed
    assert store.silences(T0 + 7200) == []  # over: not listed
    # Ended before it starts: it never starts.
    assert store.end_silence(window.id, T0 + 10)
    assert not store.silenced(a, T0 + 3600)
    assert not store.end_silence(window.id, T0 + 20)


def test_a_silence_without_a_window_or_a_target_is_refused(store: AlertStore) -> None:
    def add(**kw: object) -> None:
        args: dict[str, object] = {
            "scope": Scope.SITE, "value": "hb-ls-qt", "starts_at": T0, "ends_at": T0 + 60,
            "who": "lan", "why": "-", "at": T0,
        }  # fmt: skip
        store.add_silence(**(args | kw))  # type: ignore[arg-type]

    for bad in ({"ends_at": T0}, {"starts_at": T0 - 100, "ends_at": T0 - 10},
                {"value": ""}, {"scope": Scope.ALL}):  # fmt: skip
        with pytest.raises(ConfigError) as caught:
            add(**bad)
        assert caught.value.hint
    assert store.silences(T0) == []


def test_prune_forgets_old_closed_incidents_and_keeps_open_ones(
    store_location: Path | str,
) -> None:
    path = store_location
    store = AlertStore(path)
    try:
        store.raised(alert("old-closed"))
        store.resolved("down-t15:old-closed", T0 + 60)
        store.raised(alert("old-open"))
        store.raised(alert("new", fired_at=T0 + 86400))
        store.resolved("down-t15:new", T0 + 86400 + 60)
        store.add_silence(
            scope=Scope.ALL, value="", starts_at=T0, ends_at=T0 + 10, who="lan", why="-", at=T0
        )
    finally:
        store.close()
    assert alert_store.prune(path, T0 + 3600) == 1  # what the centre's housekeeping calls
    store = AlertStore(path)
    try:
        assert sorted(i.site_id for i in store.incidents()) == ["new", "old-open"]
        assert store.alert("down-t15:old-closed") is None
        assert store.alert("down-t15:new") is not None
        assert store.db.execute("SELECT COUNT(*) FROM silences").fetchone()[0] == 0
    finally:
        store.close()


def test_incidents_since_a_moment_are_those_alive_since_then(store: AlertStore) -> None:
    store.raised(alert("old", fired_at=T0 - 9000))
    store.resolved("down-t15:old", T0 - 8000)  # over before: left out
    store.raised(alert("night", fired_at=T0 - 3600))
    store.resolved("down-t15:night", T0 + 600)  # repaired during the session: in
    store.raised(alert("open", fired_at=T0 - 7200))  # still open: in
    store.raised(alert("new", fired_at=T0 + 60))  # opened since: in
    got = {i.site_id for i in store.incidents(since=T0)}
    assert got == {"night", "open", "new"}


def test_stats_per_district_site_and_tier_from_known_durations(store: AlertStore) -> None:
    # District hb-ls: ten incidents, acknowledged after 1..10 min, repaired after 10..100 min
    # (nearest-rank p90 of ten values: the ninth); one more still open and unacknowledged.
    for n in range(1, 11):
        opened = T0 + n * 10_000
        a = alert(f"hb-ls-{n:02d}", fired_at=opened)
        store.raised(a)
        store.ack(a.key, "lan", opened + n * 60)
        store.resolved(a.key, opened + n * 600)
    store.raised(alert("hb-ls-open", fired_at=T0 + 200_000))
    # District hb-mc: one incident, never acknowledged, repaired after 90 s.
    store.raised(alert("hb-mc-pl", district="hb-mc", fired_at=T0 + 5))
    store.resolved("down-t15:hb-mc-pl", T0 + 95)
    # Before the period: not counted.
    store.raised(alert("hb-ls-old", fired_at=T0 - 10))

    ls, mc = store.stats(GroupBy.DISTRICT, since=T0)
    assert (ls.group, ls.incidents, ls.open) == ("hb-ls", 11, 1)
    assert (ls.to_ack.count, ls.to_ack.median_s, ls.to_ack.p90_s) == (10, 330.0, 540.0)
    assert (ls.to_repair.count, ls.to_repair.median_s, ls.to_repair.p90_s) == (10, 3300.0, 5400.0)
    assert (mc.group, mc.incidents, mc.open) == ("hb-mc", 1, 0)
    assert (mc.to_ack.count, mc.to_ack.median_s, mc.to_ack.p90_s) == (0, None, None)
    assert (mc.to_repair.median_s, mc.to_repair.p90_s) == (90.0, 90.0)

    by_site = {g.group: g for g in store.stats(GroupBy.SITE, since=T0)}
    assert len(by_site) == 12 and by_site["hb-ls-03"].to_repair.median_s == 1800.0
    (tier,) = store.stats(GroupBy.TIER, since=T0)
    assert (tier.group, tier.incidents, tier.open) == ("commune", 12, 1)


def test_two_connections_raising_at_once_open_one_incident(store_location: Path | str) -> None:
    # The engine and a second centre process on one store: BEGIN IMMEDIATE (PostgreSQL: the
    # write lock) serialises them.
    path = store_location
    AlertStore(path).close()
    errors: list[BaseException] = []

    def raise_many() -> None:
        s = AlertStore(path)
        try:
            for _ in range(20):
                s.raised(alert())
        except BaseException as exc:  # reported below, in the test thread
            errors.append(exc)
        finally:
            s.close()

    threads = [threading.Thread(target=raise_many) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    s = AlertStore(path)
    try:
        assert len(s.incidents()) == 1
    finally:
        s.close()


def test_an_unreadable_stored_reason_still_shows(tmp_path: Path) -> None:
    path = tmp_path / "centre.sqlite"
    s = AlertStore(path)
    try:
        incident = s.raised(alert())
        s.db.execute("UPDATE incidents SET reason = '{\"id\": 5}'")
        got = s.incident(incident.id)
        assert got is not None and got.reason.id == "incidents.unreadable_reason"
        assert render(got.reason, "vi") == "(không đọc được nguyên nhân)"
    finally:
        s.close()


def test_the_centres_housekeeping_prunes_incidents_with_the_fleets_history(
    broker: Mosquitto, tmp_path: Path
) -> None:
    # A real centre against a real broker: its writer prunes when it starts, then hourly.
    now = time.time()
    path = tmp_path / "centre.sqlite"
    store = AlertStore(path)
    try:
        store.raised(alert("old", fired_at=now - 100 * 86400))
        store.resolved("down-t15:old", now - 100 * 86400 + 60)  # closed 100 days ago
        store.raised(alert("recent", fired_at=now - 86400))
        store.resolved("down-t15:recent", now - 86400 + 60)
    finally:
        store.close()
    settings = CentreSettings.model_validate(
        {"broker": broker.broker_settings("centre"), "db_path": str(path), "history_days": 90}
    )
    ingest = Ingest(settings).start()
    try:
        store = AlertStore(path)
        try:
            assert wait_until(lambda: len(store.incidents()) == 1, 10)
            assert [i.site_id for i in store.incidents()] == ["recent"]
        finally:
            store.close()
    finally:
        ingest.stop()
