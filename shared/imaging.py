"""Small image helpers shared by the services (JPEG in/out, crops)."""

from __future__ import annotations

import cv2
import numpy as np

XYXY = tuple[float, float, float, float]


def decode_jpeg(data: bytes) -> np.ndarray:
    """BGR image from JPEG/PNG bytes; ValueError when the bytes are not an image."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError("bytes are not a decodable image")
    return img


def encode_jpeg(img: np.ndarray, quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def expand_box(box: XYXY, shape: tuple[int, ...], margin: float,
               margin_y: float | None = None) -> tuple[int, int, int, int]:
    """``box`` grown by ``margin`` of its size on each side (``margin_y`` up and down, default the
    same), clipped to an image of ``shape``."""
    x1, y1, x2, y2 = box
    mw, mh = (x2 - x1) * margin, (y2 - y1) * (margin if margin_y is None else margin_y)
    h, w = shape[:2]
    return (max(0, int(x1 - mw)), max(0, int(y1 - mh)), min(w, int(x2 + mw)), min(h, int(y2 + mh)))


def plate_roi(vehicle_box: XYXY, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """The plate detector's input region: the vehicle box grown 10 % a side, 15 % up and down
    (what the plate model was trained on)."""
    return expand_box(vehicle_box, shape, 0.10, 0.15)


def crop(img: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    return img[y1:y2, x1:x2]
