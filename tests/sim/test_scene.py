"""The rendered scene: determinism, the violations' geometry, outputs a user reads."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from stopline.shared.config import load_camera
from stopline.sim.camera_config import camera_config
from stopline.sim.registry import CONFUSIONS
from stopline.sim.frames import FrameRenderer
from stopline.sim.produce import render
from stopline.sim.scene import build_scene
from stopline.sim.spec import SceneSpec
from stopline.sim.truth import crossings, load_truth


def _past_line(point: np.ndarray, line: np.ndarray, direction: np.ndarray) -> float:
    """Signed distance of ``point`` past the stop line, along the direction of travel."""
    a, b = line[0], line[-1]
    n = np.array([-(b - a)[1], (b - a)[0]])
    n /= np.linalg.norm(n)
    if np.dot(n, direction) < 0:
        n = -n
    return float(np.dot(point - a, n))


def test_same_seed_same_truth_and_frames() -> None:
    spec = SceneSpec(seed=11, duration_s=6.0, size=(320, 180))
    a, b = build_scene(spec), build_scene(spec)
    assert crossings(a) == crossings(b)
    assert [t.agent.plate for t in a.tracks] == [t.agent.plate for t in b.tracks]
    ra, rb = FrameRenderer(a), FrameRenderer(b)
    for f in (0, 37, 149):
        ia, ta = ra.render(f)
        ib, tb = rb.render(f)
        assert np.array_equal(ia, ib), f"frame {f} differs between two renders of the same seed"
        assert ta == tb
    other = FrameRenderer(build_scene(spec.with_(seed=12)))
    assert not np.array_equal(ra.render(100)[0], other.render(100)[0])


def test_violations_cross_the_stop_line_on_red(rendered) -> None:
    spec, out = rendered
    truth = load_truth(out.truth)
    cam = load_camera(out.camera)
    assert truth.violations, "the test scene is expected to hold violations"
    line = np.array(cam.stop_line)
    direction = np.array(cam.travel_direction)
    for v in truth.violations:
        assert truth.frames[v.frame].phase == "red"
        assert v.time_into_red_s > 0
        veh = truth.vehicle(v.vehicle_id)
        now, before = veh.at(v.frame), veh.at(v.frame - 1)
        assert now is not None and before is not None
        shake_now = np.array(truth.frames[v.frame].shake)
        shake_before = np.array(truth.frames[v.frame - 1].shake)
        assert _past_line(np.array(now.front) - shake_now, line, direction) >= 0
        assert _past_line(np.array(before.front) - shake_before, line, direction) < 0
        assert truth.frames[v.frame].time_into_red_s == pytest.approx(v.time_into_red_s, abs=1e-3)


def test_stopped_vehicles_are_never_violations() -> None:
    spec = SceneSpec(seed=5, duration_s=60.0, size=(320, 180), red_runner_share=0.6)
    scene = build_scene(spec)
    viol, amber, exempt = crossings(scene)
    violators = {c.vehicle_id for c in viol}
    stopped = 0
    for tr in scene.tracks:
        stop_s = tr.agent.path.stop_s
        if stop_s is None:
            continue
        before_line = tr.s < stop_s
        if before_line.any() and (tr.v[before_line] < 0.3).any():
            stopped += 1
            assert tr.agent.vid not in violators
    assert stopped >= 3 and viol, "scene should have both stopped vehicles and violations"
    # right turns on red are recorded apart, never as violations
    assert all(c.movement == "right" for c in exempt)
    assert all(c.movement == "straight" for c in viol)


def test_outputs_are_complete(rendered) -> None:
    spec, out = rendered
    truth = load_truth(out.truth)
    assert truth.n_frames == spec.n_frames == len(truth.frames)
    cap = cv2.VideoCapture(str(out.video))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == spec.n_frames
    ok, frame = cap.read()
    assert ok and frame.shape == (360, 640, 3)
    cam = load_camera(out.camera)
    assert cam.frame_size == (640, 360) and cam.source == "video.mp4" and cam.signal.mode == "roi"
    assert len(cam.lanes) == spec.lanes and cam.exempt_zones
    # the stop line lies on the painted line: bright pixels along it in the first frame
    p = np.array(cam.stop_line).mean(axis=0).astype(int)
    assert frame[p[1] - 1 : p[1] + 2, p[0] - 3 : p[0] + 4].mean() > 150
    preview = cv2.imread(str(out.preview))
    assert preview is not None and preview.shape[1] == 1920
    # every vehicle of the scene is in the registry, with decoys one confusable character away
    with open(out.registry, newline="") as f:
        rows = list(csv.DictReader(f))
    plates = {r["plate"] for r in rows}
    scene_plates = {v.plate for v in truth.vehicles}
    assert scene_plates <= plates
    decoys = plates - scene_plates
    assert decoys
    for d in decoys:
        assert any(len(d) == len(p) and sum(a != b for a, b in zip(d, p)) == 1
                   and all(a == b or CONFUSIONS.get(b) == a for a, b in zip(d, p)) for p in scene_plates)


def test_signal_roi_shows_the_phase(rendered) -> None:
    spec, out = rendered
    truth = load_truth(out.truth)
    cam = load_camera(out.camera)
    roi = cam.signal.heads[0].roi
    cap = cv2.VideoCapture(str(out.video))
    seen = {}
    for f in range(truth.n_frames):
        ok, img = cap.read()
        assert ok
        phase = truth.frames[f].phase
        if phase in seen:
            continue
        crop = img[roi.y : roi.y + roi.h, roi.x : roi.x + roi.w].astype(int)
        b, g, r = crop[..., 0], crop[..., 1], crop[..., 2]
        lit = {"red": ((r > 180) & (g < 120)).sum(), "green": ((g > 180) & (r < 150)).sum(),
               "amber": ((r > 180) & (g > 120) & (b < 100)).sum()}
        seen[phase] = max(lit, key=lit.get)
    assert seen == {p: p for p in seen} and set(seen) == {"green", "amber", "red"}


def test_truth_plates_and_boxes_are_consistent(rendered) -> None:
    spec, out = rendered
    truth = load_truth(out.truth)
    raw = json.loads(out.truth.read_text())
    assert raw["format"] == "stopline-sim-truth/1"
    for v in truth.vehicles:
        assert v.plate.isalnum() and v.plate.upper() == v.plate and 5 <= len(v.plate) <= 8
        assert v.region in ("us", "eu")
        for p in v.track:
            x1, y1, x2, y2 = p.box
            assert 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360
            if p.plate is not None and p.plate_vis and p.plate_vis > 0.9:
                q = np.array(p.plate)
                # a visible plate lies inside its vehicle's box
                assert (q[:, 0] >= x1 - 1).all() and (q[:, 0] <= x2 + 1).all()


def test_bad_spec_is_refused() -> None:
    with pytest.raises(ValueError, match="lanes"):
        SceneSpec(lanes=7)
    with pytest.raises(ValueError, match="even"):
        SceneSpec(size=(641, 360))
    with pytest.raises(ValueError, match="red_runner_share"):
        SceneSpec(red_runner_share=1.5)


def test_exempt_zone_catches_right_turns_only() -> None:
    """Turning vehicles' fronts enter camera.yaml's exempt zone; straight ones' never do."""
    scene = build_scene(SceneSpec(seed=3, duration_s=40.0, size=(320, 180)))
    renderer = FrameRenderer(scene)
    zone = np.array(camera_config(scene, renderer.signal_box()).exempt_zones[0].polygon, np.float32)
    entered: dict[int, bool] = {}
    kerb = {t.agent.vid: t.agent.turning for t in scene.tracks if t.agent.lane == "a0"}
    crossing = {c.vehicle_id: c.frame for c in sum(crossings(scene), [])}
    frames = set()
    for tr in scene.tracks:  # the kerb lane's vehicles crossing on green too
        if tr.agent.vid in kerb and tr.agent.path.stop_s is not None:
            past = np.flatnonzero(tr.s >= tr.agent.path.stop_s)
            if len(past) and past[0] > 0:
                crossing.setdefault(tr.agent.vid, tr.first + int(past[0]))
    for vid, f0 in crossing.items():
        if vid in kerb:
            frames.update(range(f0, min(f0 + 60, scene.spec.n_frames)))
    for f in sorted(frames):
        _, entries = renderer.render(f)
        dx, dy = renderer.shake[f]
        for e in entries:
            if e["id"] in kerb:
                inside = cv2.pointPolygonTest(zone, (e["front"][0] - dx, e["front"][1] - dy), False) >= 0
                entered[e["id"]] = entered.get(e["id"], False) or inside
    turning = [v for v, turns in kerb.items() if turns and v in entered]
    straight = [v for v, turns in kerb.items() if not turns and v in entered]
    assert turning and straight
    assert not any(entered[v] for v in straight)
    assert any(entered[v] for v in turning)


def test_same_seed_same_files(tmp_path) -> None:
    spec = SceneSpec(seed=21, duration_s=3.0, size=(320, 180))
    a, b = render(spec, tmp_path / "a"), render(spec, tmp_path / "b")
    for name in ("truth.json", "camera.yaml", "registry.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    c = render(spec.with_(seed=22), tmp_path / "c")
    assert c.truth.read_bytes() != a.truth.read_bytes()
