"""The live verdict judged from tables of successive samples (agent/checks/live.py): poor
only once held, recovered only once good for a while, dropped at once, unknown when nothing
can tell; the reasons are catalogue messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agent.checks.live import (
    CallState,
    LiveMemory,
    LiveSample,
    LiveVerdict,
    MediaStats,
    PathStats,
    held_rules,
    judge_live,
)
from agent.config import SessionSettings
from agent.messages import message, render

RULES = SessionSettings(hold_s=15, recover_s=30)
T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)

IN = LiveVerdict.IN_CALL
POOR = LiveVerdict.POOR
DROP = LiveVerdict.DROPPED
UNK = LiveVerdict.UNKNOWN


def call(in_call: bool | None = True, loss: float = 0.0, jitter: float = 5.0) -> LiveSample:
    media = (MediaStats(kind="video", direction="in", loss_pct=loss, jitter_ms=jitter),)
    return LiveSample(call=CallState(in_call=in_call, far_end="sip:mcu@tinh", media=media))


def path(loss: float = 0.0, rtt: float | None = 20.0, jitter: float = 2.0) -> LiveSample:
    return LiveSample(path=(PathStats(target="mcu", loss_pct=loss, rtt_ms=rtt, jitter_ms=jitter),))


GOOD, LOSSY, JITTERY, OUT = call(), call(loss=12.0), call(jitter=80.0), call(in_call=False)
DOWN = path(loss=100.0, rtt=None)


def verdicts(samples: list[LiveSample], every_s: float = 5.0) -> list[LiveVerdict]:
    memory = LiveMemory()
    seen = []
    for i, sample in enumerate(samples):
        memory = judge_live(memory, sample, RULES, T0 + timedelta(seconds=i * every_s))
        assert memory.state is not None
        seen.append(memory.state.verdict)
    return seen


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        # loss over 8 % held 15 s (samples at 0, 5, 10, 15 s) -> poor at the fourth
        ([GOOD, LOSSY, LOSSY, LOSSY, LOSSY], [IN, IN, IN, IN, POOR]),
        ([GOOD, JITTERY, JITTERY, JITTERY, JITTERY], [IN, IN, IN, IN, POOR]),
        # a flap never holds: stays in the call
        ([GOOD, LOSSY, GOOD, LOSSY, GOOD, LOSSY, LOSSY], [IN] * 7),
        # poor ends only after 30 s of good figures; one good look in between changes nothing
        (
            [LOSSY] * 4 + [GOOD, LOSSY] + [GOOD] * 7,
            [IN, IN, IN, POOR, POOR, POOR, POOR, POOR, POOR, POOR, POOR, POOR, IN],
        ),
        # the codec says not in the call: dropped at once; back in: in the call at once
        ([GOOD, OUT, GOOD], [IN, DROP, IN]),
        ([LOSSY] * 4 + [OUT], [IN, IN, IN, POOR, DROP]),
        # rejoined with bad figures: in the call first, poor once held
        ([OUT, LOSSY, LOSSY, LOSSY, LOSSY], [DROP, IN, IN, IN, POOR]),
        # the codec cannot tell and nothing else can: unknown at the start ...
        ([call(in_call=None)], [UNK]),
        ([LiveSample()], [UNK]),
        # ... but one garbled reply in a call is not enough to lose the verdict
        ([GOOD, call(in_call=None), GOOD], [IN, IN, IN]),
        ([GOOD] + [call(in_call=None)] * 4, [IN, IN, IN, IN, UNK]),
        # a site without a codec profile: the line to the MCU alone
        ([path()] * 2, [IN, IN]),
        ([path(), DOWN, DOWN, DOWN, DOWN], [IN, IN, IN, IN, POOR]),
        ([path(loss=20.0)] * 4, [IN, IN, IN, POOR]),
        ([path(rtt=450.0)] * 4, [IN, IN, IN, POOR]),
        ([path(jitter=40.0)] * 4, [IN, IN, IN, POOR]),
        # at the thresholds (not over them) is not poor
        ([call(loss=8.0, jitter=30.0)] * 5, [IN] * 5),
        ([path(loss=8.0, rtt=300.0, jitter=30.0)] * 5, [IN] * 5),
    ],
)
def test_verdict_sequences(samples: list[LiveSample], expected: list[LiveVerdict]) -> None:
    assert verdicts(samples) == expected


def test_hold_zero_makes_poor_at_once_and_codec_line_down_is_poor_not_dropped() -> None:
    rules = SessionSettings(hold_s=0, recover_s=0)
    sample = LiveSample(call=GOOD.call, path=DOWN.path)
    memory = judge_live(LiveMemory(), sample, rules, T0)
    assert memory.state is not None and memory.state.verdict is POOR
    assert memory.state.reason_msg == message(
        "live.poor", problems=[message("live.path_down", target="mcu")]
    )
    assert memory.state.hint_msg == message("live.hint.path_down")


def test_reasons_and_since() -> None:
    memory = LiveMemory()
    states = []
    for i, sample in enumerate([GOOD, LOSSY, LOSSY, LOSSY, LOSSY, OUT]):
        memory = judge_live(memory, sample, RULES, T0 + timedelta(seconds=5 * i))
        assert memory.state is not None
        states.append(memory.state)
    assert states[0].reason == "in the call with sip:mcu@tinh"
    assert states[0].since == T0
    # still in the call while the loss is not yet held: the reason stays, the figures move
    assert states[3].reason == states[0].reason and states[3].since == T0
    assert states[3].call is not None and states[3].call.media[0].loss_pct == 12.0
    poor = states[4]
    assert poor.since == T0 + timedelta(seconds=20)
    assert poor.reason == "poor media: video received loss 12.0% (over 8%)"
    assert poor.hint_msg == message("live.hint.poor")
    assert poor.reason_msg is not None
    assert render(poor.reason_msg, "vi").startswith("chất lượng kém: hình ảnh nhận")
    dropped = states[5]
    assert dropped.reason_msg == message("live.dropped")
    assert dropped.hint_msg == message("live.hint.rejoin")


def test_unknown_says_why() -> None:
    problem = message("live.path_down", target="codec")
    cases = {
        "live.unknown.nothing": LiveSample(),
        "live.unknown.codec_silent": call(in_call=None),
        "live.unknown.codec_error": LiveSample(call_problem=problem),
    }
    for reason_id, sample in cases.items():
        memory = judge_live(LiveMemory(), sample, RULES, T0)
        assert memory.state is not None
        assert memory.state.verdict is UNK
        assert memory.state.reason_msg is not None and memory.state.reason_msg.id == reason_id


def test_codec_unreadable_but_line_known_is_judged_by_the_line() -> None:
    sample = LiveSample(call_problem=message("live.path_down", target="codec"), path=path().path)
    memory = judge_live(LiveMemory(), sample, RULES, T0)
    assert memory.state is not None
    assert memory.state.verdict is IN
    assert memory.state.reason_msg == message("live.path_good")


def test_a_codec_averaging_over_a_minute_holds_poor_and_recovery_that_long() -> None:
    """Group Series averages over 60 s (`average_s = 60`): with hold 15 s / recover 30 s a
    single bad minute would be `poor` at once; the hold and the recovery are a minute."""
    samples = [GOOD] + [LOSSY] * 13 + [GOOD] * 13  # every 5 s
    memory = LiveMemory()
    seen = []
    for i, sample in enumerate(samples):
        when = T0 + timedelta(seconds=5 * i)
        memory = judge_live(memory, sample, RULES, when, average_s=60)
        assert memory.state is not None
        seen.append(memory.state.verdict)
    # lossy from 5 s: poor once held 60 s (the sample at 65 s), not at 20 s
    assert seen[:13] == [IN] * 13 and seen[13] is POOR
    # good from 70 s: still poor until good for 60 s (130 s), not at 100 s
    assert seen[14:26] == [POOR] * 12 and seen[26] is IN
    # without the profile's figure the site's own hold applies (poor at 20 s)
    assert verdicts(samples)[4] is POOR


def test_the_longer_of_the_site_hold_and_the_codec_average_wins() -> None:
    rules = SessionSettings(hold_s=90, recover_s=30)
    held = held_rules(rules, 60)
    assert (held.hold_s, held.recover_s) == (90, 60)
    assert held_rules(rules, None) is rules
    assert held_rules(rules, 5) is rules


def test_lost_counts_without_a_total_are_poor_over_their_threshold_once_held() -> None:
    def counted(lost: int) -> LiveSample:
        media = (MediaStats(kind="audio", direction="in", lost_packets=lost, jitter_ms=5.0),)
        return LiveSample(call=CallState(in_call=True, media=media))

    assert verdicts([counted(35)] * 4) == [IN, IN, IN, POOR]
    assert verdicts([counted(20)] * 5) == [IN] * 5  # at the threshold is not over it
    memory = LiveMemory()
    for i in range(4):
        memory = judge_live(memory, counted(35), RULES, T0 + timedelta(seconds=5 * i))
    assert memory.state is not None
    assert memory.state.reason == "poor media: audio received lost 35 packets (over 20)"
