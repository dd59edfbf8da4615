"""Amber measurement (roi, schedule, mqtt), recorded with the violation, and ``rules.min_amber_s``."""

from __future__ import annotations

import json

import cv2
import pytest

from det_scene import Car, camera, frames
from stopline.cli import main
from stopline.services.vehicle_detector.pipeline import DetectorPipeline
from stopline.services.vehicle_detector.signal import MqttSignal, RoiSignal, ScheduleSignal, SignalProvider
from stopline.shared.config import SignalConfig, VehicleDetectorConfig, load_camera
from stopline.shared.messages import Candidate

FPS = 25


def run(cars, phase_at, cam, duration=10.0):
    p = DetectorPipeline(cam, VehicleDetectorConfig(backend="motion"), "site1")
    out = []
    for i, t, img, _ in frames(duration, FPS, cars, phase_at):
        out += p.process(img, i, 1_700_000_000 + t, t)
    return out + p.flush()


def phases(t_amber, t_red):
    return lambda t: "green" if t < t_amber else "amber" if t < t_red else "red"


@pytest.mark.parametrize("amber", [2.7, 4.2])
def test_amber_read_from_the_signal_head_of_a_simulated_scene_within_0_1_s(tmp_path, amber):
    """``stopline sim`` renders the head; its plan is the truth."""
    scene = tmp_path / "scene"
    assert main(["sim", "--seed", "3", "--duration", str(2.5 + amber), "--size", "480x270", "--green", "5",
                 "--amber", str(amber), "--arrivals", "200", "--out", str(scene)]) == 0
    truth = json.loads((scene / "truth.json").read_text())
    assert truth["spec"]["signal"]["amber_s"] == amber
    sig = RoiSignal(load_camera(scene / "camera.yaml").signal)
    cap = cv2.VideoCapture(str(scene / "truth.json").replace("truth.json", truth["video"]))
    measured, i = None, 0
    while True:
        ok, img = cap.read()
        if not ok:
            break
        sig.update(img, i / truth["fps"])
        if sig.phase() == "red":
            measured = sig.amber_before_red()
            break
        i += 1
    assert measured is not None and amber - 0.1 <= measured <= amber  # within 0.1 s, never longer


def test_the_violation_records_the_amber_before_its_red():
    out = run([Car(6.0, 420, 180)], phases(2.0, 4.5), camera())  # crossing at 7.2 s
    assert len(out) == 1
    cand = out[0][0].candidate
    assert cand.amber_s == pytest.approx(2.5, abs=0.1)
    assert cand.not_enforceable is None  # no minimum configured


def test_min_amber_marks_a_violation_after_a_short_amber_not_enforceable():
    cars = [Car(6.0, 420, 180)]
    short = run(cars, phases(3.5, 4.5), camera(rules={"min_amber_s": 3.0}))[0][0].candidate
    assert short.amber_s == pytest.approx(1.0, abs=0.1)
    assert short.not_enforceable and "shorter than the minimum 3.0 s" in short.not_enforceable
    long_enough = run(cars, phases(1.0, 4.5), camera(rules={"min_amber_s": 3.0}))[0][0].candidate
    assert long_enough.amber_s == pytest.approx(3.5, abs=0.1) and long_enough.not_enforceable is None
    # the stream began in red: the amber was never seen, so nothing proves it was long enough
    unseen = run(cars, lambda t: "red", camera(rules={"min_amber_s": 3.0}))[0][0].candidate
    assert unseen.amber_s is None and "not measured" in unseen.not_enforceable


class Readings(SignalProvider):
    """A provider fed the readings themselves (a head's smoothed state per frame)."""

    def update(self, frame, t: float) -> None:
        self._set("main", frame, t)


def _amber(changes: list[tuple[float, str]], until: float = 8.0) -> float | None:
    """Read at 25 frames/s: the phase of each frame is the last change at or before it."""
    s = Readings(SignalConfig(mode="constant", constant="red"))
    for k in range(int(until * 25)):
        t = k / 25
        s.update([phase for at, phase in changes if at <= t + 1e-9][-1], t)
    return s.amber_before_red()


def test_amber_read_across_the_dark_frames_of_a_lamp_change():
    """Real heads go dark for a moment between lamps: a short gap of unknown readings does not
    lose the amber, and its end is where the amber readings stopped (a gap never lengthens it)."""
    change = [(0.0, "green"), (2.0, "unknown"), (2.3, "amber"), (4.8, "unknown"), (5.0, "red")]
    # first to last amber reading: up to two frames less than the amber lasted, never more
    assert 2.5 - 0.08 <= _amber(change) <= 2.5
    assert 2.7 - 0.08 <= _amber([(0.0, "green"), (2.3, "amber"), (5.0, "red")]) <= 2.7
    # 0.8 s without a reading on either side: that end of the amber was not seen
    assert _amber([(0.0, "green"), (2.0, "unknown"), (2.3, "amber"), (4.8, "unknown"), (5.6, "red")]) is None
    assert _amber([(0.0, "green"), (1.5, "unknown"), (2.3, "amber"), (5.0, "red")]) is None
    assert _amber([(0.0, "unknown"), (2.3, "amber"), (5.0, "red")]) is None  # the stream began dark
    # a moment of nothing inside the red keeps the amber that came before it
    assert _amber(change + [(7.0, "unknown"), (7.2, "red")]) == _amber(change)


def test_amber_from_the_plan_and_from_the_controller():
    s = ScheduleSignal(SignalConfig(mode="schedule", schedule={"cycle_s": 60, "green_s": 25, "amber_s": 4}))
    s.update(None, 27.0)
    assert s.phase() == "amber" and s.amber_before_red() is None
    s.update(None, 40.0)
    assert s.amber_before_red() == 4
    m = MqttSignal(SignalConfig(mode="mqtt"))
    for phase, at in (("green", 100.0), ("amber", 110.0), ("amber", 111.0), ("red", 113.2), ("red", 114.0)):
        m.on_phase("main", phase, at)
    m.update(None, 112.0)
    assert m.amber_before_red() is None
    m.update(None, 115.0)
    assert m.amber_before_red() == pytest.approx(3.2)
    m2 = MqttSignal(SignalConfig(mode="mqtt"))
    m2.on_phase("main", "red", 100.0)  # no amber reported before this red
    m2.update(None, 101.0)
    assert m2.amber_before_red() is None


def test_candidates_without_the_new_fields_keep_their_signed_bytes():
    """A camera on an older build signed the header without amber_s, stop_line, not_enforceable."""
    out = run([Car(1.0, 200, 200)], lambda t: "red", camera(), duration=4)
    cand = out[0][0].candidate
    old = cand.model_dump(mode="json", exclude={"signature", "amber_s", "stop_line", "not_enforceable"})
    assert cand.amber_s is None and cand.not_enforceable is None
    assert cand.model_copy(update={"stop_line": None}).signed_bytes() == \
        json.dumps(old, sort_keys=True, separators=(",", ":")).encode()
    assert b'"stop_line"' in cand.signed_bytes()  # once set, the new fields are signed
    assert Candidate.model_validate_json(cand.model_dump_json()).signed_bytes() == cand.signed_bytes()
