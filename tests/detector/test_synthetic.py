"""End to end on the project's simulator: ``stopline sim`` -> ``stopline detect`` -> scorer.

One short, busy day scene (many red-light runners, right turns on red) as a regression check;
the 10-minute day/night figures come from bench/edge_sim.py (see bench/results/edge.md)."""

from __future__ import annotations

import pytest

from stopline.cli import main
from stopline.shared.records import read_records

pytestmark = pytest.mark.slow


def test_busy_day_scene_every_runner_found_nothing_spurious(tmp_path):
    sim = pytest.importorskip("stopline.sim.evaluate")
    from stopline.sim.truth import load_truth

    scene = tmp_path / "scene"
    assert main(["sim", "--seed", "21", "--duration", "20", "--red-runners", "0.9", "--arrivals", "1000",
                 "--size", "640x360", "--out", str(scene)]) == 0
    out = tmp_path / "out"
    assert main(["detect", str(scene / "video.mp4"), "--camera", str(scene / "camera.yaml"), "--out", str(out),
                 "--no-progress"]) == 0
    truth = load_truth(scene / "truth.json")
    report = sim.score(truth, list(read_records(out / "violations.jsonl")))
    assert report.true_violations >= 1
    assert report.false_negatives == 0 and report.false_positives == 0, report.summary()
    assert report.delay_p95_s is not None and report.delay_p95_s <= 1.0
