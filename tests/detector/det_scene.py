"""A small drawn intersection for the detector tests: cars (boxes) driving down the image across
a stop line at y=200, and a three-lamp signal head whose lit lamp follows a given phase
function. Deterministic for a seed; independent of the project's simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from stopline.shared.config import CameraConfig

W, H = 640, 360
STOP_Y = 200.0
HEAD = (590, 20, 24, 60)  # x, y, w, h of the signal housing


@dataclass
class Car:
    start_s: float  # when its front enters at the top of the frame
    x: float  # left edge
    speed_px_s: float
    w: int = 70
    h: int = 110
    colour: tuple[int, int, int] = (40, 40, 170)
    stop_at: float | None = None  # front y where it stops (creeping/stopped cars)

    def front_y(self, t: float) -> float:
        y = -10 + (t - self.start_s) * self.speed_px_s
        return min(y, self.stop_at) if self.stop_at is not None else y

    def crossing_time(self) -> float:
        return self.start_s + (STOP_Y + 10) / self.speed_px_s


def draw_head(img: np.ndarray, phase: str, night: bool = False) -> None:
    x, y, w, h = HEAD
    cv2.rectangle(img, (x, y), (x + w, y + h), (25, 25, 25), -1)
    lamps = {"red": (0, (40, 40, 255)), "amber": (1, (0, 190, 255)), "green": (2, (170, 255, 60))}
    for name, (k, colour) in lamps.items():
        c = (x + w // 2, y + 10 + k * 20)
        if name == phase:
            cv2.circle(img, c, 8, colour, -1)
            if night:  # glare: halo and a blown-out core
                overlay = img.copy()
                cv2.circle(overlay, c, 14, colour, -1)
                cv2.addWeighted(overlay, 0.4, img, 0.6, 0, img)
                cv2.circle(img, c, 4, (255, 255, 255), -1)
        else:
            cv2.circle(img, c, 8, (45, 45, 45), -1)


def frames(duration_s: float, fps: float, cars: list[Car], phase_at: Callable[[float], str],
           *, night: bool = False, seed: int = 0) -> Iterator[tuple[int, float, np.ndarray, dict[int, tuple]]]:
    """(frame index, video time, BGR frame, {car index: box}) for each frame."""
    rng = np.random.default_rng(seed)
    base = 45 if night else 115
    bg = (rng.normal(base, 6, (H, W, 1)).clip(0, 255).astype(np.uint8)).repeat(3, axis=2)
    cv2.line(bg, (0, int(STOP_Y)), (W, int(STOP_Y)), (235, 235, 235) if not night else (120, 120, 120), 4)
    for i in range(int(round(duration_s * fps))):
        t = i / fps
        img = bg.copy()
        boxes = {}
        for k, car in enumerate(cars):
            fy = car.front_y(t)
            if t < car.start_s or fy - car.h > H:
                continue
            x1, y1, x2, y2 = car.x, fy - car.h, car.x + car.w, fy
            colour = car.colour if not night else tuple(int(c * 0.6) for c in car.colour)
            cv2.rectangle(img, (int(x1), int(y1)), (int(x2), int(y2)), colour, -1)
            cv2.rectangle(img, (int(x1) + 8, int(y2) - 40), (int(x2) - 8, int(y2) - 15), (30, 30, 30), -1)
            if night:  # headlights
                cv2.circle(img, (int(x1) + 12, int(y2) - 5), 6, (255, 255, 255), -1)
                cv2.circle(img, (int(x2) - 12, int(y2) - 5), 6, (255, 255, 255), -1)
            boxes[k] = (max(0.0, x1), max(0.0, y1), min(W, x2), min(H, y2))
        draw_head(img, phase_at(t), night)
        noise = rng.integers(-3, 4, img.shape, dtype=np.int16)
        yield i, t, np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8), boxes


def camera(**overrides) -> CameraConfig:
    data = {
        "id": "cam1", "frame_size": [W, H], "fps": 25,
        "stop_line": [[0, STOP_Y], [W, STOP_Y]], "travel_direction": [0, 1],
        "signal": {"mode": "roi", "heads": [{"id": "h1", "roi": {"x": HEAD[0] - 2, "y": HEAD[1] - 2,
                                                                 "w": HEAD[2] + 4, "h": HEAD[3] + 4}}]},
        "rules": {"grace_s": 0.0, "min_speed_px_s": 20},
        "evidence": {"burst_size": 4},
    }
    data.update(overrides)
    return CameraConfig.model_validate(data)
