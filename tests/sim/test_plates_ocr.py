"""Plates near the stop line are readable: RapidOCR (the plate reader's engine) reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from stopline.sim.legibility import joined_read, plate_crops
from stopline.sim.produce import render
from stopline.sim.spec import SceneSpec


@pytest.mark.slow
def test_plates_near_the_stop_line_are_readable(tmp_path: Path) -> None:
    rapidocr = pytest.importorskip("rapidocr_onnxruntime")
    render(SceneSpec(seed=3, duration_s=24.0, region="mixed", arrivals_per_lane_h=1300), tmp_path)
    crops = plate_crops(tmp_path)
    assert len(crops) >= 6 and {r for _, r, _, _ in crops} == {"us", "eu"}
    ocr = rapidocr.RapidOCR()
    exact = sum(joined_read(ocr(crop)[0]) == plate for plate, _, _, crop in crops)
    print(f"RapidOCR read {exact}/{len(crops)} plates near the stop line exactly")
    assert exact / len(crops) >= 0.6, f"only {exact}/{len(crops)} plates read exactly"
