"""The alert rules, pure: tables of one site's facts over time, evaluated turn by turn as the
engine does, with the memory carried from each turn to the next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pytest

from agent.centre.alerts.model import Alert, AlertKind, Rule, Severity
from agent.centre.alerts.rules import (
    FirmwareFact,
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
