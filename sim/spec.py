"""What a synthetic scene is made of: every knob the renderer reads, in one frozen dataclass.

The same ``SceneSpec`` (same seed) always renders the same truth and the same raw frames.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

Lighting = Literal["day", "dusk", "night"]
RegionMix = Literal["us", "eu", "mixed"]


@dataclass(frozen=True)
class SignalTimings:
    """Fixed-time plan of the approach ("main") and the cross street, seconds."""

    green_s: float = 14.0
    amber_s: float = 3.5
    all_red_s: float = 1.5
    cross_green_s: float = 12.0
    cross_amber_s: float = 3.0
    offset_s: float = 3.0  # where in the cycle video time 0 falls

    @property
    def cycle_s(self) -> float:
        return self.green_s + self.amber_s + 2 * self.all_red_s + self.cross_green_s + self.cross_amber_s

    def __post_init__(self) -> None:
        for name in ("green_s", "amber_s", "cross_green_s", "cross_amber_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"signal timing {name} must be > 0")
        if self.all_red_s < 0:
            raise ValueError("signal timing all_red_s must be >= 0")


@dataclass(frozen=True)
class SceneSpec:
    seed: int = 0
    duration_s: float = 60.0
    size: tuple[int, int] = (1280, 720)
    fps: float = 25.0
    lighting: Lighting = "day"
    camera_id: str = "sim"
    lanes: int = 2  # approach lanes (2-4); more lanes widen the view and shrink the plates
    region: RegionMix = "mixed"
    arrivals_per_lane_h: float = 720.0  # mean vehicle arrivals per approach lane per hour
    red_runner_share: float = 0.4  # share of drivers first to face amber/red who run it
    right_turn_share: float = 0.3  # share of vehicles in the kerb lane that turn right
    right_turn_on_red: bool = True  # the approach allows a right turn on red after a stop
    opposing_traffic: bool = True  # vehicles leaving the intersection on the opposite lanes
    noise: float = 1.0  # sensor noise scale (0 = none)
    shake_px: int = 2  # camera shake amplitude, whole pixels
    motion_blur: bool = True
    signal: SignalTimings = field(default_factory=SignalTimings)
    warmup_s: float = 25.0  # traffic simulated before frame 0 so the approach is populated

    def __post_init__(self) -> None:
        w, h = self.size
        if not (160 <= w <= 7680 and 120 <= h <= 4320):
            raise ValueError(f"frame size {w}x{h} is out of range (160x120 .. 7680x4320)")
        if w % 2 or h % 2:
            raise ValueError(f"frame size {w}x{h} must have even width and height (H.264)")
        if not (1.0 <= self.fps <= 120.0):
            raise ValueError(f"fps {self.fps} is out of range 1..120")
        if not (0.0 < self.duration_s <= 3600.0):
            raise ValueError(f"duration {self.duration_s} s is out of range (0, 3600]")
        if not (2 <= self.lanes <= 4):
            raise ValueError(f"lanes must be 2..4, not {self.lanes}")
        if self.lighting not in ("day", "dusk", "night"):
            raise ValueError(f"lighting must be day, dusk or night, not {self.lighting!r}")
        if self.region not in ("us", "eu", "mixed"):
            raise ValueError(f"region must be us, eu or mixed, not {self.region!r}")
        for name in ("red_runner_share", "right_turn_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within 0..1, not {v}")
        if self.arrivals_per_lane_h < 0:
            raise ValueError("arrivals_per_lane_h must be >= 0")

    @property
    def n_frames(self) -> int:
        return int(round(self.duration_s * self.fps))

    def with_(self, **changes: object) -> "SceneSpec":
        return replace(self, **changes)  # type: ignore[arg-type]


def parse_size(text: str) -> tuple[int, int]:
    """``"1280x720"`` -> ``(1280, 720)``; raises ValueError with the expected form."""
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise ValueError(f"size {text!r} is not WIDTHxHEIGHT, e.g. 1280x720") from None
