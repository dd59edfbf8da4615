"""Vehicle paths on the ground: straight lanes and the right turn, sampled by arc length."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .geometry import STOP_Y, Layout

APPROACH_START_Y = 170.0
STEP = 0.25  # metres between path samples


@dataclass
class Path:
    points: np.ndarray  # (N, 2) ground points every STEP metres
    stop_s: float | None  # arc length of the stop line (None: no stop line on this path)
    turn_s: float | None = None  # arc length where a turn starts

    @property
    def length(self) -> float:
        return (len(self.points) - 1) * STEP

    def pos(self, s: float) -> np.ndarray:
        """Point at arc length ``s``, extrapolated straight beyond either end."""
        n = len(self.points) - 1
        f = s / STEP
        if f <= 0:
            d = self.points[1] - self.points[0]
            return self.points[0] + d * f
        if f >= n:
            d = self.points[n] - self.points[n - 1]
            return self.points[n] + d * (f - n)
        i = int(f)
        r = f - i
        return self.points[i] * (1 - r) + self.points[i + 1] * r


def _line(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    n = max(int(round(np.linalg.norm(b - a) / STEP)), 1)
    t = np.linspace(0.0, 1.0, n + 1)[:, None]
    return a + (b - a) * t


def straight_approach(x: float) -> Path:
    pts = _line(np.array([x, APPROACH_START_Y]), np.array([x, -40.0]))
    return Path(pts, stop_s=APPROACH_START_Y - STOP_Y)


def right_turn(layout: Layout) -> Path:
    """Kerb lane -> stop line -> quarter circle to the drivers' right (image left, -X)."""
    x = layout.lane_centre(0)
    y0 = STOP_Y - 0.5
    r = layout.turn_radius
    a = _line(np.array([x, APPROACH_START_Y]), np.array([x, y0]))
    n = int(round((np.pi / 2 * r) / STEP))
    th = np.linspace(0.0, np.pi / 2, n + 1)[1:]
    cx, cy = x - r, y0
    arc = np.column_stack([cx + r * np.cos(th), cy - r * np.sin(th)])
    tail = _line(arc[-1], np.array([cx - 60.0, cy - r]))[1:]
    return Path(np.vstack([a, arc, tail]), stop_s=APPROACH_START_Y - STOP_Y, turn_s=APPROACH_START_Y - y0)


def opposing(layout: Layout, lane: int) -> Path:
    x = layout.opposing_centre(lane)
    return Path(_line(np.array([x, -2.0]), np.array([x, 220.0])), stop_s=None)
