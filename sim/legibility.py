"""How readable the rendered plates are: crops of plates near the stop line, and a read helper.

Used by the OCR test and ``bench/sim_render.py --plates-ocr`` (RapidOCR, the plate reader's
engine, is imported by the caller; nothing here needs it).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .plates import normalise
from .truth import load_truth


def plate_crops(out_dir: str | Path, upscale: float = 3.0) -> list[tuple[str, str, float, np.ndarray]]:
    """(plate, region, width px, crop) for each approaching vehicle's front plate, taken from
    the encoded video in the frame whose front point is nearest the stop line (from 30 px
    before it to 60 px past it), fully visible; the crop has a 6 px margin and is upscaled."""
    out_dir = Path(out_dir)
    truth = load_truth(out_dir / "truth.json")
    line = np.array(truth.stop_line)
    want: dict[int, list[tuple[str, str, float, np.ndarray]]] = {}
    for v in truth.vehicles:
        if v.movement == "away":
            continue
        best = None
        for p in v.track:
            if p.plate is None or p.plate_side != "front" or (p.plate_vis or 0) < 0.95:
                continue
            dy = p.front[1] - np.interp(p.front[0], line[:, 0], line[:, 1])
            if -30 < dy < 60 and (best is None or abs(dy) < abs(best[0])):
                best = (dy, p.f, np.array(p.plate))
        if best is not None:
            quad = best[2]
            want.setdefault(best[1], []).append((v.plate, v.region, float(np.linalg.norm(quad[1] - quad[0])), quad))
    cap = cv2.VideoCapture(str(out_dir / truth.video))
    crops = []
    for f in range(truth.n_frames):
        if not want:
            break
        ok, img = cap.read()
        if not ok:
            raise ValueError(f"{out_dir / truth.video}: ends at frame {f} of {truth.n_frames}")
        for plate, region, width, quad in want.pop(f, []):
            x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 6
            x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 6
            crop = img[max(y0, 0) : y1, max(x0, 0) : x1]
            crops.append((plate, region, width, cv2.resize(crop, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC)))
    cap.release()
    return crops


def joined_read(result: list | None) -> str:
    """RapidOCR's result as one registration: boxes left to right, minus small lines (the state
    name on US plates), normalised to A-Z0-9."""
    if not result:
        return ""
    heights = [float(np.ptp(np.array(r[0])[:, 1])) for r in result]
    big = [r for r, h in zip(result, heights) if h >= 0.6 * max(heights)]
    return normalise("".join(r[1] for r in sorted(big, key=lambda r: float(np.array(r[0])[:, 0].min()))))
