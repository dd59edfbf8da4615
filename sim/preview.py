"""``preview.png``: a contact sheet of frames with the truth drawn on them."""

from __future__ import annotations

import cv2
import numpy as np

from stopline.shared.config import CameraConfig

PHASE_BGR = {"green": (80, 200, 60), "amber": (0, 180, 255), "red": (40, 40, 230)}
CLASS_BGR = {"car": (80, 220, 80), "van": (220, 200, 60), "truck": (60, 160, 255), "bus": (220, 80, 220),
             "motorcycle": (60, 230, 230)}


def pick_frames(n_frames: int, events: list[int], count: int = 6) -> list[int]:
    """Event frames first (violations, then other crossings), then evenly spaced fill."""
    chosen: list[int] = []
    for f in events:
        if len(chosen) >= count // 2 + 1:
            break
        if all(abs(f - c) > 10 for c in chosen):
            chosen.append(f)
    for f in np.linspace(n_frames * 0.05, n_frames * 0.95, count + 4).astype(int):
        if len(chosen) >= count:
            break
        if all(abs(int(f) - c) > n_frames / (count * 3) for c in chosen):
            chosen.append(int(f))
    return sorted(chosen[:count])


def annotate(img: np.ndarray, f: int, t: float, phase: str, entries: list[dict], vehicles: dict[int, dict],
             camera: CameraConfig, violators: set[int], shake: tuple[int, int]) -> np.ndarray:
    out = img.copy()
    sl = np.array(camera.stop_line, np.float64) + shake
    cv2.polylines(out, [np.round(sl).astype(np.int32)], False, (255, 0, 255), 2, cv2.LINE_AA)
    for zone in camera.exempt_zones:
        cv2.polylines(out, [np.round(np.array(zone.polygon)).astype(np.int32)], True, (255, 255, 0), 1, cv2.LINE_AA)
    roi = camera.signal.heads[0].roi
    cv2.rectangle(out, (roi.x, roi.y), (roi.x + roi.w, roi.y + roi.h), PHASE_BGR[phase], 2)
    for e in entries:
        v = vehicles[e["id"]]
        x1, y1, x2, y2 = (int(round(c)) for c in e["box"])
        col = (0, 0, 255) if e["id"] in violators else CLASS_BGR.get(v["class"], (255, 255, 255))
        cv2.rectangle(out, (x1, y1), (x2, y2), col, 2)
        label = f"#{e['id']} {v['class']} {v['plate']}"
        if e["id"] in violators:
            label += " RED RUN"
        cv2.putText(out, label, (x1 + 2, max(y1 - 6, 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 4, cv2.LINE_AA)
        cv2.putText(out, label, (x1 + 2, max(y1 - 6, 14)), cv2.FONT_HERSHEY_SIMPLEX, 0.6, col, 1, cv2.LINE_AA)
        fx, fy = e["front"]
        cv2.circle(out, (int(fx), int(fy)), 5, col, -1)
        if e.get("plate") is not None:
            cv2.polylines(out, [np.round(np.array(e["plate"])).astype(np.int32)], True, (255, 255, 0), 2, cv2.LINE_AA)
    banner = f"frame {f}  t={t:6.2f}s  signal {phase.upper()}"
    cv2.rectangle(out, (0, 0), (out.shape[1], 44), (0, 0, 0), -1)
    cv2.putText(out, banner, (12, 32), cv2.FONT_HERSHEY_SIMPLEX, 1.0, PHASE_BGR[phase], 2, cv2.LINE_AA)
    return out


def contact_sheet(tiles: list[np.ndarray], cols: int = 3, tile_w: int = 640) -> np.ndarray:
    h, w = tiles[0].shape[:2]
    tile_h = int(round(tile_w * h / w))
    small = [cv2.resize(t, (tile_w, tile_h), interpolation=cv2.INTER_AREA) for t in tiles]
    while len(small) % cols:
        small.append(np.zeros_like(small[0]))
    rows = [np.hstack(small[i : i + cols]) for i in range(0, len(small), cols)]
    return np.vstack(rows)
