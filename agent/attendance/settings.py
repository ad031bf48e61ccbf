"""Attendance settings (the `[attendance]` section). Pydantic only: agent.config imports this,
so nothing heavy may be imported here.

Regions are in normalised frame coordinates (0,0 top left, 1,1 bottom right), so they survive
a change of camera resolution. A face counts when its box centre is inside an `include`
region (or anywhere, when there is none) and inside no `exclude` region:

    [attendance]
    exclude = [{ rect = [0.62, 0.05, 0.98, 0.45] }]          # the TV showing other sites
    include = [{ polygon = [[0, 0.3], [1, 0.3], [1, 1], [0, 1]] }]
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from agent.attendance.models import DEFAULT_MODELS_DIR
from agent.messages import message
from agent.validation import Invalid

Point = tuple[float, float]


class Region(BaseModel):
    """A rectangle [x1, y1, x2, y2] or a polygon [[x, y], ...], normalised to 0..1."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rect: tuple[float, float, float, float] | None = Field(
        None, description="[x1, y1, x2, y2], top-left and bottom-right corners, 0..1"
    )
    polygon: list[Point] | None = Field(
        None, description="at least three [x, y] corners, 0..1, in drawing order"
    )

    @field_validator("rect")
    @classmethod
    def _rect(
        cls, value: tuple[float, float, float, float] | None
    ) -> tuple[float, float, float, float] | None:
        if value is None:
            return None
        x1, y1, x2, y2 = value
        if not all(0.0 <= v <= 1.0 for v in value):
            raise Invalid(message("config.attendance.rect_range"))
        if not (x1 < x2 and y1 < y2):
            raise Invalid(message("config.attendance.rect_order"))
        return value

    @field_validator("polygon")
    @classmethod
    def _polygon(cls, value: list[Point] | None) -> list[Point] | None:
        if value is None:
            return None
        if len(value) < 3:
            raise Invalid(message("config.attendance.polygon_corners"))
        if not all(0.0 <= c <= 1.0 for point in value for c in point):
            raise Invalid(message("config.attendance.polygon_range"))
        return value

    @model_validator(mode="after")
    def _one_shape(self) -> Region:
        if (self.rect is None) == (self.polygon is None):
            raise Invalid(message("config.attendance.one_shape"))
        return self

    def corners(self) -> list[Point]:
        if self.rect is not None:
            x1, y1, x2, y2 = self.rect
            return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
        assert self.polygon is not None
        return list(self.polygon)


class AttendanceSettings(BaseModel):
    """Counting people from the site camera during sessions."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(False, description="count attendance during scheduled sessions")
    detector: Literal["centerface"] = Field(
        "centerface", description="face detector; each report names the one that counted"
    )
    models_dir: Path = Field(
        DEFAULT_MODELS_DIR,
        description="where `python -m agent.attendance.models install DIR` put the models",
    )
    threshold: float = Field(
        0.3, gt=0, lt=1, description="detector confidence above which a face counts"
    )
    input_width: int = Field(
        640,
        ge=160,
        le=1920,
        description="width the whole frame is scaled to for the first pass (never "
        "enlarged); finds the larger faces. Time and memory grow with its square "
        "(640: ~60 ms, ~60 MB; 1280: ~250 ms, ~240 MB on 2 cores)",
    )
    tiling: Literal["auto", "off", "always"] = Field(
        "auto",
        description="second pass on overlapping tiles at tile_width, for faces too small "
        "for the first: auto = when a burst's first frame shows that it finds more",
    )
    tile_width: int = Field(
        1280,
        ge=160,
        le=3840,
        description="width the frame is scaled to for the tiled pass (at most twice the "
        "camera's): faces must be ~28 px high at this scale to be found",
    )
    tile_px: int = Field(
        640,
        ge=256,
        le=1280,
        description="largest tile side in pixels at tile_width; bounds the detector's "
        "memory (~235 bytes per pixel of its input)",
    )
    include: list[Region] = Field(
        default_factory=list,
        description="count only faces inside these regions (none: the whole frame)",
    )
    exclude: list[Region] = Field(
        default_factory=list,
        description="never count faces here, e.g. the TV showing other sites",
    )
    interval_s: float = Field(60.0, ge=5, le=3600, description="seconds between bursts")
    burst_frames: int = Field(
        5, ge=1, le=30, description="frames per burst; the count is their median"
    )
    burst_spacing_s: float = Field(
        0.4, ge=0, le=10, description="time between the frames of a burst"
    )
    min_usable: float = Field(
        0.5, gt=0, le=1, description="fraction of a burst's frames that must be usable"
    )
    dark_luma: float = Field(
        16.0, ge=0, le=255, description="mean luma below: camera covered or room dark"
    )
    min_contrast: float = Field(
        4.0, ge=0, description="luma standard deviation below: lens covered (uniform picture)"
    )
    deadband: int = Field(
        1, ge=0, description="changes of at most this many people wait settle_bursts"
    )
    deadband_pct: float = Field(
        5.0, ge=0, le=50, description="... or of at most this percentage of the count"
    )
    rise_bursts: int = Field(
        1, ge=1, le=20, description="bursts a larger count must persist before it shows"
    )
    fall_bursts: int = Field(
        3, ge=1, le=20, description="bursts a smaller count must persist before it shows"
    )
    settle_bursts: int = Field(
        3, ge=1, le=20, description="bursts a change inside the deadband must persist"
    )
    blind_hold_bursts: int = Field(
        1,
        ge=0,
        le=20,
        description="blind bursts (dark, covered, no frames) that keep the last count "
        "before it becomes unknown",
    )
    threads: int = Field(
        0, ge=0, le=64, description="OpenCV threads for detection; 0: OpenCV's default"
    )
