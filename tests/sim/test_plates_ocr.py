"""Plates near the stop line are readable: RapidOCR (the plate reader's engine) reads them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from stopline.sim.plates import normalise
from stopline.sim.produce import render
from stopline.sim.spec import SceneSpec
from stopline.sim.truth import load_truth


def _near_line_crops(out_dir: Path) -> list[tuple[str, np.ndarray]]:
    """For each approaching vehicle, its front plate in the frame nearest the stop line."""
    truth = load_truth(out_dir / "truth.json")
    line = np.array(truth.stop_line)
    want: dict[int, list[tuple[str, np.ndarray]]] = {}
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
            want.setdefault(best[1], []).append((v.plate, best[2]))
    cap = cv2.VideoCapture(str(out_dir / "video.mp4"))
    crops = []
    for f in range(truth.n_frames):
        ok, img = cap.read()
        assert ok
        for plate, quad in want.get(f, []):
            x0, y0 = np.floor(quad.min(axis=0)).astype(int) - 6
            x1, y1 = np.ceil(quad.max(axis=0)).astype(int) + 6
            crop = img[max(y0, 0) : y1, max(x0, 0) : x1]
            crops.append((plate, cv2.resize(crop, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)))
    return crops


def test_plates_near_the_stop_line_are_readable(tmp_path: Path) -> None:
    rapidocr = pytest.importorskip("rapidocr_onnxruntime")
    render(SceneSpec(seed=3, duration_s=24.0, region="mixed", arrivals_per_lane_h=1300), tmp_path)
    crops = _near_line_crops(tmp_path)
    assert len(crops) >= 6
    ocr = rapidocr.RapidOCR()
    exact = 0
    for plate, crop in crops:
        result, _ = ocr(crop)
        # the longest text line is the registration (US plates also carry a small state name)
        read = max((normalise(r[1]) for r in (result or [])), key=len, default="")
        exact += read == plate
    print(f"RapidOCR read {exact}/{len(crops)} plates near the stop line exactly")
    assert exact / len(crops) >= 0.6, f"only {exact}/{len(crops)} plates read exactly"
