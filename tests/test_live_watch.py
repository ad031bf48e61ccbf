"""The live watch as the daemon's job (agent/runtime/live.py), driven pass by pass with a
scripted clock: when it looks, what it publishes (a change: `live` and `live/event`; no
change: `live` again only after republish_s; the session over: `live` with session None),
and a codec reader that fails or returns garbage gives `unknown` with a reason, never a
crash."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from agent.checks.live import CallState, LiveSample, MediaStats, PathStats
from agent.config import Settings
from agent.contract.payloads import Envelope, LiveEventPayload, LivePayload
from agent.errors import BadReply
from agent.messages import message
from agent.runtime.jobs import Now
from agent.runtime.live import LiveWatch, take_sample
from agent.schedule.model import Session, Tick

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
SESSION = Session(session_id="s1", start=T0, end=T0 + timedelta(hours=2))
SETTINGS = Settings(
    site={"site_id": "s1", "name": "S1", "tier": "commune"},
    session={"poll_s": 5, "hold_s": 10, "recover_s": 10, "republish_s": 60},
)
IN_CALL = LiveSample(call=CallState(in_call=True))
OUT = LiveSample(call=CallState(in_call=False))


def tick(*current: Session) -> Tick:
    return Tick(T0, (), (), (), current, bool(current), None, T0, False)


class Script:
    """The watch with its looks scripted and its reports collected."""

    def __init__(self, looks: list[LiveSample]) -> None:
        self.looks = looks
        self.sent: list[Envelope] = []
        self.clock = T0
        self.looked = 0
        self.watch = LiveWatch(SETTINGS, self.look, self.sent.append, lambda: self.clock)

    def look(self, stop: threading.Event) -> LiveSample:
        sample = self.looks[min(self.looked, len(self.looks) - 1)]
        self.looked += 1
        return sample

    def at(self, seconds: float, *current: Session) -> list[str]:
        """One loop pass at T0 + seconds; what it sent, as kinds."""
        self.clock = T0 + timedelta(seconds=seconds)
        now = Now(seconds, tick(*current))
        before = len(self.sent)
        if self.watch.due(now):
            self.watch.run(now, threading.Event())
        return [p.kind for p in self.sent[before:]]


def test_outside_a_session_it_neither_looks_nor_sends() -> None:
    script = Script([IN_CALL])
    assert [script.at(s) for s in (0, 5, 10)] == [[], [], []]
    assert script.looked == 0
    assert script.watch.next_in(Now(10, tick())) is None


def test_changes_republish_and_the_closing_report() -> None:
    script = Script([IN_CALL] * 3 + [OUT] + [OUT] * 20)
    sent = [script.at(s, SESSION) for s in (0, 5, 10, 15, 20)]
    assert sent == [["live", "live_event"], [], [], ["live", "live_event"], []]
    assert script.watch.next_in(Now(20, tick(SESSION))) == 5
    # nothing changed for 60 s: the figures go out again, once
    later = [script.at(s, SESSION) for s in range(25, 80, 5)]  # 25 ... 75 s
    assert later.count(["live"]) == 1 and later.index(["live"]) == 10  # at 75 s = 15 + 60
    # the session ends: one last `live` with session None, then nothing
    assert script.at(80) == ["live"]
    assert script.at(85) == []
    last = script.sent[-1]
    assert isinstance(last, LivePayload) and last.session is None
    assert last.verdict.value == "dropped"
    events = [p for p in script.sent if isinstance(p, LiveEventPayload)]
    assert [(e.before, e.after.value) for e in events] == [
        (None, "in_call"),
        (events[1].before, "dropped"),
    ]
    assert events[1].before is not None and events[1].before.value == "in_call"


def test_a_new_session_starts_afresh() -> None:
    other = Session(session_id="s2", start=T0, end=T0 + timedelta(hours=3))
    script = Script([IN_CALL])
    assert script.at(0, SESSION) == ["live", "live_event"]
    # s1 is replaced by s2 (a new schedule): s1 closed, s2's first verdict is an event again
    assert script.at(1, other) == ["live", "live", "live_event"]
    payloads = script.sent[-3:]
    assert isinstance(payloads[0], LivePayload) and payloads[0].session is None
    assert isinstance(payloads[1], LivePayload) and payloads[1].session is not None
    assert payloads[1].session.session_id == "s2"


def test_a_failing_or_garbled_codec_reader_gives_unknown_with_a_reason() -> None:
    def refuses() -> CallState:
        raise BadReply(message("live.path_down", target="codec"))

    def crashes() -> CallState:
        raise ZeroDivisionError

    def garbage() -> CallState:
        return "in call"  # type: ignore[return-value]

    for reader, reason_id in (
        (refuses, "live.path_down"),
        (crashes, "live.codec_failed"),
        (garbage, "live.codec_failed"),
    ):
        sample = take_sample(SETTINGS, reader)
        assert sample.call is None
        assert sample.call_problem is not None and sample.call_problem.id == reason_id
        script = Script([sample])
        script.at(0, SESSION)
        live = script.sent[0]
        assert isinstance(live, LivePayload)
        assert live.verdict.value == "unknown"
        assert live.reason_msg is not None and live.reason_msg.id == "live.unknown.codec_error"


def test_mcu_targets_only_are_sampled() -> None:
    targets = [
        {"name": "broker", "host": "127.0.0.1", "port": 1},
        {"name": "mcu", "host": "127.0.0.1", "port": 1, "role": "mcu"},
    ]
    settings = Settings(
        site=SETTINGS.site,
        network={"samples": 1, "connect_timeout_s": 0.2, "targets": targets},
    )
    sample = take_sample(settings, None)
    assert sample.path == (PathStats(target="mcu", loss_pct=100.0, rtt_ms=None, jitter_ms=None),)


def test_a_silent_mcu_costs_one_timeout_per_look() -> None:
    """A target that never answers (its backlog full: connects time out) must not hold the
    look for `samples` timeouts: the loop waits on it, and a codec's drop waits behind it."""
    with socket.create_server(("127.0.0.1", 0), backlog=0) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), 1):  # fills the backlog
            settings = Settings(
                site=SETTINGS.site,
                network={
                    "samples": 5,
                    "connect_timeout_s": 0.3,
                    "targets": [{"name": "mcu", "host": "127.0.0.1", "port": port, "role": "mcu"}],
                },
            )
            started = time.monotonic()
            sample = take_sample(settings, None)
            took = time.monotonic() - started
    assert sample.path == (PathStats(target="mcu", loss_pct=100.0, rtt_ms=None, jitter_ms=None),)
    assert 0.3 <= took < 0.3 * 2


class FakePushes:
    def __init__(self) -> None:
        self.started = self.stopped = 0
        self.paused: list[bool] = []

    def pause(self) -> None:
        self.paused.append(True)

    def resume(self) -> None:
        self.paused.append(False)

    def start(self) -> FakePushes:
        self.started += 1
        return self

    def stop(self) -> None:
        self.stopped += 1


class PushingCodec:
    """The watch's view of a codec with pushes: its averaging time and a push listener
    (the listener itself runs on a real pty in tests/test_live_push.py)."""

    def __init__(self, average_s: float | None = None) -> None:
        self.average_s = average_s
        self.listener = FakePushes()
        self.on_push: list[object] = []

    def pushes(self, on_push: object) -> FakePushes:
        self.on_push.append(on_push)
        return self.listener


def test_a_push_makes_the_next_look_due_at_once_but_not_hard_on_the_last() -> None:
    codec = PushingCodec()
    woken: list[float] = []
    script = Script([IN_CALL, OUT])
    mono = [0.0]
    script.watch = LiveWatch(
        SETTINGS,
        script.look,
        script.sent.append,
        lambda: script.clock,
        codec=codec,
        wake=lambda: woken.append(mono[0]),
        mono=lambda: mono[0],
    )
    assert script.at(0, SESSION) == ["live", "live_event"]
    assert codec.listener.started == 1 and len(codec.on_push) == 1  # listening from the start
    push = codec.on_push[0]
    assert callable(push)
    mono[0] = 0.2
    push("*s Call 3 Status: Disconnecting")  # 0.2 s after a look: due 0.5 s after it
    assert woken == [0.2]
    assert script.watch.next_in(Now(0.2, tick(SESSION))) == pytest.approx(0.3)
    assert script.at(0.3, SESSION) == []  # not before the gap
    assert script.at(0.5, SESSION) == ["live", "live_event"]  # dropped, 4.5 s before poll_s
    mono[0] = 3.0
    push("*s Call 3 (ghost=True):")  # long after the last look: due now
    assert script.watch.next_in(Now(3.0, tick(SESSION))) == 0.0
    # the session over: the listener stops, and a late push changes nothing
    assert script.at(4.0) == ["live"]
    assert codec.listener.stopped == 1
    push("*s Call 3 Status: Idle")
    assert script.watch.next_in(Now(4.1, tick())) is None


def test_the_profile_average_lengthens_the_hold() -> None:
    lossy = LiveSample(
        call=CallState(
            in_call=True,
            media=(MediaStats(kind="video", direction="in", loss_pct=20.0),),
        )
    )
    script = Script([lossy] * 20)
    script.watch = LiveWatch(
        SETTINGS, script.look, script.sent.append, lambda: script.clock, codec=PushingCodec(60)
    )
    verdicts = []
    for s in range(0, 70, 5):
        script.at(s, SESSION)
        assert script.watch.state is not None
        verdicts.append(script.watch.state.verdict.value)
    # hold_s is 10 in these settings; the codec averages over 60 s: poor only at 60 s
    assert verdicts.index("poor") == 12


def test_the_line_is_lent_to_the_self_test_child_while_it_runs() -> None:
    codec = PushingCodec()
    script = Script([IN_CALL])
    script.watch = LiveWatch(
        SETTINGS, script.look, script.sent.append, lambda: script.clock, codec=codec
    )
    with script.watch.line_lent():  # outside a session: no listener, nothing to pause
        pass
    script.at(0, SESSION)
    with script.watch.line_lent():
        assert codec.listener.paused == [True]
    assert codec.listener.paused == [True, False]
