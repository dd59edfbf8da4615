"""Overlays are never plates: a camera's burned-in text (date, time, camera name, logo).

* ``mask_zones``: the camera's ``ignore_zones`` painted flat, so no localiser finds text there.
* ``static_text``: text that stays in the same place across frames of a clip: what
  ``stopline camera check`` proposes as ignore zones.
* ``is_static``: a plate candidate whose pixels stay put while its vehicle moves between burst
  frames is overlay text, not the vehicle's plate.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from .textdet import TextDetector
from .types import XYXY

Polygon = Sequence[tuple[float, float]]


def scaled_zones(zones: Sequence[Polygon], image_shape: tuple[int, ...],
                 frame_size: tuple[int, int] | None = None) -> list[np.ndarray]:
    """Zones drawn for ``frame_size`` (width, height) in the pixels of an image of ``image_shape``
    (evidence images may be scaled down); unscaled when ``frame_size`` is None."""
    sx = sy = 1.0
    if frame_size:
        sx, sy = image_shape[1] / frame_size[0], image_shape[0] / frame_size[1]
    return [np.array([[x * sx, y * sy] for x, y in z], np.float32) for z in zones]


def mask_zones(image: np.ndarray, zones: Sequence[np.ndarray]) -> np.ndarray:
    """A copy of ``image`` with each polygon filled flat grey (nothing to detect there)."""
    if not len(zones):
        return image
    out = image.copy()
    cv2.fillPoly(out, [np.round(z).astype(np.int32) for z in zones], (128, 128, 128) if out.ndim == 3 else 128)
    return out


def in_zones(box: XYXY, zones: Sequence[np.ndarray], share: float = 0.3) -> bool:
    """True when at least ``share`` of the box lies inside the zones."""
    if not len(zones):
        return False
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    w, h = max(1, x2 - x1), max(1, y2 - y1)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(z - [x1, y1]).astype(np.int32) for z in zones], 1)
    return float(mask.mean()) >= share


def _patch(image: np.ndarray, box: XYXY) -> np.ndarray | None:
    h, w = image.shape[:2]
    x1, y1 = max(0, int(box[0])), max(0, int(box[1]))
    x2, y2 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    if x2 - x1 < 4 or y2 - y1 < 4:
        return None
    p = image[y1:y2, x1:x2]
    return (cv2.cvtColor(p, cv2.COLOR_BGR2GRAY) if p.ndim == 3 else p).astype(np.float32)


def _similarity(a: np.ndarray | None, b: np.ndarray | None) -> float:
    """Normalised cross-correlation of two same-size patches (-1..1); 0 when undefined."""
    if a is None or b is None or a.shape != b.shape:
        return 0.0
    a, b = a - a.mean(), b - b.mean()
    d = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / d) if d > 1e-6 else 0.0


OVERLAY_SIDE = 1280       # the text detector's input when looking for overlays
STATIC_SIMILARITY = 0.8  # the same place in another burst frame looks this alike: it did not move


def is_static(box: XYXY, image: np.ndarray, vehicle_box: XYXY | None,
              others: Sequence[tuple[np.ndarray, XYXY | None]]) -> bool:
    """True when the text at ``box`` in ``image`` does not move with its vehicle: in another
    frame of the burst where the vehicle moved by more than the box's height, the same place
    still shows the same pixels (and more alike than where the vehicle took the plate)."""
    if vehicle_box is None:
        return False
    here = _patch(image, box)
    bh = box[3] - box[1]
    for other, vbox in others:
        if vbox is None or other.shape != image.shape:
            continue
        dx = (vbox[0] + vbox[2] - vehicle_box[0] - vehicle_box[2]) / 2
        dy = (vbox[1] + vbox[3] - vehicle_box[1] - vehicle_box[3]) / 2
        if np.hypot(dx, dy) < max(8.0, bh):
            continue  # the vehicle hardly moved: nothing to tell apart
        same = _similarity(here, _patch(other, box))
        moved = _similarity(here, _patch(other, (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)))
        if same >= STATIC_SIMILARITY and same > moved:
            return True
    return False


def static_text(frames: Sequence[np.ndarray], detector: TextDetector | None = None, min_share: float = 0.8,
                pad: float = 4.0) -> list[list[tuple[float, float]]]:
    """Where text stays put across ``frames`` (spread over a clip): rectangles (4 points each,
    padded by ``pad`` px) around text found at the same place in at least ``min_share`` of the
    frames. Traffic moves; a timestamp, a camera name or a logo does not (nor a parked car's
    plate: a person confirms each proposal)."""
    if len(frames) < 2:
        return []
    detector = detector or TextDetector(max_side=OVERLAY_SIDE)
    h, w = frames[0].shape[:2]
    # overlay text is small (10-16 px): looked at enlarged to the detector's full input size
    up = max(1.0, detector.max_side / max(h, w))
    votes = np.zeros((h, w), np.float32)
    for f in frames:
        if f.shape[:2] != (h, w):
            continue
        big = cv2.resize(f, None, fx=up, fy=up, interpolation=cv2.INTER_CUBIC) if up > 1 else f
        seen = np.zeros((h, w), np.uint8)
        for b in detector.detect(big):
            cv2.fillPoly(seen, [np.round(b.corners / up).astype(np.int32)], 1)
        votes += seen
    steady = (votes >= min_share * len(frames)).astype(np.uint8)
    # characters of one overlay line are separate boxes: join them along the line
    steady = cv2.morphologyEx(steady, cv2.MORPH_CLOSE, np.ones((3, 15), np.uint8))
    n, _, stats, _ = cv2.connectedComponentsWithStats(steady)
    zones = []
    for x, y, bw, bh, area in stats[1:n]:
        if area < 20 or bh < 4:
            continue
        x1, y1 = max(0.0, x - pad), max(0.0, y - pad)
        x2, y2 = min(w - 1.0, x + bw + pad), min(h - 1.0, y + bh + pad)
        zones.append([(x1, y1), (x2, y1), (x2, y2), (x1, y2)])
    return zones


OVERLAY_SAMPLES = 10  # frames ``stopline camera check`` spreads over its run to find overlays


def propose_ignore_zones(frames: Sequence[np.ndarray], frame_size: tuple[int, int] | None = None,
                         detector: TextDetector | None = None) -> list[list[tuple[float, float]]]:
    """``static_text`` of the frames, in the camera's ``frame_size`` geometry, rounded."""
    if not frames:
        return []
    h, w = frames[0].shape[:2]
    sx, sy = (frame_size[0] / w, frame_size[1] / h) if frame_size else (1.0, 1.0)
    return [[(round(x * sx, 1), round(y * sy, 1)) for x, y in z] for z in static_text(frames, detector)]


def draw_ignore_zones(image: np.ndarray, configured: Sequence[Polygon], proposed: Sequence[Polygon],
                      frame_size: tuple[int, int] | None = None) -> np.ndarray:
    """Configured ignore zones (grey, hatched) and proposed ones (orange, dashed outline with
    their number) on a copy of ``image``."""
    img = image.copy()
    for z in scaled_zones(configured, img.shape, frame_size):
        pts = np.round(z).astype(np.int32)
        cv2.polylines(img, [pts], True, (160, 160, 160), 2)
        cv2.putText(img, "ignore", tuple(int(v) for v in pts[0] + [2, -4]), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (160, 160, 160), 1)
    for k, z in enumerate(scaled_zones(proposed, img.shape, frame_size), 1):
        pts = np.round(z).astype(np.int32)
        for a, b in zip(pts, np.roll(pts, -1, axis=0)):
            n = max(1, int(np.hypot(*(b - a)) // 6))
            for t in range(0, n, 2):  # dashed
                p = a + (b - a) * t / n
                q = a + (b - a) * min(n, t + 1) / n
                cv2.line(img, tuple(int(v) for v in p), tuple(int(v) for v in q), (0, 140, 255), 2)
        cv2.putText(img, f"overlay {k}?", (int(pts[:, 0].min()), int(pts[:, 1].max()) + 14),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 140, 255), 1)
    return img


def zones_yaml(zones: Sequence[Polygon]) -> str:
    """The ``ignore_zones:`` block of a camera file for ``zones``."""
    lines = ["ignore_zones:"]
    for k, z in enumerate(zones, 1):
        pts = ", ".join(f"[{x:g}, {y:g}]" for x, y in z)
        lines.append(f"  - name: overlay{k}")
        lines.append(f"    polygon: [{pts}]")
    return "\n".join(lines)
