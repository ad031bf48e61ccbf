"""Routing, pure: who is told of which alerts, grouped per (contact, channel), held by quiet
hours, with a stable idempotency key. Tables of alerts and contacts, no I/O."""

from __future__ import annotations

import pytest

from agent.centre.alerts.model import (
    Alert,
    AlertKind,
    Channel,
    ChannelKind,
    Contact,
    NotificationEvent,
    QuietHours,
    Severity,
)
from agent.centre.alerts.routing import covering, notifications, quiet_end, told_of
from agent.messages import message

NOW = 1_780_000_000.0  # 1600 s past an hour: the hold ends at the start of an hour
RAISED = NotificationEvent.RAISED


def alert(
    site: str,
    district: str,
    severity: Severity = Severity.WARNING,
    kind: AlertKind = AlertKind.SITE_DOWN,
    tier: str = "commune",
    fired_at: float = NOW - 60,
) -> Alert:
    rule = f"{kind}-{severity}"
    return Alert(
        key=f"{rule}:{site}", rule=rule, kind=kind, severity=severity, site_id=site,
        district=district, tier=tier, since=fired_at - 120, fired_at=fired_at,
        reason=message("contacts.cli.empty"),
    )  # fmt: skip


def contact(cid: str, level: int = 1, *districts: str, **extra: object) -> Contact:
    channels = extra.pop("channels", (Channel(kind=ChannelKind.EMAIL, address=f"{cid}@hb.vn"),))
    return Contact.model_validate(
        {"id": cid, "name": cid, "level": level, "districts": districts, "channels": channels}
        | extra
    )


LS = contact("tech-ls", 1, "hb-ls")  # Lạc Sơn's technician
MC = contact("tech-mc", 1, "hb-mc")  # Mai Châu's
DESK = contact("desk", 2)  # the province desk
BOSS = contact("director", 3)  # told on escalation only
OFF = contact("tech-off", 1, "hb-ls", enabled=False)
CRIT_ONLY = contact("tech-crit", 1, "hb-ls", min_severity="critical")
DISTRICTS_ONLY = contact("tech-dist", 1, tiers=("district",))
DIRECTORY = [LS, MC, DESK, BOSS, OFF, CRIT_ONLY, DISTRICTS_ONLY]

WARN_LS = alert("hb-ls-qt", "hb-ls")
CRIT_LS = alert("hb-ls-vs", "hb-ls", Severity.CRITICAL)
CRIT_MC = alert("hb-mc-pc", "hb-mc", Severity.CRITICAL)
WARN_DISTRICT = alert("hb-ls", "hb-ls", tier="district")


@pytest.mark.parametrize(
    ("the_alert", "level", "told"),
    [
        # a district's technician gets his communes only; the desk only critical ones
        (WARN_LS, 1, ["tech-ls"]),
        (CRIT_LS, 1, ["tech-ls", "desk", "tech-crit"]),
        (CRIT_MC, 1, ["tech-mc", "desk"]),
        # a tier filter: the district site itself, not its communes
        (WARN_DISTRICT, 1, ["tech-ls", "tech-dist"]),
        # an escalation goes to exactly that level
        (CRIT_MC, 2, ["desk"]),
        (CRIT_MC, 3, ["director"]),
        (WARN_LS, 3, ["director"]),
    ],
)
def test_who_is_told(the_alert: Alert, level: int, told: list[str]) -> None:
    assert [c.id for c in covering(the_alert, DIRECTORY, level)] == told
    got = notifications(RAISED, [the_alert], DIRECTORY, now=NOW, local_hour=10, level=level)
    assert sorted(n.contact_id for n in got) == sorted(told)


def test_the_desk_gets_every_critical_alert_and_no_warning() -> None:
    alerts = [alert(f"s{i}", f"d{i % 7}", Severity.CRITICAL if i % 2 else Severity.WARNING)
              for i in range(30)]  # fmt: skip
    (note,) = notifications(RAISED, alerts, [DESK], now=NOW, local_hour=10)
    assert {a.site_id for a in note.alerts} == {f"s{i}" for i in range(1, 30, 2)}


def test_a_district_uplink_failure_is_one_message_per_contact_and_channel() -> None:
    forty = [alert(f"hb-ls-{i:02d}", "hb-ls", Severity.CRITICAL) for i in range(40)]
    two_channels = contact(
        "tech-ls2", 1, "hb-ls",
        channels=(Channel(kind=ChannelKind.TELEGRAM, address="-100123"),
                  Channel(kind=ChannelKind.WEBHOOK, address="https://hb.vn/hook")),
    )  # fmt: skip
    got = notifications(RAISED, forty, [LS, MC, DESK, two_channels], now=NOW, local_hour=10)
    assert sorted((n.contact_id, n.channel.kind) for n in got) == [
        ("desk", "email"), ("tech-ls", "email"), ("tech-ls2", "telegram"),
        ("tech-ls2", "webhook"),
    ]  # fmt: skip
    for n in got:
        assert len(n.alerts) == 40
        assert {a.site_id for a in n.alerts} == {f"hb-ls-{i:02d}" for i in range(40)}
    assert len({n.key for n in got}) == 4


def test_messages_in_the_contacts_language() -> None:
    en = contact("tech-en", 1, "hb-ls", language="en")
    got = notifications(RAISED, [WARN_LS], [LS, en], now=NOW, local_hour=10)
    assert {(n.contact_id, n.language) for n in got} == {("tech-ls", "vi"), ("tech-en", "en")}


NIGHT = QuietHours(start=22, end=6)
NOON = QuietHours(start=12, end=14)


@pytest.mark.parametrize(
    ("quiet", "hour", "held_hours"),
    [
        (NIGHT, 23, 7),  # spans midnight: 23 → 06 is 7 hours
        (NIGHT, 2, 4),
        (NIGHT, 5, 1),
        (NIGHT, 6, None),  # the end hour is not quiet
        (NIGHT, 21, None),
        (NIGHT, 22, 8),
        (NOON, 12, 2),
        (NOON, 13, 1),
        (NOON, 14, None),
        (NOON, 11, None),
    ],
)
def test_quiet_hours_defer_a_warning_to_their_end(
    quiet: QuietHours, hour: int, held_hours: int | None
) -> None:
    sleepy = contact("tech-ls", 1, "hb-ls", quiet=quiet)
    (note,) = notifications(RAISED, [WARN_LS], [sleepy], now=NOW, local_hour=hour)
    hour_start = NOW - NOW % 3600
    assert note.next_at == (NOW if held_hours is None else hour_start + held_hours * 3600)


def test_quiet_hours_let_a_critical_alert_through() -> None:
    sleepy = contact("tech-ls", 1, "hb-ls", quiet=NIGHT)
    (note,) = notifications(RAISED, [WARN_LS, CRIT_LS], [sleepy], now=NOW, local_hour=23)
    assert note.next_at == NOW
    assert len(note.alerts) == 2


def test_a_test_message_ignores_coverage_and_quiet_hours() -> None:
    centre = alert("", "", kind=AlertKind.TEST)
    sleepy = contact("tech-ls", 1, "hb-ls", quiet=NIGHT)
    (note,) = notifications(NotificationEvent.TEST, [centre], [sleepy], now=NOW, local_hour=23)
    assert note.next_at == NOW


def test_quiet_end_is_the_start_of_the_end_hour() -> None:
    assert quiet_end(NOW, 23, 6) == NOW - NOW % 3600 + 7 * 3600
    assert quiet_end(NOW + 1799, 23, 6) == NOW - NOW % 3600 + 7 * 3600


def test_the_same_input_twice_gives_the_same_keys() -> None:
    alerts = [WARN_LS, CRIT_LS, CRIT_MC]
    first = notifications(RAISED, alerts, DIRECTORY, now=NOW, local_hour=10)
    again = notifications(RAISED, alerts[::-1], DIRECTORY, now=NOW + 30, local_hour=10)
    assert sorted(n.key for n in first) == sorted(n.key for n in again)
    assert len({n.key for n in first}) == len(first)


def test_a_different_event_or_firing_gives_a_different_key() -> None:
    def key(event: NotificationEvent, fired_at: float) -> str:
        the_alert = alert("hb-ls-qt", "hb-ls", fired_at=fired_at)
        (note,) = notifications(event, [the_alert], [LS], now=NOW, local_hour=10)
        return note.key

    before = key(RAISED, NOW - 60)
    assert key(RAISED, NOW - 60) == before
    assert key(NotificationEvent.RECOVERED, NOW - 60) != before
    assert key(RAISED, NOW + 600) != before  # the same trouble firing again later: new


def test_reminders_and_recovery_go_to_everyone_told_up_to_the_level_reached():
    assert told_of(BOSS, CRIT_LS, 3) and not told_of(BOSS, CRIT_LS, 2)
    assert told_of(DESK, CRIT_LS, 1) and not told_of(DESK, WARN_LS, 1)  # warnings: level 1
    assert not told_of(MC, CRIT_LS, 3)  # another district's technician, at any level
    reached = {CRIT_LS.key: 3, CRIT_MC.key: 1}
    items = notifications(NotificationEvent.REMINDER, [CRIT_LS, CRIT_MC], DIRECTORY, now=NOW,
                          local_hour=10, round_=2, reached=reached)  # fmt: skip
    told = {n.contact_id: sorted(a.site_id for a in n.alerts) for n in items}
    assert told == {
        "tech-ls": ["hb-ls-vs"], "tech-mc": ["hb-mc-pc"], "desk": ["hb-ls-vs", "hb-mc-pc"],
        "director": ["hb-ls-vs"], "tech-crit": ["hb-ls-vs"],
    }  # fmt: skip
