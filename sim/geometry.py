"""Road layout in metres and the pinhole camera that looks at it.

World frame: X to the right as the camera sees it, Y along the road away from the camera,
Z up; metres. Approach vehicles drive toward the camera (-Y), so their fronts face it. The
approach lanes lie at X in [-lanes*lane_w, 0] (lane 0 is the kerb lane, image left, the
drivers' right), a painted median at [0, 1], two opposing lanes beyond it. The stop line is at
Y = stop_y; the crosswalk and the cross street lie between it and the camera, which stands on
the far corner of the intersection on a 6 m pole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LANE_W = 3.3
MEDIAN_W = 1.0
OPPOSING_LANES = 2
SIDEWALK_W = 3.5
STOP_Y = 22.0  # middle of the painted stop line
STOP_LINE_W = 0.4
CROSSWALK = (STOP_Y - 4.0, STOP_Y - 1.0)  # Y range of the zebra
CROSS_STREET = (STOP_Y - 18.5, STOP_Y - 4.5)  # Y range of the cross street's carriageway
CAMERA_HEIGHT = 6.0
ROAD_END_Y = 260.0


@dataclass(frozen=True)
class Layout:
    lanes: int

    @property
    def kerb_x(self) -> float:
        """X of the approach's kerb (image left edge of the carriageway)."""
        return -self.lanes * LANE_W

    @property
    def far_kerb_x(self) -> float:
        return MEDIAN_W + OPPOSING_LANES * LANE_W

    def lane_centre(self, i: int) -> float:
        return self.kerb_x + (i + 0.5) * LANE_W

    def opposing_centre(self, i: int) -> float:
        return MEDIAN_W + (i + 0.5) * LANE_W

    @property
    def signal_pos(self) -> tuple[float, float, float]:
        """Centre of the visible head's face: the opposing approach's far-side median head,
        which runs the same phase as the approach and faces the camera."""
        return (MEDIAN_W * 0.5, STOP_Y + 0.6, 2.9)

    @property
    def turn_radius(self) -> float:
        # Right turn from the kerb lane into the near westbound lane of the cross street.
        return (STOP_Y - 0.5) - (CROSS_STREET[1] - 1.75)


class Camera:
    """Pinhole camera; ``project`` maps world points (N,3) to pixels (N,2)."""

    def __init__(self, layout: Layout, size: tuple[int, int]):
        self.size = size
        self.layout = layout
        self.position = np.array([layout.kerb_x - 1.6, 0.0, CAMERA_HEIGHT])
        w, h = size
        self.cx, self.cy = w / 2.0, h / 2.0
        # The approach plus the median should fill the width at the stop line; then zoom out
        # until the median signal head fits under the top edge with the stop line at 70 %.
        span = layout.lanes * LANE_W + MEDIAN_W + 1.2
        target = np.array([layout.kerb_x + span / 2 - 0.6, STOP_Y, 0.0])
        fwd = target - self.position
        self.focal = w * float(np.linalg.norm(fwd)) / span
        sx, sy, sz = layout.signal_pos
        head_top = np.array([[sx, sy, sz + 0.6]])
        stop_mid = np.array([[target[0], STOP_Y, 0.0]])
        for _ in range(60):
            self._aim(fwd, 0.0)
            # tilt up so that the stop line's middle lands at 70 % of the height
            for _ in range(3):
                v = self.project(stop_mid)[0, 1]
                self._aim(fwd, self._pitch - np.arctan((v - 0.70 * h) / self.focal))
            if self.project(head_top)[0, 1] >= 0.03 * h:
                break
            self.focal *= 0.97

    _pitch = 0.0

    def _aim(self, fwd: np.ndarray, pitch_up: float) -> None:
        f = fwd / np.linalg.norm(fwd)
        right = np.cross(f, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(f, right)
        f2 = f * np.cos(pitch_up) - down * np.sin(pitch_up)
        self.R = np.stack([right, np.cross(f2, right), f2])
        self._pitch = pitch_up

    def to_camera(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.position) @ self.R.T

    def project(self, pts: np.ndarray, shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        pc = (np.asarray(pts, dtype=np.float64) - self.position) @ self.R.T
        z = np.maximum(pc[:, 2:3], 1e-3)
        return pc[:, :2] * (self.focal / z) + (self.cx + shift[0], self.cy + shift[1])

    def depth(self, pts: np.ndarray) -> np.ndarray:
        return ((np.asarray(pts, dtype=np.float64) - self.position) @ self.R.T)[:, 2]

    def ground_homography(self, metres_to_map: np.ndarray) -> np.ndarray:
        """Homography from a top-down map image to this view, given map = A @ [X, Y, 1]."""
        # Ground (Z=0) -> pixels: K [r1 r2 t] with t = -R C.
        K = np.array([[self.focal, 0, self.cx], [0, self.focal, self.cy], [0, 0, 1.0]])
        t = -self.R @ self.position
        H_ground = K @ np.column_stack([self.R[:, 0], self.R[:, 1], t])
        return H_ground @ np.linalg.inv(metres_to_map)

    def ground_to_pixel(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
        return self.project(np.column_stack([xy, np.zeros(len(xy))]))

    def pixel_to_ground(self, uv: np.ndarray) -> np.ndarray:
        """Back-project pixels onto Z=0 (rays above the horizon give points behind)."""
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        rays_c = np.column_stack([(uv[:, 0] - self.cx) / self.focal, (uv[:, 1] - self.cy) / self.focal, np.ones(len(uv))])
        rays = rays_c @ self.R
        s = -self.position[2] / rays[:, 2]
        return self.position[:2] + rays[:, :2] * s[:, None]
