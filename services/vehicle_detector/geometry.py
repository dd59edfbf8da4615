"""Stop-line geometry: which side of the line a point is on, and a vehicle's front point."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

Point = tuple[float, float]


def unit(v: Sequence[float]) -> np.ndarray:
    a = np.asarray(v, np.float64)
    n = float(np.hypot(a[0], a[1]))
    if n == 0:
        raise ValueError("zero-length direction")
    return a / n


def front_point(box: Sequence[float], direction: Sequence[float]) -> Point:
    """The point of ``box`` (x1, y1, x2, y2) furthest along ``direction`` from its centre.

    For travel straight down that is the middle of the bottom edge; for a diagonal it is where
    the ray from the centre leaves the box, so a generic ``travel_direction`` works.
    """
    x1, y1, x2, y2 = map(float, box)
    d = unit(direction)
    cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    t = min(hw / abs(d[0]) if d[0] else np.inf, hh / abs(d[1]) if d[1] else np.inf)
    return (cx + t * d[0], cy + t * d[1])


def _cross(u: np.ndarray, v: np.ndarray) -> float:
    return float(u[0] * v[1] - u[1] * v[0])


class StopLine:
    """A polyline with a direction of travel.

    ``offset(p)`` is the signed distance (pixels) of ``p`` past the line, measured along the
    travel direction: negative before the line, positive after it. ``covers(p)`` tells whether
    ``p`` is within the line's lateral extent (plus ``margin``), so traffic passing beside the
    end of the line is not taken for traffic crossing it.
    """

    def __init__(self, points: Sequence[Point], direction: Sequence[float], margin: float = 0.0):
        pts = np.asarray(points, np.float64)
        if len(pts) < 2:
            raise ValueError("a stop line needs at least two points")
        self.points = pts
        self.direction = unit(direction)
        # lateral axis: perpendicular to travel; sort the polyline along it
        self.lateral = np.array([-self.direction[1], self.direction[0]])
        order = np.argsort(pts @ self.lateral)
        self._sorted = pts[order]
        self._lat = self._sorted @ self.lateral
        self.margin = margin

    def offset(self, p: Sequence[float]) -> float:
        q = np.asarray(p, np.float64)
        lat = float(q @ self.lateral)
        s, L = self._sorted, self._lat
        i = int(np.clip(np.searchsorted(L, lat) - 1, 0, len(s) - 2))
        a, b = s[i], s[i + 1]
        seg = b - a
        # where the travel ray through q meets this segment's line (extended beyond the ends)
        denom = _cross(seg, self.direction)
        if abs(denom) < 1e-9:  # segment parallel to travel: fall back to the along-travel distance
            return float((q - a) @ self.direction)
        t = _cross(seg, q - a) / denom
        return t  # q = point_on_line + t * direction

    def covers(self, p: Sequence[float]) -> bool:
        lat = float(np.asarray(p, np.float64) @ self.lateral)
        return self._lat[0] - self.margin <= lat <= self._lat[-1] + self.margin


def in_polygon(p: Sequence[float], polygon: Sequence[Point]) -> bool:
    poly = np.asarray(polygon, np.float32).reshape(-1, 1, 2)
    return cv2.pointPolygonTest(poly, (float(p[0]), float(p[1])), False) >= 0


def distance_outside(p: Sequence[float], polygon: Sequence[Point]) -> float:
    """How far ``p`` lies outside ``polygon`` (px); 0 or less inside."""
    poly = np.asarray(polygon, np.float32).reshape(-1, 1, 2)
    return -cv2.pointPolygonTest(poly, (float(p[0]), float(p[1])), True)
