"""Licence plates: invented US- and EU-style texts and their images.

Glyphs are OpenCV's Hershey simplex font drawn thick on a large canvas and squeezed to a
plate font's proportions, so nothing but OpenCV is needed on a fresh machine. Each plate
keeps a small mip pyramid so that a far plate is drawn from a matching size without
aliasing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import cv2
import numpy as np

# No I, O or Q on plates (as on most real series), so a read is unambiguous to a person.
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
DIGITS = "0123456789"
US_FORMATS = ("DLLLDDD", "LLLDDDD", "LLLDDD", "DLLDDDD")
EU_FORMATS = ("LL-DDD-LL", "L LL DDDD", "LL LL DDD", "LLL DDDD")
EU_COUNTRY = {"LL-DDD-LL": "F", "L LL DDDD": "D", "LL LL DDD": "D", "LLL DDDD": "NL"}
US_STATES = ("FREEDOM STATE", "GOLDEN COAST", "LAKE STATE", "PRAIRIE STATE", "SUNSHINE COAST")


def normalise(text: str) -> str:
    """Upper-case A-Z0-9 only: how plate texts are stored and compared."""
    return re.sub(r"[^A-Z0-9]", "", text.upper())


@dataclass(frozen=True)
class PlateText:
    display: str  # as printed, with spaces / dashes
    text: str  # normalised
    region: str  # "us" | "eu"
    fmt: str
    header: str  # state name (US) or country code (EU)


def random_plate(rng: np.random.Generator, region: str) -> PlateText:
    fmts = US_FORMATS if region == "us" else EU_FORMATS
    fmt = fmts[int(rng.integers(len(fmts)))]
    chars = []
    for k, f in enumerate(fmt):
        if f == "D" and k == 0:
            chars.append(DIGITS[1 + int(rng.integers(9))])  # no leading zero (reads as O)
        elif f == "L":
            chars.append(LETTERS[int(rng.integers(len(LETTERS)))])
        elif f == "D":
            chars.append(DIGITS[int(rng.integers(len(DIGITS)))])
        else:
            chars.append(f)
    display = "".join(chars)
    if region == "us":
        header = US_STATES[int(rng.integers(len(US_STATES)))]
    else:
        header = EU_COUNTRY[fmt]
    return PlateText(display, normalise(display), region, fmt, header)


FONT = cv2.FONT_HERSHEY_SIMPLEX


def _text_block(text: str, height: int, width: int, colour: tuple[int, int, int], bg: tuple[int, int, int],
                thickness_ratio: float = 0.16) -> tuple[np.ndarray, np.ndarray]:
    """Render ``text`` into exactly (height, width): returns (image, coverage mask)."""
    scale = 4.0
    th = max(int(round(scale * 30 * thickness_ratio)), 2)
    (tw, tht), base = cv2.getTextSize(text, FONT, scale, th)
    canvas = np.zeros((tht + base + 2 * th, tw + 2 * th), np.uint8)
    cv2.putText(canvas, text, (th, tht + th), FONT, scale, 255, th, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas > 0)
    canvas = canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    mask = cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    img = np.empty((height, width, 3), np.float32)
    img[:] = bg
    img = img * (1 - mask[..., None]) + np.array(colour, np.float32) * mask[..., None]
    return img, mask


def _paste(dst: np.ndarray, src: np.ndarray, mask: np.ndarray, x: int, y: int) -> None:
    h, w = mask.shape
    roi = dst[y : y + h, x : x + w]
    roi[:] = roi * (1 - mask[..., None]) + src * mask[..., None]


def render_plate(plate: PlateText, px_per_m: float = 1000.0) -> np.ndarray:
    """The plate face as a BGR image (1 px per mm by default)."""
    if plate.region == "us":
        W, H = int(0.305 * px_per_m), int(0.152 * px_per_m)
        img = np.full((H, W, 3), 246, np.float32)
        grad = np.linspace(1.0, 0.93, H, dtype=np.float32)[:, None, None]
        img *= grad
        ink = (90, 40, 20)  # dark blue
        # state name small at the top, main characters large, a slogan strip at the bottom
        hdr, hm = _text_block(plate.header, int(H * 0.11), int(W * 0.55), (40, 40, 170), (0, 0, 0), 0.1)
        _paste(img, hdr, hm, int(W * 0.225), int(H * 0.06))
        chars = plate.display
        cw = min(0.13 * len(chars), 0.92)
        txt, tm = _text_block(chars, int(H * 0.56), int(W * cw), ink, (0, 0, 0), 0.17)
        _paste(img, txt, tm, (W - int(W * cw)) // 2, int(H * 0.24))
        cv2.rectangle(img, (3, 3), (W - 4, H - 4), (60, 60, 60), max(W // 100, 2))
    else:
        W, H = int(0.52 * px_per_m), int(0.11 * px_per_m)
        img = np.full((H, W, 3), 240, np.float32)
        band = int(W * 0.085)
        img[:, :band] = (150, 50, 0)  # blue EU band
        cy, cx, r = int(H * 0.33), band // 2, int(band * 0.3)
        for k in range(12):
            a = 2 * np.pi * k / 12
            cv2.circle(img, (int(cx + r * np.cos(a)), int(cy + r * np.sin(a))), max(H // 60, 1), (0, 210, 250), -1)
        code, cm = _text_block(plate.header, int(H * 0.26), int(band * (0.35 * len(plate.header))), (255, 255, 255), (0, 0, 0), 0.12)
        _paste(img, code, cm, (band - cm.shape[1]) // 2, int(H * 0.62))
        chars = plate.display
        cw = min(0.097 * len(chars), 0.86)
        txt, tm = _text_block(chars, int(H * 0.68), int(W * cw), (20, 20, 20), (0, 0, 0), 0.15)
        _paste(img, txt, tm, band + (W - band - int(W * cw)) // 2, int(H * 0.16))
        cv2.rectangle(img, (2, 2), (W - 3, H - 3), (25, 25, 25), max(H // 28, 2))
    return np.clip(img, 0, 255).astype(np.uint8)


class PlatePyramid:
    """A plate image at halving sizes; ``level_for(width_px)`` picks one to warp from."""

    def __init__(self, image: np.ndarray):
        self.levels = [image]
        while self.levels[-1].shape[1] > 24:
            im = self.levels[-1]
            self.levels.append(cv2.resize(im, (im.shape[1] // 2, im.shape[0] // 2), interpolation=cv2.INTER_AREA))

    def level_for(self, width_px: float) -> np.ndarray:
        best = self.levels[0]
        for im in self.levels:
            if im.shape[1] >= 1.5 * width_px:
                best = im
        return best
