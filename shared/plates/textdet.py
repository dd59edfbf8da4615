"""DB text detector (PP-OCRv4 det ONNX from the rapidocr wheel) returning rotated text boxes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .engines import ort_session, rapidocr_model_dir


@dataclass
class TextBox:
    corners: np.ndarray  # 4x2 float32, tl tr br bl, image pixels
    score: float         # mean text probability inside the box

    @property
    def width(self) -> float:
        return float(np.linalg.norm(self.corners[1] - self.corners[0]))

    @property
    def height(self) -> float:
        return float(np.linalg.norm(self.corners[3] - self.corners[0]))

    @property
    def angle(self) -> float:
        d = self.corners[1] - self.corners[0]
        return float(np.degrees(np.arctan2(d[1], d[0])))

    @property
    def centre(self) -> np.ndarray:
        return self.corners.mean(axis=0)


def order_corners(pts: np.ndarray) -> np.ndarray:
    """tl, tr, br, bl for a rotated rectangle (angle within +-45 degrees of horizontal)."""
    pts = np.asarray(pts, dtype=np.float32)
    xs = pts[np.argsort(pts[:, 0])]
    left, right = xs[:2], xs[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


class TextDetector:
    """Finds text lines. ``max_side`` bounds the network input (speed vs. smallest text)."""

    def __init__(self, model: Path | str | None = None, max_side: int = 640, threads: int = 1,
                 thresh: float = 0.3, box_thresh: float = 0.5, unclip: float = 1.6):
        self.session = ort_session(model or rapidocr_model_dir() / "ch_PP-OCRv4_det_infer.onnx", threads)
        self.input_name = self.session.get_inputs()[0].name
        self.max_side = max_side
        self.thresh = thresh
        self.box_thresh = box_thresh
        self.unclip = unclip

    def probability_map(self, image: np.ndarray) -> tuple[np.ndarray, float, float]:
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        nh = max(32, int(round(h * scale / 32)) * 32)
        nw = max(32, int(round(w * scale / 32)) * 32)
        img = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        x = (img.astype(np.float32) / 127.5 - 1.0).transpose(2, 0, 1)[None]
        prob = self.session.run(None, {self.input_name: x})[0][0, 0]
        return prob, w / nw, h / nh

    def detect(self, image: np.ndarray) -> list[TextBox]:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        prob, sx, sy = self.probability_map(image)
        bitmap = (prob > self.thresh).astype(np.uint8)
        bitmap = cv2.dilate(bitmap, np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        boxes: list[TextBox] = []
        for c in contours[:1000]:
            if len(c) < 4:
                continue
            (cx, cy), (rw, rh), ang = cv2.minAreaRect(c)
            if min(rw, rh) < 2:
                continue
            x, y, bw, bh = cv2.boundingRect(c)
            mask = np.zeros((bh, bw), np.uint8)
            cv2.fillPoly(mask, [c.reshape(-1, 2) - [x, y]], 1)
            score = float(cv2.mean(prob[y:y + bh, x:x + bw], mask)[0])
            if score < self.box_thresh:
                continue
            # DB shrinks text regions when training; grow back by area * ratio / perimeter
            d = rw * rh * self.unclip / (2 * (rw + rh))
            rect = ((cx, cy), (rw + 2 * d, rh + 2 * d), ang)
            pts = cv2.boxPoints(rect)
            pts[:, 0] *= sx
            pts[:, 1] *= sy
            boxes.append(TextBox(order_corners(pts), score))
        return boxes
