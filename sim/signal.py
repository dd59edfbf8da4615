"""The fixed-time signal plan: green -> amber -> red (all-red, cross street, all-red) -> green."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .spec import SignalTimings

Phase = Literal["green", "amber", "red"]


@dataclass(frozen=True)
class SignalPlan:
    timings: SignalTimings

    def cycle_pos(self, t: float) -> float:
        return (t + self.timings.offset_s) % self.timings.cycle_s

    def phase(self, t: float) -> Phase:
        """Phase of the approach ("main" group) at video time ``t``."""
        p = self.cycle_pos(t)
        if p < self.timings.green_s:
            return "green"
        if p < self.timings.green_s + self.timings.amber_s:
            return "amber"
        return "red"

    def time_into_red(self, t: float) -> float:
        """Seconds since the approach turned red (0 when it is not red)."""
        p = self.cycle_pos(t) - self.timings.green_s - self.timings.amber_s
        return p if p >= 0 else 0.0

    def all_red(self, t: float) -> bool:
        """Both groups red (the clearance intervals)."""
        p = self.cycle_pos(t) - self.timings.green_s - self.timings.amber_s
        tm = self.timings
        return 0 <= p < tm.all_red_s or p >= tm.all_red_s + tm.cross_green_s + tm.cross_amber_s

    def time_to_green(self, t: float) -> float:
        return (self.timings.cycle_s - self.cycle_pos(t)) % self.timings.cycle_s
