"""The whole edge path on drawn scenes: detect (motion) -> track -> signal -> rule -> burst."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from det_scene import STOP_Y, Car, camera, frames
from stopline.services.vehicle_detector.pipeline import DetectorPipeline
from stopline.shared.config import VehicleDetectorConfig
from stopline.shared.messages import decode, encode, sha256_hex
from stopline.shared.signing import generate_key, public_pem, sign_candidate, verify_candidate

FPS = 25


def run(cars, phase_at, cam=None, *, duration=10.0, night=False, signer=None, stop_after=None):
    p = DetectorPipeline(cam or camera(), VehicleDetectorConfig(backend="motion"), "site1", signer)
    out = []
    for i, t, img, _ in frames(duration, FPS, cars, phase_at, night=night):
        out += p.process(img, i, 1_700_000_000 + t, t)
        if stop_after is not None and t >= stop_after:
            break
    out += p.flush()
    return p, out


def red_after(t_red):
    return lambda t: "green" if t < t_red - 1 else "amber" if t < t_red else "red"


@pytest.mark.parametrize("night", [False, True])
def test_one_violation_for_the_car_that_crosses_on_red(night):
    cars = [Car(1.0, 100, 150), Car(2.0, 300, 200), Car(6.0, 420, 180)]  # crossings 2.4 s, 3.05 s, 7.17 s
    p, out = run(cars, red_after(4.5), night=night)
    assert len(out) == 1
    cand = out[0][0].candidate
    assert cand.signal_phase == "red"
    assert cand.video_time_s == pytest.approx(cars[2].crossing_time(), abs=0.1)
    assert 2.4 < cand.time_into_red_s < 2.8
    assert p.stats["crossings"] == 3 and p.stats["not_red"] == 2
    rec = p.record(cand.event_id)
    assert rec.box[3] == pytest.approx(STOP_Y, abs=12)  # its front at the line in that frame
    assert 0 < rec.decided_video_s - rec.video_time_s <= 1.0


def test_evidence_burst_roles_hashes_and_size():
    cam = camera(evidence={"burst_size": 5, "jpeg_quality": 80})
    _, out = run([Car(3.0, 200, 180)], lambda t: "red", cam)
    assert len(out) == 1
    vc, blobs = out[0]
    ev = vc.candidate.evidence
    roles = [e.role for e in ev]
    assert roles == ["approach", "approach", "crossing", "inside", "inside", "vehicle", "signal"]
    frames_idx = [e.frame_index for e in ev[:5]]
    assert frames_idx == sorted(frames_idx) and len(set(frames_idx)) == 5
    for e in ev:
        assert sha256_hex(blobs[e.name]) == e.sha256
        assert cv2.imdecode(np.frombuffer(blobs[e.name], np.uint8), cv2.IMREAD_COLOR) is not None
    assert all(e.vehicle_box is not None for e in ev if e.role in ("crossing", "vehicle"))
    assert all(e.signal_box is not None and e.signal_state == "red" for e in ev if e.role != "vehicle")
    assert sum(map(len, blobs.values())) < 1_000_000
    back = decode(encode(vc, blobs))  # the wire format accepts it
    assert back.message.candidate.event_id == vc.candidate.event_id


def test_grace_time_creeping_and_exempt_zone_are_not_violations():
    # red from t=0; car crosses at ~2.1 s
    car = [Car(1.0, 200, 200)]
    p, out = run(car, lambda t: "green" if t < 1.5 else "red", camera(rules={"grace_s": 1.0}), duration=4)
    assert out == [] and p.stats["grace"] == 1
    p, out = run(car, lambda t: "red", camera(rules={"min_speed_px_s": 400}), duration=4)
    assert out == [] and p.stats["creeping"] == 1
    zone = {"name": "right-turn", "polygon": [[150, 150], [350, 150], [350, 260], [150, 260]]}
    p, out = run(car, lambda t: "red", camera(exempt_zones=[zone]), duration=4)
    assert out == [] and p.stats["exempt"] == 1


def test_a_car_stopping_at_the_line_is_not_flagged():
    p, out = run([Car(1.0, 200, 150, stop_at=STOP_Y - 8)], lambda t: "red", duration=5)
    assert out == []


def test_lanes_pick_their_own_signal_group():
    """Left lane's group is green while the main head shows red: only the right lane's car counts."""
    cam = camera(
        lanes=[{"id": "left", "polygon": [[0, 0], [320, 0], [320, 360], [0, 360]], "signal_group": "left"},
               {"id": "right", "polygon": [[320, 0], [640, 0], [640, 360], [320, 360]], "signal_group": "main"}],
        signal={"mode": "mqtt"})
    p = DetectorPipeline(cam, VehicleDetectorConfig(backend="motion"), "s", clock="video")
    p.on_signal_phase("main", "red", 0.0)
    p.on_signal_phase("left", "green", 0.0)
    out = []
    for i, t, img, _ in frames(5, FPS, [Car(1.0, 100, 200), Car(1.0, 450, 200)], lambda t: "red"):
        out += p.process(img, i, 1e9 + t, t)
    out += p.flush()
    assert [vc.candidate.lane for vc, _ in out] == ["right"]


def test_once_per_track_and_flush_completes_a_pending_burst():
    p, out = run([Car(1.0, 200, 200)], lambda t: "red", duration=10)
    assert len(out) == 1  # the track stays in view past the line: still one event
    # stop the stream right after the crossing (~2.05 s): the burst is completed by flush()
    p, out = run([Car(1.0, 200, 200)], lambda t: "red", duration=10, stop_after=2.15)
    assert len(out) == 1
    roles = [e.role for e in out[0][0].candidate.evidence]
    assert "crossing" in roles and roles.count("inside") < 2


def test_signed_burst_verifies_and_tampering_is_detected(tmp_path):
    key = generate_key(tmp_path / "cam.pem")
    _, out = run([Car(1.0, 200, 200)], lambda t: "red", duration=4, signer=lambda c: sign_candidate(c, key))
    cand = out[0][0].candidate
    pem = public_pem(key)
    assert cand.signature and cand.key_id and verify_candidate(cand, pem)
    forged = cand.model_copy(update={"time_into_red_s": cand.time_into_red_s + 1})
    assert not verify_candidate(forged, pem)
    ev = list(cand.evidence)
    ev[0] = ev[0].model_copy(update={"sha256": "0" * 64})
    assert not verify_candidate(cand.model_copy(update={"evidence": ev}), pem)
    other = generate_key(tmp_path / "other.pem")
    assert not verify_candidate(cand, public_pem(other))


def test_privacy_blur_changes_only_other_road_users():
    cars = [Car(1.0, 100, 200), Car(1.0, 400, 90)]  # the second one is slow: before the line
    cam_plain = camera()
    cam_blur = camera(evidence={"burst_size": 4, "blur_others": True})
    out_plain = run(cars, lambda t: "red", cam_plain, duration=3)[1]
    out_blur = run(cars, lambda t: "red", cam_blur, duration=3)[1]
    assert len(out_plain) == len(out_blur) == 1

    def img(out):
        vc, blobs = out[0]
        e = next(e for e in vc.candidate.evidence if e.role == "crossing")
        return cv2.imdecode(np.frombuffer(blobs[e.name], np.uint8), cv2.IMREAD_COLOR), e

    a, ea = img(out_plain)
    b, _ = img(out_blur)
    x1, y1, x2, y2 = (int(v) for v in ea.vehicle_box)
    violator_diff = np.abs(a[y1:y2, x1:x2].astype(int) - b[y1:y2, x1:x2].astype(int)).mean()
    other = a[0:110, 400:470].astype(int) - b[0:110, 400:470].astype(int)  # the other car, ~y -15..95
    assert violator_diff < 1.5
    assert np.abs(other).mean() > 4 and np.abs(other).max() > 60  # its windshield edges are smeared
