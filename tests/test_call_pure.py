"""The pure part of the live call reader: codec replies -> CallState, through the shipped
profiles' `[live]` tables (agent/profiles/live.py). Replies are written here by hand."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.errors import ProfileError
from agent.profiles.live import call_state, loss_pct, media_stats
from agent.profiles.loader import load_profile
from agent.profiles.model import LiveTable

PROFILES = Path(__file__).resolve().parents[1] / "firmware_profiles"
NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


def live(name: str) -> LiveTable:
    table = load_profile(PROFILES, name).live
    assert table is not None
    return table


def cisco_block(*lines: str) -> str:
    return "\n".join([*lines, "** end", "OK"])


CISCO_CALL = cisco_block(
    "*s Call 3 Duration: 125",
    "*s Call 3 Protocol: Sip",
    '*s Call 3 RemoteNumber: "hop-tinh@mcu.example.vn"',
    "*s Call 3 Status: Connected",
)


def cisco_channel(
    n: int, direction: str, kind: str, lost: str, received: str, jitter: str
) -> list[str]:
    p = f"*s MediaChannels Call 3 Channel {n}"
    return [
        f"{p} Direction: {direction}",
        f"{p} Netstat ChannelRate: 64000",
        f"{p} Netstat Jitter: {jitter}",
        f"{p} Netstat LastIntervalLost: {lost}",
        f"{p} Netstat LastIntervalReceived: {received}",
        f"{p} Type: {kind}",
    ]


def test_loss_percentage_is_computed_over_the_interval_from_counts():
    assert loss_pct(30, 1470) == 2.0
    assert loss_pct(0, 250) == 0.0
    assert loss_pct(250, 0) == 100.0
    assert loss_pct(0, 0) is None  # no packets at all: no figure
    assert loss_pct(-1, 100) is None
    assert loss_pct(5, -100) is None
    assert loss_pct(None, 100) is None


def test_cisco_connected_call_with_far_end_since_and_media():
    media = cisco_block(
        *cisco_channel(327, "Incoming", "Audio", "0", "250", "2"),
        *cisco_channel(329, "Incoming", "Video", "150", "1350", "35"),
        "*s MediaChannels Call 3 Channel 329 Video ResolutionX: 1920",
        "*s MediaChannels Call 3 Channel 329 Video ResolutionY: 1080",
        *cisco_channel(331, "Incoming", "Video", "0", "100", "1"),
        "*s MediaChannels Call 3 Channel 331 Video ChannelRole: Presentation",
    )
    state = call_state(live("cisco-roomos"), CISCO_CALL, media, NOW)
    assert state.in_call is True
    assert state.since == NOW - timedelta(seconds=125)
    assert state.far_end == "hop-tinh@mcu.example.vn"
    assert state.protocol == "Sip"
    got = {(m.kind, m.direction): m for m in state.media}
    assert set(got) == {("audio", "in"), ("video", "in"), ("content", "in")}
    assert got["video", "in"].loss_pct == 10.0
    assert got["video", "in"].jitter_ms == 35.0
    assert got["video", "in"].rate_kbps == 64.0  # ChannelRate is in bps
    assert got["video", "in"].resolution == "1920x1080"
    assert got["audio", "in"].loss_pct == 0.0


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (cisco_block(), False),  # idle: only `** end`
        (cisco_block("*s Call 4 Status: Connecting"), False),
        (cisco_block("*s Call 4 Status: Disconnecting"), False),
        (cisco_block("*s Call 4 Status: OnHold"), True),
        (cisco_block("*s Call 4 Status: Teleporting"), None),  # a status we do not know
        (cisco_block("*s Call 4 Status: Connecting", "*s Call 5 Status: Connected"), True),
        ("*s Call 4 Duration: 5\nOK", None),  # no status, no `** end`: cannot tell
        ("\x13\x37\xde\xad garbage", None),
        ("", None),
        (None, None),  # the codec did not answer
    ],
)
def test_cisco_call_status(reply, expected):
    state = call_state(live("cisco-roomos"), reply, None, NOW)
    assert state.in_call is expected
    if not expected:
        assert state.media == () and state.far_end is None


def test_absurd_figures_are_dropped_not_believed():
    media = cisco_block(
        *cisco_channel(1, "Incoming", "Audio", "-5", "100", "-3"),  # negative counts, jitter
        *cisco_channel(2, "Incoming", "Video", "x", "y", "99999999"),  # garbled, huge
        "*s MediaChannels Call 3 Channel 2 Video ResolutionX: 0",
        "*s MediaChannels Call 3 Channel 2 Video ResolutionY: 1080",
        *cisco_channel(3, "Sideways", "Audio", "0", "10", "1"),  # unknown direction: dropped
        *cisco_channel(4, "Outgoing", "Data", "0", "10", "1"),  # not audio/video: dropped
    )
    state = call_state(live("cisco-roomos"), CISCO_CALL, media, NOW)
    assert [(m.kind, m.direction) for m in state.media] == [("audio", "in"), ("video", "in")]
    for m in state.media:
        assert m.loss_pct is None and m.jitter_ms is None and m.resolution is None
        assert m.rate_kbps == 64.0


def test_absurd_call_figures_are_dropped():
    reply = cisco_block(
        "*s Call 3 Duration: -40",
        "*s Call 3 Protocol: AVeryLongProtocolNameIndeed",
        '*s Call 3 RemoteNumber: "' + "x" * 300 + '"',
        "*s Call 3 Status: Connected",
    )
    state = call_state(live("cisco-roomos"), reply, "total garbage\n", NOW)
    assert state.in_call is True
    assert (state.since, state.protocol, state.far_end, state.media) == (None, None, None, ())


def test_cisco_loss_percentage_given_directly_is_range_checked():
    table = live("cisco-roomos").model_copy(
        update={
            "channel_lines": [
                r"^ch (?P<channel>\d+) (?P<kind>\w+) (?P<direction>\w+) (?P<loss_pct>\S+)$"
            ]
        }
    )
    got = media_stats(
        table, "ch 1 Audio Incoming 400%\nch 2 Video Incoming 12.5%\nch 3 Audio Outgoing -1"
    )
    assert [(m.kind, m.direction, m.loss_pct) for m in got] == [
        ("audio", "in", None),
        ("audio", "out", None),
        ("video", "in", 12.5),
    ]


POLY_CALL = (
    "callinfo begin\n"
    "callinfo:43:Polycom Group Series Demo:192.168.1.101:384:connected:notmuted:"
    "outgoing:videocall\n"
    "callinfo end"
)
POLY_STATS = (
    "call:1 tar:24k rar:24k tvr:64.3k rvr:104k tvru:64.3k rvru:104k tvfr:11.7 rvfr:29.9 "
    "vfe:0 tapl:0 rapl:0 taj:19mS raj:53mS tvpl:0 rvpl:0 tvj:29mS rvj:33mS"
)


@pytest.mark.parametrize("profile", ["poly-group", "poly-hdx"])
def test_poly_call_and_advnetstats(profile):
    state = call_state(live(profile), POLY_CALL, POLY_STATS, NOW)
    assert state.in_call is True
    assert state.far_end == "Polycom Group Series Demo"
    assert state.since is None  # callinfo gives no duration
    got = {(m.kind, m.direction): m for m in state.media}
    assert set(got) == {("audio", "in"), ("audio", "out"), ("video", "in"), ("video", "out")}
    assert got["audio", "in"].jitter_ms == 53.0
    assert got["video", "out"].rate_kbps == 64.3  # '64.3k' bps -> kbps
    assert got["video", "in"].rate_kbps == 104.0
    assert all(m.loss_pct is None for m in state.media)  # counts without totals: no %


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("system is not in a call", False),
        (
            "callinfo begin\ncallinfo:36:192.168.1.102:256:connected:muted:outgoing:videocall\n"
            "callinfo end",
            True,
        ),
        (
            "callinfo begin\ncallinfo:36:192.168.1.102:256:connecting:muted:outgoing:videocall\n"
            "callinfo end",
            False,
        ),
        ("callinfo begin\ncallinfo end", None),
        ("callinfo:36:garbage", None),
        ("error: command not found", None),
    ],
)
def test_poly_call_status(reply, expected):
    assert call_state(live("poly-group"), reply, None, NOW).in_call is expected


def test_poly_negative_jitter_and_garbled_rates_are_dropped():
    stats = "call:1 tar:-24k rar:abc raj:-53mS taj:1e9mS"
    got = {(m.kind, m.direction): m for m in media_stats(live("poly-hdx"), stats)}
    assert got["audio", "out"].rate_kbps is None and got["audio", "out"].jitter_ms is None
    assert got["audio", "in"].jitter_ms is None


def test_live_table_must_name_queries_the_profile_has(tmp_path):
    text = (PROFILES / "poly-group.toml").read_text(encoding="utf-8")
    (tmp_path / "poly-bad.toml").write_text(
        text.replace('name = "poly-group"', 'name = "poly-bad"').replace(
            'media = "media_live"', 'media = "no_such_query"'
        ),
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match="no_such_query"):
        load_profile(tmp_path, "poly-bad")


def _mangled(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 12)):
        i = rng.randrange(len(chars))
        action = rng.randrange(4)
        if action == 0:
            del chars[i]
        elif action == 1:
            chars.insert(i, rng.choice("-0123456789.:%kmS \n\x00\xff\"'"))
        elif action == 2:
            chars[i] = rng.choice("-9999999")
        else:
            chars[i : i + rng.randint(1, 20)] = []
    return "".join(chars)


@pytest.mark.parametrize(
    ("profile", "call", "stats"),
    [
        (
            "cisco-roomos",
            CISCO_CALL,
            "\n".join(cisco_channel(9, "Incoming", "Video", "3", "97", "4")),
        ),
        ("poly-group", POLY_CALL, POLY_STATS),
        ("poly-hdx", POLY_CALL, POLY_STATS),
    ],
)
def test_mangled_replies_never_crash_nor_invent_a_call(profile, call, stats):
    # 2000 seeded mutations of real replies (cut, garbled, absurd digits): a CallState
    # always comes back, and in_call is True only where a connected status line survived.
    table, rng = live(profile), random.Random(19)
    connected = re.compile(
        r"^\s*\*s Call \d+ Status: (Connected|OnHold)\s*$|:connected:", re.MULTILINE
    )
    for _ in range(2000):
        call_text, stats_text = _mangled(call, rng), _mangled(stats, rng)
        state = call_state(table, call_text, stats_text, NOW)
        if state.in_call:
            assert connected.search(call_text), call_text


@pytest.mark.parametrize("word", ["Netstat", "NetStat", "Netstat 1"])
def test_cisco_netstat_spellings_all_read(word):
    lines = [
        line.replace("Netstat", word)
        for line in cisco_channel(5, "Incoming", "Audio", "1", "99", "7")
    ]
    (stats,) = media_stats(live("cisco-roomos"), "\n".join(lines))
    assert (stats.loss_pct, stats.jitter_ms) == (1.0, 7.0)


def test_poly_bare_kbps_rate_used_formats_and_missing_figures():
    # Group Series style: bare kbps, rvru (rate used) rather than rvr, '---' for no figure.
    stats = (
        "call:1 tar:64 rar:64 tvr:1920 rvr:1920 tvru:1500 rvru:1800 tvf:720p rvf:--- "
        "tapl:0 rapl:0 taj:2 raj:3 tvpl:0 rvpl:12 tvj:5 rvj:---"
    )
    got = {(m.kind, m.direction): m for m in media_stats(live("poly-group"), stats)}
    assert (got["video", "in"].rate_kbps, got["video", "in"].resolution) == (1800.0, None)
    assert got["video", "in"].jitter_ms is None
    assert (got["video", "out"].rate_kbps, got["video", "out"].resolution) == (1500.0, "720p")
    assert (got["audio", "in"].rate_kbps, got["audio", "in"].jitter_ms) == (64.0, 3.0)


@pytest.mark.parametrize("profile", ["poly-group", "poly-hdx"])
def test_poly_lost_counts_are_kept_as_counts(profile):
    """advnetstats counts lost packets with no total (no % can be made): the count is kept
    (`lost_packets`) for its own threshold; a negative or absurd count is dropped."""
    stats = "call:1 tar:24k rar:24k tvru:64.3k rvru:104k tapl:0 rapl:35 tvpl:-4 rvpl:99999999999"
    got = {(m.kind, m.direction): m for m in media_stats(live(profile), stats)}
    assert got["audio", "in"].lost_packets == 35 and got["audio", "in"].loss_pct is None
    assert got["audio", "out"].lost_packets == 0
    assert got["video", "out"].lost_packets is None  # negative: a bad reading
    assert got["video", "in"].lost_packets is None  # absurd: a bad reading


def test_cisco_counts_give_a_percentage_not_a_count():
    lines = cisco_channel(1, "Incoming", "Video", "10", "90", "2")
    stats = media_stats(live("cisco-roomos"), "\n".join(lines))
    assert stats[0].loss_pct == 10.0 and stats[0].lost_packets is None
