"""The ``camera.yaml`` a user would write for the rendered view (``CameraConfig``)."""

from __future__ import annotations

import cv2
import numpy as np

from stopline.shared.config import Box, CameraConfig, ExemptZone, Lane, SignalConfig, SignalHead

from .geometry import CROSS_STREET, CROSSWALK, LANE_W, STOP_Y
from .scene import Scene


def _clip_to_frame(poly: np.ndarray, size: tuple[int, int]) -> list[tuple[float, float]]:
    w, h = size
    frame = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    area, inter = cv2.intersectConvexConvex(poly.astype(np.float32), frame)
    if area <= 0 or inter is None:
        return []
    return [(round(float(x), 1), round(float(y), 1)) for x, y in inter.reshape(-1, 2)]


def camera_config(scene: Scene, signal_box: tuple[float, float, float, float]) -> CameraConfig:
    spec, lay, cam = scene.spec, scene.layout, scene.camera
    w, h = spec.size
    stop = cam.ground_to_pixel(np.array([[lay.kerb_x, STOP_Y], [0.0, STOP_Y]]))
    # the visible part of the stop line (a straight ground line stays straight in the image)
    ends = []
    for t in np.linspace(0.0, 1.0, 201):
        p = stop[0] * (1 - t) + stop[1] * t
        if 0 <= p[0] <= w - 1 and 0 <= p[1] <= h - 1:
            ends.append(p)
    stop_line = [(round(float(p[0]), 1), round(float(p[1]), 1)) for p in (ends[0], ends[-1])]
    c = lay.lane_centre(lay.lanes - 1)
    a, b = cam.ground_to_pixel(np.array([[c, STOP_Y + 4.0], [c, STOP_Y - 2.0]]))
    d = (b - a) / np.linalg.norm(b - a)
    lanes = []
    for i in range(lay.lanes):
        x0 = lay.kerb_x + i * LANE_W
        quad = cam.ground_to_pixel(np.array([[x0, CROSSWALK[0]], [x0 + LANE_W, CROSSWALK[0]],
                                             [x0 + LANE_W, STOP_Y + 45.0], [x0, STOP_Y + 45.0]]))
        poly = _clip_to_frame(quad, spec.size)
        if len(poly) >= 3:
            movement = "straight_right" if i == 0 and spec.right_turn_share > 0 else "straight"
            lanes.append(Lane(id=f"lane{i + 1}", polygon=poly, movement=movement))
    exempt = []
    if spec.right_turn_on_red and spec.right_turn_share > 0:
        # the kerb lane's turning corridor past the stop line, left of where straight traffic runs
        zone = cam.ground_to_pixel(np.array([[lay.kerb_x - 15.0, STOP_Y - 0.6], [lay.lane_centre(0) - 0.9, STOP_Y - 0.6],
                                             [lay.lane_centre(0) - 0.9, CROSS_STREET[1] - 4.0], [lay.kerb_x - 15.0, CROSS_STREET[1] - 4.0]]))
        poly = _clip_to_frame(zone, spec.size)
        if len(poly) >= 3:
            exempt.append(ExemptZone(name="right-turn-on-red", polygon=poly))
    pad = spec.shake_px + 3
    x0, y0 = max(int(signal_box[0]) - pad, 0), max(int(signal_box[1]) - pad, 0)
    x1, y1 = min(int(np.ceil(signal_box[2])) + pad, w - 1), min(int(np.ceil(signal_box[3])) + pad, h - 1)
    head = SignalHead(id="head1", group="main", roi=Box(x=x0, y=y0, w=max(x1 - x0, 1), h=max(y1 - y0, 1)))
    region = {"us": "us", "eu": "eu"}.get(spec.region, "auto")
    return CameraConfig(
        id=spec.camera_id,
        name=f"synthetic intersection, seed {spec.seed}, {spec.lighting}",
        source="video.mp4",
        frame_size=(w, h),
        fps=spec.fps,
        stop_line=stop_line,
        travel_direction=(round(float(d[0]), 3), round(float(d[1]), 3)),
        lanes=lanes,
        exempt_zones=exempt,
        signal=SignalConfig(mode="roi", heads=[head]),
        region=region,  # type: ignore[arg-type]
    )
