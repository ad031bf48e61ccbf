"""read_call against the codec emulator on a real pty: the call scenarios (idle, connecting,
connected, loss ramp, far end hangs up, line cut, serial cable cut, rejoin after a Dial) and
bad replies, for Cisco and Poly. The emulator plays recorded vendor replies
(agent/sim/recordings/*-calls.toml), never replies made from the profile under test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial

from agent.checks.live import CallState
from agent.probes.call import read_call
from agent.profiles.loader import load_profile
from agent.profiles.model import Profile, TextLinesFamily
from agent.profiles.session import Target
from agent.sim.recording import Fault, Responder, load_recording
from agent.sim.serial_device import PtyDevice

PROFILES = Path(__file__).resolve().parents[1] / "firmware_profiles"
CODECS = {
    "cisco-roomos": (
        "cisco-roomos_ce9.15-calls",
        'xCommand Dial Number: "hop-tinh@mcu.example.vn"',
    ),
    "poly-group": ("poly-group_6.2-calls", "dial manual 384 192.168.1.101 h323"),
    "poly-hdx": ("poly-hdx_3.1-calls", "dial manual 384 192.168.1.101 h323"),
}
TIMEOUT_S = 3.0


class Codec:
    def __init__(self, profile: Profile, device: PtyDevice, dial: str) -> None:
        self.profile, self.device, self.dial_text = profile, device, dial
        self.target = Target(port=device.port, username="admin", password="secret")

    def poll(self, timeout_s: float = TIMEOUT_S) -> CallState:
        return read_call(self.profile, self.target, timeout_s)

    def dial(self) -> None:
        """What a rejoin sends, written straight to the line (the dial action is not ours)."""
        assert isinstance(self.profile.family, TextLinesFamily)
        ending = self.profile.family.send_ending
        with serial.serial_for_url(self.device.port, timeout=0.2) as port:
            port.write((self.dial_text + ending).encode("latin-1"))
            port.flush()
        deadline = time.monotonic() + 2.0
        while not any(r.lower().startswith(b"dial") or b"Dial" in r for r in self.device.requests):
            assert time.monotonic() < deadline, self.device.requests
            time.sleep(0.02)


@pytest.fixture
def codec() -> Iterator[Callable[..., Codec]]:
    started: list[PtyDevice] = []

    def make(name: str, scenario: str, fault: str | None = None) -> Codec:
        recording, dial = CODECS[name]
        device = PtyDevice(load_recording(recording), fault, scenario=scenario).start()
        started.append(device)
        return Codec(load_profile(PROFILES, name), device, dial)

    yield make
    for device in started:
        device.stop()


def media(state: CallState, kind: str, direction: str):
    return next(m for m in state.media if (m.kind, m.direction) == (kind, direction))


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("idle", [False]),
        ("connecting", [False]),
        ("connected", [True, True]),
        ("far_end_hangs_up", [True, False, False]),
        ("serial_cut", [True, None]),
    ],
)
def test_call_state_through_a_scenario(codec, name, scenario, expected):
    dev = codec(name, scenario)
    states = [dev.poll(timeout_s=1.5 if s is None else TIMEOUT_S) for s in expected]
    assert [s.in_call for s in states] == expected
    first = states[0]
    if first.in_call:
        assert first.far_end in ("hop-tinh@mcu.example.vn", "Polycom Group Series Demo")
        assert {(m.kind, m.direction) for m in first.media} >= {
            ("audio", "in"),
            ("audio", "out"),
            ("video", "in"),
            ("video", "out"),
        }
    else:
        assert first.media == ()


def test_cisco_in_call_reports_since_protocol_and_resolution(codec):
    state = codec("cisco-roomos", "connected").poll()
    assert state.protocol == "Sip"
    assert state.since is not None
    assert 750 <= (time.time() - state.since.timestamp()) <= 760  # Duration: 754
    assert media(state, "video", "in").resolution == "1920x1080"
    assert media(state, "video", "in").rate_kbps == 1920.0


def test_cisco_loss_ramp_is_read_as_percentages_over_each_interval(codec):
    dev = codec("cisco-roomos", "loss_ramp")
    losses = [media(dev.poll(), "video", "in").loss_pct for _ in range(4)]
    assert losses == [0.0, 2.0, 10.0, 25.0]


@pytest.mark.parametrize("name", ["poly-group", "poly-hdx"])
def test_poly_loss_ramp_shows_in_jitter_and_lost_counts(codec, name):
    dev = codec(name, "loss_ramp")
    polls = [media(dev.poll(), "video", "in") for _ in range(3)]
    assert [m.jitter_ms for m in polls] == [33.0, 60.0, 240.0]
    # lost packets come as counts (rvpl) with no total: kept as counts, no %
    assert [m.lost_packets for m in polls] == [0, 40, 900]
    assert all(m.loss_pct is None for m in polls)


def test_cisco_line_cut_no_packets_then_the_call_drops(codec):
    dev = codec("cisco-roomos", "line_cut")
    states = [dev.poll() for _ in range(3)]
    assert [s.in_call for s in states] == [True, True, False]
    assert media(states[0], "video", "in").loss_pct == 0.0
    assert media(states[1], "video", "in").loss_pct is None  # 0 of 0 packets: no figure


@pytest.mark.parametrize("name", CODECS)
def test_rejoin_after_a_dial(codec, name):
    dev = codec(name, "rejoin")
    assert dev.poll().in_call is True
    assert [dev.poll().in_call, dev.poll().in_call] == [False, False]  # dropped, stays so
    dev.dial()
    assert [dev.poll().in_call, dev.poll().in_call] == [False, True]  # connecting, in again


@pytest.mark.parametrize("name", CODECS)
@pytest.mark.parametrize(
    "fault", [Fault.GARBAGE, Fault.PARTIAL, Fault.DISCONNECT, Fault.SILENT, Fault.ERROR_REPLY]
)
def test_bad_replies_give_no_answer_never_a_false_in_call(codec, name, fault):
    dev = codec(name, "connected", fault)
    started = time.monotonic()
    state = dev.poll(timeout_s=1.5)
    assert state.in_call is None
    assert state.media == ()
    assert time.monotonic() - started < 1.5 + 1.0  # the timeout holds, plus closing the port


def test_an_unknown_scenario_is_refused_at_once():
    with pytest.raises(ValueError, match="no scenario loss_rmap; have: connected"):
        PtyDevice(load_recording("cisco-roomos_ce9.15-calls"), scenario="loss_rmap")


def test_no_live_table_or_no_port_gives_no_answer_without_raising(tmp_path):
    missing = Target(port=str(tmp_path / "ttyUSB9"), username="admin", password="secret")
    assert read_call(load_profile(PROFILES, "sony-visca"), missing, 1.0).in_call is None
    assert read_call(load_profile(PROFILES, "cisco-roomos"), missing, 1.0).in_call is None


def test_timed_steps_follow_the_devices_clock_not_the_polls():
    now = [100.0]
    rec = load_recording("cisco-roomos_ce9.15-calls").model_copy(deep=True)
    steps = rec.scenarios["far_end_hangs_up"]
    timed = [steps[0].model_copy(update={"polls": None, "after_s": 30.0}), steps[2]]
    rec = rec.model_copy(update={"scenarios": {"timed": timed}, "login": None, "echo": "none"})
    responder = Responder(rec, scenario="timed", clock=lambda: now[0])

    def status() -> bytes:
        return b"".join(a.data for a in responder.feed(b"xStatus Call\r\n"))

    assert b"Status: Connected" in status()
    now[0] += 29.9
    assert b"Status: Connected" in status()
    now[0] += 0.1
    assert status() == b"** end\r\n\r\nOK\r\n"
    with pytest.raises(ValueError, match="no step nowhere"):
        responder.jump("nowhere")


def test_a_test_can_make_the_codec_drop_at_once(codec):
    dev = codec("poly-hdx", "rejoin")
    assert dev.poll().in_call is True
    dev.device.jump("dropped")
    assert dev.poll().in_call is False
    dev.device.jump("rejoined")
    assert dev.poll().in_call is True
