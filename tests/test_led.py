"""Status LED: the pattern table and choice (pure), the driver on sysfs-shaped trees, the CLI."""

from __future__ import annotations

import argparse
import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.checks.model import Verdict
from agent.cli import led as cli_led
from agent.errors import DeviceNotFound, ProbeError
from agent.led.driver import LedDriver, prepare_leds, write_attribute
from agent.led.patterns import (
    PATTERNS,
    Colour,
    IdentifyTimer,
    LedSettings,
    Pattern,
    choose_pattern,
    legend,
    legend_ids,
)
from agent.messages import catalogue
from agent.sim.sysfs import LedView, add_led, led_view, led_write

COLOURS = LedSettings(enabled=True)
LEDS = Path("class/leds")


def views(root: Path, *names: str) -> list[LedView]:
    return [led_view(root / LEDS / name) for name in names]


class Spy:
    """Records every write on its way to the fake kernel."""

    def __init__(self) -> None:
        self.writes: list[tuple[str, str, str]] = []

    def __call__(self, path: Path, value: str) -> None:
        self.writes.append((path.parent.name, path.name, value))
        led_write(path, value)


# --- choosing a pattern (pure) -----------------------------------------------------------


@pytest.mark.parametrize(
    ("verdict", "broker", "checking", "identify", "pattern"),
    [
        (Verdict.READY, True, False, False, Pattern.READY),
        (Verdict.DEGRADED, True, False, False, Pattern.DEGRADED),
        (Verdict.FAULT, True, False, False, Pattern.FAULT),
        (Verdict.READY, False, False, False, Pattern.NO_BROKER),
        (Verdict.DEGRADED, False, False, False, Pattern.NO_BROKER),
        (Verdict.FAULT, False, False, False, Pattern.FAULT),  # the local fault first
        (None, True, False, False, Pattern.OFF),
        (None, False, False, False, Pattern.NO_BROKER),
        (Verdict.FAULT, False, True, False, Pattern.CHECKING),
        (None, True, True, False, Pattern.CHECKING),
        (Verdict.FAULT, False, True, True, Pattern.IDENTIFY),
        (Verdict.READY, True, False, True, Pattern.IDENTIFY),
    ],
)
def test_choose_pattern(
    verdict: Verdict | None, broker: bool, checking: bool, identify: bool, pattern: Pattern
) -> None:
    assert choose_pattern(verdict, broker, checking, identify) is pattern


def test_pattern_table_matches_the_documented_looks() -> None:
    assert set(PATTERNS) == set(Pattern)
    ready = PATTERNS[Pattern.READY]
    assert ready.light(Colour.GREEN).lit and not ready.light(Colour.GREEN).blinking
    assert not ready.light(Colour.RED).lit
    degraded = PATTERNS[Pattern.DEGRADED]  # amber: red and green, steady
    assert all(degraded.light(c).lit and not degraded.light(c).blinking for c in ("red", "green"))
    fault, no_broker = PATTERNS[Pattern.FAULT].colours, PATTERNS[Pattern.NO_BROKER].colours
    assert set(fault) == set(no_broker) == {Colour.RED}
    assert fault[Colour.RED].on_ms < no_broker[Colour.RED].on_ms  # fast vs slow
    identify = PATTERNS[Pattern.IDENTIFY]
    assert all(identify.light(c).blinking for c in (Colour.RED, Colour.GREEN, Colour.BLUE))
    assert not any(PATTERNS[Pattern.OFF].light(c).lit for c in Colour)
    # A single LED tells every pattern apart by its rhythm alone.
    singles = [spec.single for spec in PATTERNS.values()]
    assert len(set(singles)) == len(singles)


def test_identify_ends_and_the_previous_pattern_returns() -> None:
    timer = IdentifyTimer()
    timer.start(now=100.0, seconds=10)
    assert choose_pattern(Verdict.DEGRADED, True, False, timer.active(105.0)) is Pattern.IDENTIFY
    assert timer.ends_at(105.0) == 110.0
    assert choose_pattern(Verdict.DEGRADED, True, False, timer.active(110.0)) is Pattern.DEGRADED
    assert timer.ends_at(110.0) is None


# --- settings ----------------------------------------------------------------------------


def test_settings() -> None:
    assert LedSettings().enabled is False
    assert LedSettings(single="power").names() == {Colour.WHITE: "power"}
    assert LedSettings(blue="status:blue").names()[Colour.BLUE] == "status:blue"
    for bad in (
        {"single": "power", "red": "status:red"},
        {"red": "x", "green": "x"},
        {"red": "../../power/state"},
        {"green": ".."},
        {"colour": "red"},
    ):
        with pytest.raises(ValidationError):
            LedSettings(**bad)


# --- the driver on a sysfs-shaped tree ---------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "red", "green"),
    [
        (Pattern.READY, LedView(False), LedView(True)),
        (Pattern.CHECKING, LedView(False), LedView(True, 500, 500)),
        (Pattern.DEGRADED, LedView(True), LedView(True)),
        (Pattern.FAULT, LedView(True, 250, 250), LedView(False)),
        (Pattern.NO_BROKER, LedView(True, 1000, 1000), LedView(False)),
        (Pattern.IDENTIFY, LedView(True, 100, 100), LedView(True, 100, 100)),
        (Pattern.OFF, LedView(False), LedView(False)),
    ],
)
def test_each_pattern_on_a_red_green_pair(
    sysfs: Path, pattern: Pattern, red: LedView, green: LedView
) -> None:
    driver = LedDriver(sysfs, COLOURS, write=led_write)
    assert driver.show(pattern)
    assert views(sysfs, "status:red", "status:green") == [red, green]
    assert driver.current is pattern


def test_every_transition_lands_on_the_target(sysfs: Path) -> None:
    """From every pattern to every other: no leftover blink, no 500/500 kernel fallback
    (which writing both delays as 0 at once would cause)."""
    add_led(sysfs, "status:blue")
    settings = LedSettings(enabled=True, blue="status:blue")
    driver = LedDriver(sysfs, settings, write=led_write)
    names = {Colour.RED: "status:red", Colour.GREEN: "status:green", Colour.BLUE: "status:blue"}
    for first in Pattern:
        for second in Pattern:
            driver.show(first)
            driver.show(second)
            for colour, name in names.items():
                light = PATTERNS[second].light(colour)
                seen = led_view(sysfs / LEDS / name)
                want = LedView(light.lit, *((light.on_ms, light.off_ms) if light.blinking else ()))
                assert seen == want, (first, second, colour)


def test_single_led(sysfs: Path) -> None:
    add_led(sysfs, "power", max_brightness=1)
    driver = LedDriver(sysfs, LedSettings(enabled=True, single="power"), write=led_write)
    driver.show(Pattern.DEGRADED)
    assert led_view(sysfs / LEDS / "power") == LedView(True, 1800, 200)
    assert (sysfs / LEDS / "power" / "brightness").read_text().strip() == "1"
    driver.show(Pattern.READY)
    assert led_view(sysfs / LEDS / "power") == LedView(True)
    # The colour LEDs are not touched.
    assert views(sysfs, "status:red", "status:green") == [LedView(False), LedView(False)]


def test_write_order_and_no_repeat(sysfs: Path) -> None:
    spy = Spy()
    driver = LedDriver(sysfs, COLOURS, write=spy)
    driver.show(Pattern.FAULT)
    red = [(attr, value) for led, attr, value in spy.writes if led == "status:red"]
    assert red == [("trigger", "timer"), ("delay_on", "250"), ("delay_off", "250"),
                   ("brightness", "255")]  # fmt: skip
    green = [(attr, value) for led, attr, value in spy.writes if led == "status:green"]
    # Dark: the non-zero delay first, then delay_on=0; the timer is already selected.
    assert green == [("trigger", "timer"), ("delay_off", "1000"), ("delay_on", "0"),
                     ("brightness", "255")]  # fmt: skip
    spy.writes.clear()
    assert driver.show(Pattern.FAULT) is False and spy.writes == []
    driver.show(Pattern.READY)
    assert ("status:red", "trigger", "timer") not in spy.writes  # never re-selected
    # brightness 0 would drop the trigger (and the group's write access to the delays).
    assert all(not (attr == "brightness" and value == "0") for _, attr, value in spy.writes)


def test_real_writer_on_prepared_leds(sysfs: Path) -> None:
    prepare_leds(sysfs, ["status:red", "status:green"], os.getgid(), write=led_write)
    driver = LedDriver(sysfs, COLOURS)  # plain os.open writes, as on a real kernel
    driver.show(Pattern.NO_BROKER)
    red = sysfs / LEDS / "status:red"
    assert (red / "delay_on").read_text() == "1000" and (red / "delay_off").read_text() == "1000"
    driver.show(Pattern.CHECKING)
    assert (red / "delay_on").read_text() == "0"  # truncated, not "0000"
    assert views(sysfs, "status:green") == [LedView(True, 500, 500)]


def test_real_writer_never_creates_files(sysfs: Path) -> None:
    """On a fake tree nothing creates delay_on, as no kernel would: the driver says why."""
    driver = LedDriver(sysfs, COLOURS)
    with pytest.raises(ProbeError, match="no delay_o") as info:
        driver.show(Pattern.READY)
    assert "timer trigger" in info.value.hint
    assert driver.current is None
    assert not (sysfs / LEDS / "status:red" / "delay_on").exists()


def test_missing_led_names_it_and_lists_the_others(sysfs: Path) -> None:
    with pytest.raises(DeviceNotFound) as info:
        LedDriver(sysfs, LedSettings(enabled=True, green="status:grn"), write=led_write)
    assert "'status:grn'" in info.value.message
    assert "available: status:green, status:red" in info.value.message
    with pytest.raises(DeviceNotFound, match="no LEDs") as none:
        LedDriver(sysfs / "elsewhere", COLOURS, write=led_write)
    assert "led.enabled = false" in none.value.hint


def test_kernel_without_timer_trigger(sysfs: Path) -> None:
    (sysfs / LEDS / "status:red" / "trigger").write_text("[none] heartbeat\n")
    with pytest.raises(ProbeError, match="refused the timer trigger"):
        LedDriver(sysfs, COLOURS, write=led_write).show(Pattern.READY)


@pytest.mark.parametrize("value", ["", "0", "-3", "lots"])
def test_bad_max_brightness(sysfs: Path, value: str) -> None:
    (sysfs / LEDS / "status:green" / "max_brightness").write_text(value + "\n")
    with pytest.raises(ProbeError, match="max_brightness"):
        LedDriver(sysfs, COLOURS, write=led_write)


def test_prepare_hands_the_files_to_the_group(sysfs: Path) -> None:
    gid = os.getgid()
    changed = prepare_leds(sysfs, ["status:red"], gid, write=led_write)
    red = sysfs / LEDS / "status:red"
    assert {p.name for p in changed} == {"trigger", "brightness", "delay_on", "delay_off"}
    for path in changed:
        st = path.stat()
        assert st.st_gid == gid and stat.S_IMODE(st.st_mode) == 0o664
    assert "[timer]" in (red / "trigger").read_text()
    # The green LED was not named: untouched.
    assert "[none]" in (sysfs / LEDS / "status:green" / "trigger").read_text()
    with pytest.raises(DeviceNotFound):
        prepare_leds(sysfs, ["status:amber"], gid, write=led_write)


def test_write_attribute_refuses_to_create(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        write_attribute(tmp_path / "delay_on", "5")
    (tmp_path / "brightness").write_text("255\n")
    write_attribute(tmp_path / "brightness", "7")
    assert (tmp_path / "brightness").read_text() == "7"


# --- legend and CLI ----------------------------------------------------------------------


def test_legend_in_both_languages() -> None:
    en, vi = legend("en"), legend("vi")
    assert [r.pattern for r in en] == list(Pattern)
    assert en[0].name == "ready" and en[0].look == "green, steady"
    assert vi[0].name == "Sẵn sàng" and vi[0].look == "xanh lá, sáng liên tục"
    assert {r.pattern: r.name for r in vi}[Pattern.DEGRADED] == "Suy giảm"
    assert {r.pattern: r.name for r in vi}[Pattern.FAULT] == "Sự cố"
    assert set(legend_ids()) <= set(catalogue())
    for a, b in zip(en, vi, strict=True):
        assert a.meaning != b.meaning


def run_cli(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config")
    cli_led.add_parsers(parser.add_subparsers())
    return parser.parse_args(list(argv))


@pytest.fixture
def no_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGE_AGENT_CONFIG", str(tmp_path / "absent.toml"))
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.usefixtures("no_config")
def test_cli_legend_english_and_vietnamese(capsys: pytest.CaptureFixture[str]) -> None:
    args = run_cli("led", "--legend", "--lang", "en")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("Status LED patterns\n") and "red, blinking slowly" in out
    args = run_cli("led", "--lang", "vi")
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("Các kiểu đèn báo trạng thái\n") and "đỏ, nhấp nháy chậm" in out


@pytest.mark.usefixtures("no_config")
def test_cli_language_from_the_locale(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LANG", "vi_VN.UTF-8")
    args = run_cli("led", "--json")
    assert args.func(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0] == {
        "pattern": "ready",
        "name": "Sẵn sàng",
        "look": "xanh lá, sáng liên tục",
        "single_look": "sáng liên tục",
        "meaning": "Mọi kiểm tra đều đạt: điểm cầu sẵn sàng cho phiên họp.",
    }
    monkeypatch.setenv("LC_ALL", "C.UTF-8")  # LC_ALL outranks LANG
    args = run_cli("led", "--json")
    args.func(args)
    assert json.loads(capsys.readouterr().out)[0]["name"] == "ready"


def test_cli_prepare(
    sysfs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[site]\nsite_id = "t1"\nname = "T"\ntier = "commune"\n[paths]\nsysfs_root = "{sysfs}"\n'
    )
    args = run_cli("--config", str(config), "led", "--prepare", "--group", "root")
    # Until [led] is registered in Settings the LED is disabled by default: nothing to do.
    assert args.func(args) == 0
    assert "disabled" in capsys.readouterr().out
    assert "[none]" in (sysfs / LEDS / "status:red" / "trigger").read_text()
