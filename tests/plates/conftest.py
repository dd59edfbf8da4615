"""Plate-test helpers: synthetic plates drawn with OpenCV (so the tests run without ../shared)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stopline.shared.plates import PlateReader


def render_plate(text: str, char_h: int = 40, two_rows: bool = False) -> np.ndarray:
    """A white plate with a black border and black characters (HERSHEY_DUPLEX)."""
    font, thick = cv2.FONT_HERSHEY_DUPLEX, max(2, char_h // 12)
    scale = cv2.getFontScaleFromHeight(font, char_h, thick)
    rows = [text[: len(text) // 2], text[len(text) // 2:]] if two_rows else [text]
    sizes = [cv2.getTextSize(r, font, scale, thick)[0] for r in rows]
    w = max(s[0] for s in sizes) + char_h
    h = len(rows) * int(char_h * 1.6) + char_h // 2
    plate = np.full((h, w, 3), 245, np.uint8)
    cv2.rectangle(plate, (2, 2), (w - 3, h - 3), (20, 20, 20), 2)
    y = char_h // 4
    for r, (tw, _) in zip(rows, sizes):
        y += int(char_h * 1.6)
        cv2.putText(plate, r, ((w - tw) // 2, y - int(char_h * 0.3)), font, scale, (10, 10, 10), thick, cv2.LINE_AA)
    return plate


def scene_with_plate(plate: np.ndarray, size=(480, 640), at=(200, 300), angle: float = 0.0,
                     seed: int = 0) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A grey noisy 'car' scene with the plate pasted (rotated by ``angle`` degrees) centred at
    ``at`` (x, y); returns the image and the plate's axis-aligned box."""
    rng = np.random.default_rng(seed)
    img = rng.normal(90, 12, (*size, 3)).clip(0, 255).astype(np.uint8)
    cv2.rectangle(img, (at[0] - 200, at[1] - 150), (at[0] + 200, at[1] + 80), (60, 40, 140), -1)  # "car"
    ph, pw = plate.shape[:2]
    m = cv2.getRotationMatrix2D((pw / 2, ph / 2), angle, 1.0)
    m[:, 2] += np.array(at) - [pw / 2, ph / 2]
    mask = cv2.warpAffine(np.full((ph, pw), 255, np.uint8), m, (size[1], size[0]))
    warped = cv2.warpAffine(plate, m, (size[1], size[0]))
    img[mask > 128] = warped[mask > 128]
    ys, xs = np.where(mask > 128)
    return img, (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))


@pytest.fixture(scope="session")
def reader() -> PlateReader:
    return PlateReader()


@pytest.fixture(scope="session")
def synth():
    return render_plate, scene_with_plate
