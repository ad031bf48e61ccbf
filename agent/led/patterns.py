"""Status LED: the pattern table, the choice of pattern, the legend. Pure.

The sysfs side (writing the patterns to /sys/class/leds) is agent/led/driver.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.checks.model import Verdict
from agent.i18n import Lang, say

_NAME_PATTERN = r"^[^/\x00\s]{1,64}$"


class LedSettings(BaseModel):
    """`[led]`: which LED(s) show the site's state."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        False,
        description="Drive a status LED. Most mini-PCs have none: see `edge-agent devices`.",
    )
    single: str | None = Field(
        None,
        pattern=_NAME_PATTERN,
        description="One LED for every pattern (blink codes), instead of red/green(/blue).",
    )
    red: str = Field("status:red", pattern=_NAME_PATTERN, description="Red LED class name.")
    green: str = Field("status:green", pattern=_NAME_PATTERN, description="Green LED name.")
    blue: str | None = Field(
        None, pattern=_NAME_PATTERN, description="Blue LED name, if any (white when identifying)."
    )
    identify_s: float = Field(
        10.0, gt=0, le=600, description="How long `identify` blinks before the LED goes back."
    )

    @field_validator("single", "red", "green", "blue")
    @classmethod
    def _not_dots(cls, value: str | None) -> str | None:
        if value in (".", ".."):
            raise ValueError("an LED name, as listed by `edge-agent devices`")
        return value

    @model_validator(mode="after")
    def _single_or_colours(self) -> LedSettings:
        chosen = {"red", "green", "blue"} & self.model_fields_set
        if self.single is not None and chosen:
            raise ValueError(f"set either led.single or led.{'/'.join(sorted(chosen))}, not both")
        if self.single is None and self.red == self.green:
            raise ValueError("led.red and led.green must be different LEDs")
        return self

    def names(self) -> dict[Colour, str]:
        """Colour -> LED name; a single LED is listed as WHITE."""
        if self.single is not None:
            return {Colour.WHITE: self.single}
        found = {Colour.RED: self.red, Colour.GREEN: self.green}
        if self.blue is not None:
            found[Colour.BLUE] = self.blue
        return found


class Pattern(StrEnum):
    READY = "ready"
    CHECKING = "checking"
    DEGRADED = "degraded"
    FAULT = "fault"
    NO_BROKER = "no_broker"
    IDENTIFY = "identify"
    OFF = "off"


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"
    WHITE = "white"  # a single LED of whatever colour it is


@dataclass(frozen=True)
class Light:
    """What one LED does: dark, steady, or blinking on_ms/off_ms."""

    on_ms: int = 0
    off_ms: int = 0

    @property
    def lit(self) -> bool:
        return self.on_ms > 0

    @property
    def blinking(self) -> bool:
        return self.on_ms > 0 and self.off_ms > 0


DARK = Light()
STEADY = Light(1000, 0)


def blink(on_ms: int, off_ms: int) -> Light:
    return Light(on_ms, off_ms)


@dataclass(frozen=True)
class PatternSpec:
    colours: Mapping[Colour, Light]  # colours not listed stay dark
    single: Light
    look: str  # message ids (rendered in the reader's language when shown)
    single_look: str
    meaning: str

    def light(self, colour: Colour) -> Light:
        if colour is Colour.WHITE:
            return self.single
        return self.colours.get(colour, DARK)


_ALL_FAST = blink(100, 100)

PATTERNS: Mapping[Pattern, PatternSpec] = {
    Pattern.READY: PatternSpec(
        {Colour.GREEN: STEADY},
        STEADY,
        "led.look.green_steady",
        "led.look.steady",
        "led.meaning.ready",
    ),
    Pattern.CHECKING: PatternSpec(
        {Colour.GREEN: blink(500, 500)},
        blink(500, 500),
        "led.look.green_blinking",
        "led.look.blinking",
        "led.meaning.checking",
    ),
    Pattern.DEGRADED: PatternSpec(
        {Colour.RED: STEADY, Colour.GREEN: STEADY},
        blink(1800, 200),
        "led.look.amber_steady",
        "led.look.dark_blink",
        "led.meaning.degraded",
    ),
    Pattern.FAULT: PatternSpec(
        {Colour.RED: blink(250, 250)},
        blink(250, 250),
        "led.look.red_fast",
        "led.look.fast",
        "led.meaning.fault",
    ),
    Pattern.NO_BROKER: PatternSpec(
        {Colour.RED: blink(1000, 1000)},
        blink(100, 1900),
        "led.look.red_slow",
        "led.look.flash",
        "led.meaning.no_broker",
    ),
    Pattern.IDENTIFY: PatternSpec(
        {Colour.RED: _ALL_FAST, Colour.GREEN: _ALL_FAST, Colour.BLUE: _ALL_FAST},
        _ALL_FAST,
        "led.look.white_very_fast",
        "led.look.very_fast",
        "led.meaning.identify",
    ),
    Pattern.OFF: PatternSpec(
        {},
        DARK,
        "led.look.dark",
        "led.look.dark",
        "led.meaning.off",
    ),
}

PATTERN_NAMES: Mapping[Pattern, str] = {
    Pattern.READY: "led.name.ready",
    Pattern.CHECKING: "led.name.checking",
    Pattern.DEGRADED: "led.name.degraded",
    Pattern.FAULT: "led.name.fault",
    Pattern.NO_BROKER: "led.name.no_broker",
    Pattern.IDENTIFY: "led.name.identify",
    Pattern.OFF: "led.name.off",
}


def choose_pattern(
    verdict: Verdict | None, broker_connected: bool, checking: bool, identify: bool
) -> Pattern:
    """What the LED shows. The centre's identify request wins (someone is looking for this
    box); a running check next (a technician just started it); then the worst news: a local
    fault before a lost broker (the fault is what the technician on site can fix)."""
    if identify:
        return Pattern.IDENTIFY
    if checking:
        return Pattern.CHECKING
    if verdict is Verdict.FAULT:
        return Pattern.FAULT
    if not broker_connected:
        return Pattern.NO_BROKER
    if verdict is None:
        return Pattern.OFF
    if verdict is Verdict.DEGRADED:
        return Pattern.DEGRADED
    return Pattern.READY


@dataclass(frozen=True)
class LegendRow:
    pattern: Pattern
    name: str
    look: str
    single_look: str
    meaning: str


def legend(lang: Lang = "en") -> list[LegendRow]:
    """The documented table, in English or Vietnamese."""
    return [
        LegendRow(
            pattern,
            say(PATTERN_NAMES[pattern], lang),
            say(spec.look, lang),
            say(spec.single_look, lang),
            say(spec.meaning, lang),
        )
        for pattern, spec in PATTERNS.items()
    ]


def legend_ids() -> list[str]:
    """Every message id of the legend (so tests can check the catalogue covers them)."""
    texts = list(PATTERN_NAMES.values())
    for spec in PATTERNS.values():
        texts += [spec.look, spec.single_look, spec.meaning]
    return texts


def kernel_delays(light: Light) -> tuple[int, int]:
    """(delay_on, delay_off) for the timer trigger: 0 on is dark, 0 off is steady."""
    if not light.lit:
        return 0, 1000
    return light.on_ms, light.off_ms


class IdentifyTimer:
    """`identify` for N seconds, then whatever the LED showed before. Monotonic seconds."""

    def __init__(self) -> None:
        self._until: float | None = None

    def start(self, now: float, seconds: float) -> None:
        self._until = now + seconds

    def active(self, now: float) -> bool:
        return self._until is not None and now < self._until

    def ends_at(self, now: float) -> float | None:
        """When to look again (None when not identifying)."""
        return self._until if self.active(now) else None
