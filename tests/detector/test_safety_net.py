"""The motion safety net of the default backend: the shipped YOLO model is made to miss one vehicle
(a wrapper drops the model's boxes on it); the real background subtraction path still tracks it,
and it is flagged with class "motion"."""

from __future__ import annotations

import numpy as np
import pytest

from det_scene import Car, camera, frames
from stopline.services.vehicle_detector.pipeline import DetectorPipeline
from stopline.shared.config import VehicleDetectorConfig
from stopline.shared.vision.detections import Detections

FPS = 25


def on_vehicle(det: Detections, box: tuple[float, float, float, float]) -> np.ndarray:
    """Which detections are the model seeing the vehicle at ``box``: boxes that are mostly it, or
    that cover most of it (a low-scored box over two vehicles would keep its track going)."""
    x1, y1, x2, y2 = box
    iw = np.clip(np.minimum(det.xyxy[:, 2], x2) - np.maximum(det.xyxy[:, 0], x1), 0, None)
    ih = np.clip(np.minimum(det.xyxy[:, 3], y2) - np.maximum(det.xyxy[:, 1], y1), 0, None)
    area = (det.xyxy[:, 2] - det.xyxy[:, 0]) * (det.xyxy[:, 3] - det.xyxy[:, 1])
    return (iw * ih >= 0.2 * np.maximum(area, 1e-9)) | (iw * ih >= 0.5 * max((x2 - x1) * (y2 - y1), 1e-9))


class Blind:
    """The real detector, minus its boxes on one vehicle (``hide``: that vehicle's box now)."""

    def __init__(self, inner):
        self.inner = inner
        self.hide: tuple[float, float, float, float] | None = None

    def detect(self, frame: np.ndarray) -> Detections:
        det = self.inner.detect(frame)
        if self.hide is None or len(det) == 0:
            return det
        keep = ~on_vehicle(det, self.hide)
        return Detections(det.xyxy[keep], det.scores[keep], det.class_ids[keep])


def run_blind(cars, phase_at, hidden: int | None, *, night=False, duration=10.0, fps=FPS, **config):
    cam = camera(fps=fps)
    p = DetectorPipeline(cam, VehicleDetectorConfig(**config), "site1", frame_size=(640, 360), fps=fps)
    blind = Blind(p.detector)
    p.detector = blind
    out = []
    for i, t, img, boxes in frames(duration, fps, cars, phase_at, night=night):
        blind.hide = boxes.get(hidden) if hidden is not None else None
        out += p.process(img, i, 1_700_000_000 + t, t)
    out += p.flush()
    return p, [vc.candidate for vc, _ in out]


def red_after(t_red):
    return lambda t: "green" if t < t_red - 1 else "amber" if t < t_red else "red"


@pytest.mark.parametrize("night", [False, True])
def test_a_runner_the_model_misses_is_flagged_as_motion(night):
    cars = [Car(1.0, 100, 150), Car(2.0, 300, 200), Car(6.0, 420, 180)]  # crossings 2.4 s, 3.05 s, 7.17 s
    p, cands = run_blind(cars, red_after(4.5), hidden=2, night=night)
    assert [c.vehicle_class for c in cands] == ["motion"], p.stats
    assert cands[0].video_time_s == pytest.approx(cars[2].crossing_time(), abs=0.15)
    assert cands[0].signal_phase == "red"
    assert p._net.stats["confirmed"] >= 1


def test_without_the_net_the_missed_runner_goes_unflagged():
    cars = [Car(6.0, 420, 180)]
    p, cands = run_blind(cars, red_after(4.5), hidden=0, night=True, safety_net=False)
    assert cands == [] and p.stats["crossings"] == 0


def test_what_the_model_sees_keeps_its_class_and_is_flagged_once():
    """At night the model finds the drawn cars (headlights) but loses the runner for the last
    half second before the line: the net carries its track over the gap, and it is flagged once
    with the model's class (its beams and fragments are explained, not flagged again)."""
    cars = [Car(1.0, 100, 150), Car(6.0, 420, 180)]
    p, cands = run_blind(cars, red_after(4.5), hidden=None, night=True)
    assert [c.vehicle_class for c in cands] == ["car"], p.stats
    # the net adds no crossing of its own (the model's own overlapping boxes may, and are
    # recognised as the vehicle already judged)
    without, _ = run_blind(cars, red_after(4.5), hidden=None, night=True, safety_net=False)
    assert p.stats["duplicate"] == without.stats["duplicate"], (p.stats, without.stats)


def test_a_stopping_car_and_cross_traffic_are_not_flagged():
    """Unexplained blobs that do not behave like an approaching vehicle: a car that stops before
    the line, and one moving sideways across the approach (against the travel direction test)."""
    stopping = Car(0.5, 200, 160, stop_at=185)
    p, cands = run_blind([stopping], lambda t: "red", hidden=0, duration=8)
    assert cands == [] and p.stats["crossings"] == 0


class Dim(Blind):
    """The real detector, its boxes on one vehicle scored ``score`` (the model half sees it)."""

    score = 0.4

    def detect(self, frame: np.ndarray) -> Detections:
        det = self.inner.detect(frame)
        if self.hide is None or len(det) == 0:
            return det
        dimmed = np.where(on_vehicle(det, self.hide), np.minimum(det.scores, self.score), det.scores)
        return Detections(det.xyxy, dimmed, det.class_ids)


def run_dim(cars, phase_at, dimmed: int, *, score: float = 0.4, dim_from: float = 0.0, **config):
    cam = camera(fps=FPS)
    p = DetectorPipeline(cam, VehicleDetectorConfig(**config), "site1", frame_size=(640, 360), fps=FPS)
    dim = Dim(p.detector)
    dim.score = score
    p.detector = dim
    out = []
    for i, t, img, boxes in frames(10.0, FPS, cars, phase_at):
        dim.hide = boxes.get(dimmed) if t >= dim_from else None
        out += p.process(img, i, 1_700_000_000 + t, t)
    out += p.flush()
    return p, [vc.candidate for vc, _ in out]


def test_a_runner_the_model_only_half_sees_is_flagged():
    """A runner the model only half sees (every box on it scored 0.4, below ``confidence``: a
    dark pickup) is still flagged: its own boxes cannot start a track, the net's can."""
    cars = [Car(1.0, 100, 150), Car(6.0, 420, 180)]
    p, cands = run_dim(cars, red_after(4.5), dimmed=1)
    assert len(cands) == 1, p.stats
    assert cands[0].video_time_s == pytest.approx(cars[1].crossing_time(), abs=0.15)


class Scripted:
    """The scene's true boxes as detections (class car), scored ``score_at(t)`` and, like the
    model, only those scoring ``conf`` or more: the tracker's input made exact, so the test is
    about the tracker, not about how a model sees drawn cars."""

    def __init__(self, score_at, conf: float):
        self.score_at, self.conf = score_at, conf
        self.boxes: dict[int, tuple] = {}
        self.t = 0.0

    def detect(self, frame: np.ndarray) -> Detections:
        if not self.boxes or self.score_at(self.t) < self.conf:
            return Detections.empty()
        xyxy = np.asarray(list(self.boxes.values()), np.float32)
        return Detections(xyxy, np.full(len(xyxy), self.score_at(self.t), np.float32), np.zeros(len(xyxy), np.int32))


def run_scripted(car: Car, score_at, config: VehicleDetectorConfig, chain_iou: float | None = None):
    """One runner through the real pipeline and ByteTrack, its true boxes scored ``score_at(t)``:
    (pipeline, candidates)."""
    p = DetectorPipeline(camera(fps=FPS), config, "site1", frame_size=(640, 360), fps=FPS)
    if chain_iou is not None:
        p.tracker.chain_iou = chain_iou
    scripted = Scripted(score_at, conf=p.config.floor)
    p.detector = scripted
    out = []
    for i, t, img, boxes in frames(10.0, FPS, [car], red_after(4.5)):
        scripted.boxes, scripted.t = boxes, t
        out += p.process(img, i, 1_700_000_000 + t, t)
    out += p.flush()
    return p, [vc.candidate for vc, _ in out]


@pytest.mark.parametrize("keep, flagged", [(0.1, ["car"]), (0.5, [])])
def test_low_scored_boxes_keep_a_started_track(keep, flagged):
    """Scores between ``keep_confidence`` and ``confidence`` feed ByteTrack's second association:
    a runner seen well (0.9), then only dimly (0.2) from 0.6 s before the line on (half hidden),
    stays tracked and is flagged once. With those boxes cut off (keep_confidence = confidence)
    its track is lost before the line and nothing is flagged."""
    car = Car(6.0, 420, 180)
    dim_from = car.crossing_time() - 0.6
    p, cands = run_scripted(car, lambda t: 0.9 if t < dim_from else 0.2,
                            VehicleDetectorConfig(keep_confidence=keep, safety_net=False))
    assert [c.vehicle_class for c in cands] == flagged, p.stats
    if cands:
        assert cands[0].video_time_s == pytest.approx(car.crossing_time(), abs=0.1)


@pytest.mark.parametrize("chain_iou, flagged", [(0.3, ["car"]), (1.01, [])])
def test_a_track_that_starts_past_the_line_keeps_where_the_vehicle_was_seen_before(chain_iou, flagged):
    """A runner the model is unsure of (0.3, below ``confidence``) until its front is past the
    line, then sure of (0.9): its track starts past the line, but the unsure boxes that lead to it
    are where it was before, so it is flagged, at its real crossing time. Without following them
    back (``chain_iou`` above any IoU) the track was never seen before the line: nothing."""
    car = Car(6.0, 420, 180)
    sure_from = car.crossing_time() + 0.1
    p, cands = run_scripted(car, lambda t: 0.3 if t < sure_from else 0.9,
                            VehicleDetectorConfig(safety_net=False), chain_iou=chain_iou)
    assert [c.vehicle_class for c in cands] == flagged, p.stats
    if cands:  # crossed when its front passed the line, not when the model became sure
        assert cands[0].crossed_at - 1_700_000_000 == pytest.approx(car.crossing_time(), abs=0.1)
        assert cands[0].video_time_s > sure_from
