"""The alert rules, pure: tables of one site's facts over time, evaluated turn by turn as the
engine does, with the memory carried from each turn to the next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from agent.centre.alerts.model import Alert, AlertKind, Rule, Severity
from agent.centre.alerts.rules import (
    FirmwareFact,
    RegionFacts,
    RuleMemory,
    SessionFacts,
    SiteFacts,
    evaluate,
)
from agent.centre.fleet import Condition
from agent.messages import render

T0 = 1_800_000_000.0
SESSION = SessionFacts("s-1", start=T0 + 3600, end=T0 + 7200, title="Họp tỉnh")
BASE = SiteFacts(
    site_id="c1", name="Xã Một", tier="commune", district="d1", condition=Condition.READY,
    since=T0 - 86400, session=SESSION, summoned=20, attendance=18, pending=0,
)  # fmt: skip


def run(rule: Rule, timeline: Sequence[tuple[float, SiteFacts]]) -> list[tuple[float, list[Alert]]]:
    """Evaluate at each (time, facts) in turn; what fired at each."""
    memory = RuleMemory()
    out = []
    for now, facts in timeline:
        alerts, memory = evaluate([facts], [rule], memory, now)
        out.append((now, alerts))
    return out


def fired(result: list[tuple[float, list[Alert]]]) -> list[float]:
    return [now for now, alerts in result if alerts]


# ---- hold times: flap, hold, recovery --------------------------------------------------

POOR = Rule(id="poor-media", kind=AlertKind.MEDIA_POOR, for_s=120)
RUNNING = T0 + 3600


def poor(since: float) -> SiteFacts:
    return replace(BASE, live_verdict="poor", live_since=since, live_session=SESSION)


def fine() -> SiteFacts:
    return replace(BASE, live_verdict="in_call", live_since=RUNNING, live_session=SESSION)


def test_a_flap_shorter_than_the_hold_never_fires() -> None:
    t = RUNNING + 600
    timeline = [
        (t, poor(t)), (t + 60, poor(t)), (t + 100, fine()),  # 100 s: under the hold
        (t + 110, poor(t + 110)), (t + 200, poor(t + 110)), (t + 220, fine()),  # 110 s
    ]  # fmt: skip
    result = run(POOR, timeline)
    assert fired(result) == []


def test_a_condition_held_past_the_hold_fires_with_fired_at_since_plus_hold() -> None:
    t = RUNNING + 600
    result = run(POOR, [(t + 2 * i, poor(t)) for i in range(0, 100)])
    assert fired(result)[0] == t + 120
    alerts = [a for _, batch in result for a in batch]
    # one alert, the same at every turn: one key, one since, one fired_at
    assert {(a.key, a.since, a.fired_at) for a in alerts} == {("poor-media:c1", t, t + 120)}
    a = alerts[0]
    assert (a.kind, a.severity, a.site_id, a.district, a.tier, a.session_id) == (
        AlertKind.MEDIA_POOR, Severity.WARNING, "c1", "d1", "commune", "s-1"
    )  # fmt: skip
    assert render(a.reason, "en") == "Xã Một: poor media during session Họp tỉnh"
    assert render(a.reason, "vi") == "Xã Một: chất lượng kém trong phiên họp Họp tỉnh"


def test_recovery_resets_the_hold() -> None:
    t = RUNNING + 600
    timeline = [
        (t, poor(t)), (t + 130, poor(t)), (t + 140, fine()),
        (t + 150, poor(t + 150)), (t + 200, poor(t + 150)), (t + 280, poor(t + 150)),
    ]  # fmt: skip
    result = run(POOR, timeline)
    assert fired(result) == [t + 130, t + 280]
    assert result[-1][1][0].since == t + 150 and result[-1][1][0].fired_at == t + 270


def test_the_hold_counts_from_when_the_store_says_it_began_so_a_restart_fires_on_time() -> None:
    t = RUNNING + 600
    # first seen by this evaluator long after it began (a centre restarted mid-hold)
    alerts, memory = evaluate([poor(t)], [POOR], RuleMemory(), t + 121)
    assert [(a.since, a.fired_at) for a in alerts] == [(t, t + 120)]
    assert dict(memory.started) == {"poor-media:c1": t}


def test_without_a_recorded_start_the_hold_counts_from_the_first_turn_that_saw_it() -> None:
    rule = Rule(id="outbox", kind=AlertKind.OUTBOX_BACKLOG, pending_over=100, for_s=600)
    backed = replace(BASE, pending=250)
    result = run(rule, [(T0, backed), (T0 + 300, backed), (T0 + 599, backed),
                        (T0 + 600, backed), (T0 + 700, replace(BASE, pending=100)),
                        (T0 + 800, backed), (T0 + 1300, backed)])  # fmt: skip
    assert fired(result) == [T0 + 600]
    a = result[3][1][0]
    assert (a.since, a.fired_at) == (T0, T0 + 600)
    assert render(a.reason, "en") == "Xã Một: 250 reports waiting in the outbox (more than 100)"


# ---- each kind --------------------------------------------------------------------------

CHECK = Rule(id="check-t15", kind=AlertKind.CHECK_FAILED, lead_minutes=15, for_s=0)
DOWN = Rule(id="down-t15", kind=AlertKind.SITE_DOWN, lead_minutes=15, for_s=120)
START = SESSION.start


def faulty(since: float) -> SiteFacts:
    return replace(BASE, condition=Condition.FAULT, since=since, failing=("camera", "microphone"))


@pytest.mark.parametrize(
    ("now", "fires"),
    [
        (START - 15 * 60 - 1, False),  # before the lead time
        (START - 15 * 60, True),  # from the lead time
        (START + 600, True),  # during the session
        (SESSION.end, False),  # over
    ],
)
def test_check_failed_from_the_lead_time_to_the_end(now: float, fires: bool) -> None:
    alerts, _ = evaluate([faulty(T0 - 86400)], [CHECK], RuleMemory(), now)
    assert bool(alerts) is fires
    if fires:
        # faulty for a day: the condition as the rule sees it began with the window
        assert alerts[0].since == START - 900 and alerts[0].fired_at == START - 900
        assert render(alerts[0].reason, "en") == (
            "Xã Một: not ready 15 min before session Họp tỉnh: camera, microphone failing"
        )


def test_check_failed_needs_a_fault_and_a_session() -> None:
    now = START - 300
    for facts in (replace(BASE, condition=Condition.DEGRADED),
                  replace(faulty(T0), session=None),
                  replace(faulty(T0), condition=Condition.OFFLINE)):  # fmt: skip
        assert evaluate([facts], [CHECK], RuleMemory(), now)[0] == []


@pytest.mark.parametrize("cond", [Condition.OFFLINE, Condition.SILENT, Condition.NEVER_SEEN])
def test_site_down_in_the_window_after_its_hold(cond: Condition) -> None:
    went = START - 200
    facts = replace(BASE, condition=cond, since=went)
    result = run(DOWN, [(went, facts), (went + 119, facts), (went + 120, facts)])
    assert fired(result) == [went + 120]
    reason = result[-1][1][0].reason
    assert render(reason, "vi").startswith("Xã Một: điểm cầu ")
    # out of any session's window: nothing, however long it lasts
    far = replace(facts, since=T0 - 86400)
    assert evaluate([far], [DOWN], RuleMemory(), START - 3600)[0] == []


def test_site_down_says_offline_in_the_readers_language() -> None:
    facts = replace(BASE, condition=Condition.OFFLINE, since=START - 3600)
    (alert,), _ = evaluate([facts], [DOWN], RuleMemory(), START)
    assert render(alert.reason, "en") == "Xã Một: offline before or during session Họp tỉnh"
    assert "mất liên lạc" in render(alert.reason, "vi")
    assert alert.since == START - 900 and alert.fired_at == START - 900 + 120


def test_call_dropped_only_while_its_session_runs_and_the_site_is_heard() -> None:
    rule = Rule(id="dropped", kind=AlertKind.CALL_DROPPED, severity=Severity.CRITICAL, for_s=30)
    dropped = replace(BASE, live_verdict="dropped", live_since=START + 60, live_session=SESSION)
    result = run(rule, [(START + 60, dropped), (START + 90, dropped)])
    assert fired(result) == [START + 90]
    assert result[-1][1][0].severity is Severity.CRITICAL
    assert render(result[-1][1][0].reason, "vi") == (
        "Xã Một: rớt cuộc gọi trong phiên họp Họp tỉnh"
    )
    # the session is over, or the site went offline: its last live word is not news
    assert evaluate([dropped], [rule], RuleMemory(), SESSION.end + 1)[0] == []
    gone = replace(dropped, condition=Condition.OFFLINE)
    assert evaluate([gone], [rule], RuleMemory(), START + 600)[0] == []
    # a dropped state from before the session began holds from the start only
    early = replace(dropped, live_since=START - 600)
    (a,), _ = evaluate([early], [rule], RuleMemory(), START + 30)
    assert a.since == START


LOW = Rule(id="attendance", kind=AlertKind.LOW_ATTENDANCE, share=0.5, after_minutes=15, for_s=0)


@pytest.mark.parametrize(
    ("count", "summoned", "now", "fires"),
    [
        (9, 20, START + 900, True),  # 9 < 10
        (10, 20, START + 900, False),  # exactly half is enough
        (9, 20, START + 899, False),  # not judged before start + after_minutes
        (None, 20, START + 900, True),  # no count from it: 0
        (None, None, START + 900, False),  # nobody summoned: nothing to judge
        (0, 0, START + 900, False),
        (2, 20, SESSION.end, False),  # the session is over
    ],
)
def test_low_attendance(count: int | None, summoned: int | None, now: float, fires: bool) -> None:
    facts = replace(BASE, attendance=count, summoned=summoned)
    alerts, _ = evaluate([facts], [LOW], RuleMemory(), now)
    assert bool(alerts) is fires
    if fires:
        assert alerts[0].since == START + 900
        assert render(alerts[0].reason, "en") == (
            f"Xã Một: attendance {count or 0} of 20 summoned in session Họp tỉnh (under 50%)"
        )


def test_outbox_backlog_not_for_a_site_unheard() -> None:
    rule = Rule(id="outbox", kind=AlertKind.OUTBOX_BACKLOG, pending_over=10, for_s=0)
    assert evaluate([replace(BASE, pending=11)], [rule], RuleMemory(), T0)[0] != []
    silent = replace(BASE, pending=11, condition=Condition.SILENT)
    assert evaluate([silent], [rule], RuleMemory(), T0)[0] == []


def test_old_firmware_lists_each_device() -> None:
    rule = Rule(id="firmware", kind=AlertKind.OLD_FIRMWARE, for_s=0)
    facts = replace(BASE, firmware=(FirmwareFact("codec", "9.14.3", "9.15"),
                                    FirmwareFact("ptz", "1.0", "2.1")))  # fmt: skip
    (a,), _ = evaluate([facts], [rule], RuleMemory(), T0)
    assert render(a.reason, "en") == (
        "Xã Một: firmware below the profile's minimum: codec 9.14.3 (minimum 9.15); "
        "ptz 1.0 (minimum 2.1)"
    )
    assert evaluate([BASE], [rule], RuleMemory(), T0)[0] == []


def test_every_rule_over_many_sites_one_alert_per_rule_and_site() -> None:
    from agent.centre.alerts.settings import default_rules  # noqa: PLC0415

    down = [replace(BASE, site_id=f"c{i}", condition=Condition.OFFLINE, since=T0)
            for i in range(40)]  # fmt: skip
    ok = [replace(BASE, site_id=f"ok{i}") for i in range(5)]
    alerts, memory = evaluate(down + ok, default_rules(), RuleMemory(), START - 600)
    assert sorted(a.key for a in alerts) == sorted(f"down-t15:c{i}" for i in range(40))
    assert len(memory.started) == 40
    # TEST is sent by hand: a rule of that kind watches nothing
    test_rule = Rule(id="t", kind=AlertKind.TEST, for_s=0)
    assert evaluate(down, [test_rule], RuleMemory(), START)[0] == []


# ---- region_down: one alert per cut region, none per site behind it -----------------------

REGION = Rule(id="region-down", kind=AlertKind.REGION_DOWN, severity=Severity.CRITICAL, for_s=60)


def regions_over(
    rule: Rule, timeline: Sequence[tuple[float, list[RegionFacts]]], sites: list[SiteFacts]
) -> list[tuple[float, list[Alert]]]:
    memory = RuleMemory()
    out = []
    for now, regions in timeline:
        alerts, memory = evaluate(sites, [rule], memory, now, regions)
        out.append((now, alerts))
    return out


def test_region_down_fires_once_per_region_past_its_hold_at_any_hour() -> None:
    cut = RegionFacts("r001", up=False, since=T0, sites=212)
    other = RegionFacts("r002", up=True, since=T0 - 3600, sites=150)
    # no session anywhere: a cut region is blind at any hour
    sites = [replace(BASE, site_id=f"c{i}", session=None, condition=Condition.UNREACHABLE,
                     region_down=True) for i in range(212)]  # fmt: skip
    result = regions_over(REGION, [(T0 + 10, [cut, other]), (T0 + 59, [cut, other]),
                                   (T0 + 60, [cut, other]), (T0 + 300, [cut, other])],
                          sites)  # fmt: skip
    assert fired(result) == [T0 + 60, T0 + 300]
    (a,) = result[2][1]
    assert (a.key, a.site_id, a.site_name, a.district, a.tier) == (
        "region-down:region:r001",
        "region:r001",
        "r001",
        "",
        "region",
    )
    assert (a.severity, a.since, a.fired_at, a.session_id) == (Severity.CRITICAL, T0, T0 + 60,
                                                               None)  # fmt: skip
    assert render(a.reason, "en") == (
        "regional broker r001 cut off from the centre: 212 sites of the roster unreachable; "
        "check the regional broker's host and its bridge to the central broker"
    )
    vi = render(a.reason, "vi")
    assert vi.startswith("máy chủ MQTT vùng r001 mất kết nối với trung tâm: 212")
    assert result[3][1] == result[2][1]  # the same alert at every turn while it holds


def test_a_bridge_flap_shorter_than_the_hold_never_fires_and_a_return_ends_it() -> None:
    down, up = RegionFacts("r001", False, T0, 3), RegionFacts("r001", True, T0 + 30, 3)
    later = RegionFacts("r001", False, T0 + 100, 3)
    result = regions_over(REGION, [(T0 + 20, [down]), (T0 + 30, [up]), (T0 + 100, [later]),
                                   (T0 + 159, [later]), (T0 + 160, [later]),
                                   (T0 + 170, [RegionFacts("r001", True, T0 + 170, 3)])],
                          [])  # fmt: skip
    assert fired(result) == [T0 + 160]  # held afresh from the second cut


def test_the_sites_behind_a_cut_region_raise_no_site_alert_of_their_own() -> None:
    down = Rule(id="down-t15", kind=AlertKind.SITE_DOWN, lead_minutes=15, for_s=0)
    dropped = Rule(id="dropped", kind=AlertKind.CALL_DROPPED, for_s=0)
    outbox = Rule(id="outbox", kind=AlertKind.OUTBOX_BACKLOG, pending_over=10, for_s=0)
    now = START + 60  # inside a session
    behind = [
        # heard before the cut: recorded unreachable, its last live word and backlog stale
        replace(BASE, site_id="c1", condition=Condition.UNREACHABLE, since=T0, region_down=True,
                live_verdict="dropped", live_since=START, live_session=SESSION, pending=500),
        # on the roster, never heard: never_seen wins in the condition, but its region is cut
        replace(BASE, site_id="c2", condition=Condition.NEVER_SEEN, since=T0, region_down=True),
    ]  # fmt: skip
    rules = [down, dropped, outbox, REGION]
    cut = [RegionFacts("r001", False, T0, 2)]
    alerts, _ = evaluate(behind, rules, RuleMemory(), now, cut)
    assert [a.key for a in alerts] == ["region-down:region:r001"]
    # the same sites with their region up: each says its own trouble
    heard = [replace(s, region_down=False) for s in behind]
    heard[0] = replace(heard[0], condition=Condition.READY)
    up = [RegionFacts("r001", True, T0, 2)]
    alerts, _ = evaluate(heard, rules, RuleMemory(), now, up)
    assert sorted(a.key for a in alerts) == ["down-t15:c2", "dropped:c1", "outbox:c1"]


def test_only_contacts_without_a_district_or_tier_limit_are_told_of_a_region() -> None:
    from agent.centre.alerts.model import Channel, ChannelKind, Contact  # noqa: PLC0415
    from agent.centre.alerts.routing import covering  # noqa: PLC0415

    def contact(cid: str, **extra: object) -> Contact:
        hook = Channel(kind=ChannelKind.WEBHOOK, address=f"http://127.0.0.1:9/{cid}")
        return Contact.model_validate({"id": cid, "name": cid, "channels": [hook], **extra})

    directory = [contact("tech-d1", districts=["d1"]),
                 contact("tech-communes", tiers=["commune"]), contact("tech-province"),
                 contact("desk", level=2), contact("desk-d1", level=2, districts=["d1"]),
                 contact("boss", level=3)]  # fmt: skip
    (a,), _ = evaluate([], [REGION], RuleMemory(), T0 + 60, [RegionFacts("r001", False, T0, 9)])
    assert [c.id for c in covering(a, directory)] == ["tech-province", "desk"]
    assert [c.id for c in covering(a, directory, level=3)] == ["boss"]
