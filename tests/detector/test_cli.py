"""``stopline detect`` and ``stopline camera`` on a drawn clip (no real data needed)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from det_scene import Car, camera, frames
from stopline.cli import main
from stopline.shared.config import dump_camera
from stopline.shared.messages import Candidate
from stopline.shared.records import read_records
from stopline.shared.signing import public_key_path, verify_candidate


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("clip")
    video = d / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 360))
    cars = [Car(1.0, 100, 200), Car(3.0, 400, 180)]  # crossings ~2.05 s (green), ~4.17 s (red)
    for _, _, img, _ in frames(6, 25, cars, lambda t: "green" if t < 3.0 else "red"):
        w.write(img)
    w.release()
    cam = d / "camera.yaml"
    cam.write_text(dump_camera(camera(source="clip.avi")))
    return video, cam


def test_detect_writes_records_evidence_summary_and_signed_candidates(clip, tmp_path, capsys):
    video, cam = clip
    key = tmp_path / "cam.pem"
    assert main(["camera", "keygen", "--out", str(key)]) == 0
    assert main(["camera", "keygen", "--out", str(key)]) == 1  # never overwrites a key silently
    out = tmp_path / "out"
    # drawn boxes, not vehicles a trained detector should see: the motion backend
    assert main(["detect", str(video), "--camera", str(cam), "--out", str(out), "--sign-key", str(key),
                 "--no-progress", "--backend", "motion"]) == 0
    records = list(read_records(out / "violations.jsonl"))
    assert len(records) == 1
    r = records[0]
    assert r.signal_phase == "red" and r.video_time_s == pytest.approx(4.17, abs=0.1)
    assert all((out / "evidence" / name).is_file() for name in r.evidence)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == 150 and summary["violations"] == 1 and summary["source"]["corrupt"] == 0
    cand = Candidate.model_validate(json.loads((out / "candidates" / f"{r.event_id}.json").read_text())["candidate"])
    assert verify_candidate(cand, public_key_path(key).read_bytes())
    assert "1 violation(s) in 150 frames" in capsys.readouterr().out


def test_detect_bad_inputs_exit_2_with_a_reason(clip, tmp_path, capsys):
    video, cam = clip
    assert main(["detect", str(tmp_path / "nope.mp4"), "--camera", str(cam), "--out", str(tmp_path / "o")]) == 2
    assert "no such video file" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nstop_line: [[0, 0]]\n")
    assert main(["detect", str(video), "--camera", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "stop_line" in capsys.readouterr().err
    assert main(["detect", str(video), "--camera", str(cam), "--out", str(tmp_path / "o"),
                 "--model", str(tmp_path / "m.onnx")]) == 2
    assert "m.onnx: model file not found" in capsys.readouterr().err


def test_camera_snapshot_and_check(clip, tmp_path, capsys):
    video, cam = clip
    snap = tmp_path / "snap.png"
    assert main(["camera", "snapshot", str(video), "--out", str(snap), "--frame", "10"]) == 0
    assert cv2.imread(str(snap)).shape == (360, 640, 3)
    drawn = tmp_path / "check.png"
    assert main(["camera", "check", "--camera", str(cam), "--out", str(drawn), "--seconds", "5"]) == 0
    out = capsys.readouterr().out
    assert "green" in out and "red" in out and "geometry drawn" in out
    img, plain = cv2.imread(str(drawn)), cv2.imread(str(snap))
    # the stop line (y=200) is drawn in red over the frame
    assert img[200, 320, 2] > 200 and img[200, 320, 0] < 60 and plain[200, 320, 0] > 150
