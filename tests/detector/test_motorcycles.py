"""Motorcycles through the edge path: two riding abreast in one lane are two vehicles.

The detector's boxes are scripted here (the model's output for two motorcycles side by side);
tracking, the rule, the duplicate check and the evidence burst are the real pipeline's."""

from __future__ import annotations

import numpy as np

from det_scene import STOP_Y, camera, frames
from stopline.services.vehicle_detector.pipeline import DetectorPipeline
from stopline.shared.config import VehicleDetectorConfig
from stopline.shared.vision.detections import VEHICLE_CLASSES, Detections

LANES = [{"id": "a", "polygon": [[100, 0], [300, 0], [300, 360], [100, 360]]},
         {"id": "b", "polygon": [[300, 0], [500, 0], [500, 360], [300, 360]]}]


class Scripted:
    """Boxes of riders side by side (x ranges), driving down 8 px a frame, as the model gives them."""

    def __init__(self, xs: list[tuple[float, float]], vclass: str, height: float = 50.0):
        self.xs, self.height, self.k = xs, height, 0
        self.cls = VEHICLE_CLASSES.index(vclass)

    def detect(self, frame: np.ndarray) -> Detections:
        bottom = STOP_Y - 120 + 8 * self.k
        self.k += 1
        boxes = [(x1, bottom - self.height, x2, bottom) for x1, x2 in self.xs]
        return Detections(np.asarray(boxes, np.float32), np.full(len(boxes), 0.9, np.float32),
                          np.full(len(boxes), self.cls, np.int32))


def run(xs, vclass):
    p = DetectorPipeline(camera(lanes=LANES), VehicleDetectorConfig(backend="motion"), "site1", frame_size=(640, 360))
    p.detector = Scripted(xs, vclass)
    out = []
    for i, t, img, _ in frames(2.0, 25, [], lambda t: "red"):
        out += p.process(img, i, 1_700_000_000 + t, t)
    out += p.flush()
    return p, [vc.candidate for vc, _ in out]


def test_two_motorcycles_abreast_in_one_lane_are_two_violations():
    p, cands = run([(150, 172), (200, 222)], "motorcycle")
    assert sorted(c.lane for c in cands) == ["a", "a"], p.stats
    assert {c.vehicle_class for c in cands} == {"motorcycle"}
    assert len({c.track_id for c in cands}) == 2


def test_two_car_fragments_side_by_side_in_one_lane_stay_one_vehicle():
    """Not a motorcycle: two blobs crossing one lane's line together are one car (headlights)."""
    p, cands = run([(150, 172), (200, 222)], "car")
    assert len(cands) == 1 and p.stats["duplicate"] == 1
