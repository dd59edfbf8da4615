"""Corner refinement and rectification: from a rotated/perspective plate quadrilateral to an
upright crop the recogniser reads, and a canonical plate image for evidence."""

from __future__ import annotations

import cv2
import numpy as np

from .textdet import order_corners


def expand_quad(quad: np.ndarray, pad_x: float, pad_y: float) -> np.ndarray:
    """Grow a tl,tr,br,bl quadrilateral along its own axes by fractions of its width/height."""
    q = np.asarray(quad, np.float32)
    ux = (q[1] - q[0] + q[2] - q[3]) / 2
    uy = (q[3] - q[0] + q[2] - q[1]) / 2
    dx, dy = ux * pad_x, uy * pad_y
    return np.array([q[0] - dx - dy, q[1] + dx - dy, q[2] + dx + dy, q[3] - dx + dy], np.float32)


def warp(image: np.ndarray, quad: np.ndarray, height: int | None = None) -> np.ndarray:
    """Perspective-warp the quadrilateral to an upright rectangle (its own size, or ``height``)."""
    q = np.asarray(quad, np.float32)
    w = max(np.linalg.norm(q[1] - q[0]), np.linalg.norm(q[2] - q[3]))
    h = max(np.linalg.norm(q[3] - q[0]), np.linalg.norm(q[2] - q[1]))
    if height is not None and h > 0:
        w, h = w * height / h, float(height)
    w, h = max(8, int(round(w))), max(8, int(round(h)))
    dst = np.array([[0, 0], [w - 1, 0], [w - 1, h - 1], [0, h - 1]], np.float32)
    m = cv2.getPerspectiveTransform(q, dst)
    return cv2.warpPerspective(image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def refine_corners(image: np.ndarray, text_quad: np.ndarray,
                   area: tuple[float, float] = (0.9, 3.5)) -> np.ndarray | None:
    """The plate's own border around a text line: the quadrilateral of the bright (or dark)
    plate background that contains the text, ``area`` times the text's area (low, high). None
    when no clean border is found; the caller then keeps the text quadrilateral."""
    lo, hi = area
    outer = expand_quad(text_quad, 0.25, 0.8)
    x, y, w, h = cv2.boundingRect(outer.astype(np.int32))
    H, W = image.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 - x0 < 16 or y1 - y0 < 8:
        return None
    gray = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image[y0:y1, x0:x1]
    text_area = cv2.contourArea(text_quad.astype(np.float32))
    centre = tuple(float(v) for v in text_quad.mean(axis=0) - [x0, y0])
    best = None
    _, bw = cv2.threshold(cv2.GaussianBlur(gray, (3, 3), 0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    for mask in (bw, 255 - bw):
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((3, 9), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            size = cv2.contourArea(c)
            if not (lo * text_area < size < hi * text_area):
                continue
            if cv2.pointPolygonTest(c, centre, False) < 0:
                continue
            cx, cy, cw, ch = cv2.boundingRect(c)
            if (cx <= 0) + (cy <= 0) + (cx + cw >= x1 - x0) + (cy + ch >= y1 - y0) >= 3:
                continue  # the window's own background, not a border inside it
            hull = cv2.convexHull(c)
            approx = cv2.approxPolyDP(hull, 0.04 * cv2.arcLength(hull, True), True)
            if len(approx) != 4:
                continue
            quad = order_corners(approx.reshape(4, 2).astype(np.float32) + [x0, y0])
            if best is None or size > best[0]:
                best = (size, quad)
    return None if best is None else best[1]


def canonical(image: np.ndarray, quad: np.ndarray, rows: int = 1, height: int = 64) -> np.ndarray:
    """The plate as a fixed-height upright image (evidence crop, what the desk shows)."""
    return warp(image, quad, height=height if rows == 1 else height * 2)


def join_rows(rows: list[np.ndarray], height: int = 48) -> np.ndarray:
    """Two-row plate: rows side by side, same height, so a one-line recogniser reads them in order."""
    parts = [cv2.resize(r, (max(8, int(r.shape[1] * height / r.shape[0])), height)) for r in rows]
    gap = np.full((height, height // 3, 3), int(np.median(parts[0])), np.uint8)
    out = [parts[0]]
    for p in parts[1:]:
        out += [gap, p]
    return np.hstack(out)


def split_rows(crop: np.ndarray) -> list[np.ndarray] | None:
    """Split a two-row plate crop at the horizontal valley of ink between its rows."""
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    h = gray.shape[0]
    if h < 16:
        return None
    edges = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0, ksize=3)).mean(axis=1)
    lo, hi = int(h * 0.3), int(h * 0.7)
    cut = lo + int(np.argmin(edges[lo:hi]))
    if edges[cut] > 0.5 * np.median(edges):
        return None
    return [crop[:cut], crop[cut:]]



def colour_marks(crop: np.ndarray) -> np.ndarray:
    """Per column of the crop: True where a saturated, bright blob (country band, coat of arms,
    inspection sticker) covers it. Characters are dark, so they do not count; what a recogniser
    reads on these columns ('8' for two stickers, 'H' for a flag) may be dropped."""
    if crop.ndim != 3:
        return np.zeros(crop.shape[1], bool)
    hsv = cv2.cvtColor(crop, cv2.COLOR_BGR2HSV)
    hue, sat, val = hsv[..., 0].astype(np.int16), hsv[..., 1], hsv[..., 2]
    light = val > np.percentile(val, 50)
    if not light.any():
        return np.zeros(crop.shape[1], bool)
    bg_hue, bg_sat = int(np.median(hue[light])), float(np.median(sat[light]))
    dh = np.abs(hue - bg_hue)
    dh = np.minimum(dh, 180 - dh)
    mask = (sat > max(60, bg_sat + 35)) & (val > 70) & ((dh > 12) | (bg_sat < 60))
    h = crop.shape[0]
    return mask[h // 5: h - h // 5].mean(axis=0) > 0.12


def cell_colour(crop: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Per character (centres ``xs``, fractions of the crop width): how colourful its cell is,
    beyond the plate's own two colours (97th percentile, Lab a/b). Black on white, black on
    yellow, white on blue score low; a sticker's red and green rings score high."""
    n = len(xs)
    if crop.ndim != 3 or n < 2:
        return np.zeros(n)
    h, w = crop.shape[:2]
    lab = cv2.cvtColor(crop[h // 5: h - h // 5], cv2.COLOR_BGR2LAB).astype(np.float32)
    lum, ab = lab[..., 0], lab[..., 1:]
    # plate background (the lighter half) and character ink (the darkest fifth), in a/b; a pixel
    # on a character's edge mixes the two, so colour is the distance from the segment between them
    bg = np.median(ab[lum >= np.percentile(lum, 50)], axis=0)
    ink = np.median(ab[lum <= np.percentile(lum, 20)], axis=0)
    seg = bg - ink
    t = np.clip((ab - ink) @ seg / max(float(seg @ seg), 1e-6), 0.0, 1.0)
    dist = np.linalg.norm(ab - ink - t[..., None] * seg, axis=2)
    half = 0.35 * (xs[-1] - xs[0]) / (n - 1)
    return np.array([np.percentile(dist[:, int(max(0.0, x - half) * w):int(min(1.0, x + half) * w) + 1], 97)
                     for x in xs])


def droppable_characters(crop: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Per character: read on a colour mark, so cheap to leave out. At the ends of the line, the
    characters under column marks (country band, coat of arms); inside it, at most one: the most
    colourful cell when it stands out from the others (an inspection sticker between the
    groups). Marks under most characters are the plate's own colour."""
    xs = np.asarray(xs)
    marks = colour_marks(crop)
    out = np.zeros(len(xs), bool)
    if len(xs) < 3 or not len(marks):
        return out
    on_mark = marks[np.clip((xs * len(marks)).astype(int), 0, len(marks) - 1)]
    if on_mark.mean() > 0.5:
        on_mark[:] = False
    out |= np.cumprod(on_mark).astype(bool) | np.cumprod(on_mark[::-1]).astype(bool)[::-1]
    colour = cell_colour(crop, xs)
    k = 1 + int(np.argmax(colour[1:-1]))
    med = float(np.median(colour))
    out[k] |= bool(colour[k] > 1.6 * med and colour[k] > med + 6)
    return out
