"""Frames a camera should not send: a 1x1 frame, an 8K frame, one of another size mid-stream, a
size change that lasts, something that is not an image. Each gets a clear log line naming the
camera, and the camera keeps going: the red-light runner is still found."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from det_scene import Car, camera, frames
from stopline.services.vehicle_detector.pipeline import DetectorPipeline
from stopline.shared.config import VehicleDetectorConfig

RUNNER = Car(1.0, 300, 180)  # crosses at ~2.17 s


def run(bad_at: dict[int, object], *, resize_from: int | None = None, size=(1280, 720)):
    p = DetectorPipeline(camera(), VehicleDetectorConfig(backend="motion"), "site1")
    out = []
    for i, t, img, _ in frames(4.0, 25, [RUNNER], lambda t: "red"):
        if i in bad_at:
            out += p.process(bad_at[i], i, 1_700_000_000 + t, t)  # type: ignore[arg-type]
        if resize_from is not None and i >= resize_from:
            img = cv2.resize(img, size)
        out += p.process(img, i, 1_700_000_000 + t, t)
    out += p.flush()
    return p, [vc.candidate for vc, _ in out]


def test_tiny_huge_odd_sized_and_non_image_frames_are_logged_and_the_camera_goes_on(caplog):
    caplog.set_level(logging.WARNING)
    bad = {10: np.zeros((1, 1, 3), np.uint8), 20: np.zeros((4320, 7680, 3), np.uint8),
           30: np.zeros((180, 320, 3), np.uint8), 40: None, 41: np.zeros((360, 640), np.uint8)}
    p, cands = run(bad)
    assert len(cands) == 1 and cands[0].video_time_s == pytest.approx(RUNNER.crossing_time(), abs=0.1)
    text = caplog.text
    assert "camera cam1: frame 10 skipped: 1x1 is too small" in text
    assert "camera cam1: frame 20 is 7680x4320, over 8.3 megapixels: scaled down to" in text
    assert "camera cam1: frame 30 is 320x180, the stream is 640x360: scaled to the stream's size" in text
    assert "frame 40 skipped: not a BGR uint8 image" in text and "frame 41 skipped" in text
    assert p.guard.stats == {"skipped": 3, "scaled": 1, "resized": 2, "size_changes": 0}
    assert p.stats["frames"] == 100 + 2  # the odd-sized two were processed, scaled


def test_a_size_change_that_lasts_reinitialises_at_the_new_size(caplog):
    """The camera is reconfigured to 1280x720 at 3 s: frames are scaled to 640x360 until the new
    size has held 2 s, then detection, tracking and the signal heads start over at 1280x720 (the
    geometry scaled to it). The runner before the change and one after it are both caught."""
    caplog.set_level(logging.WARNING)
    p = DetectorPipeline(camera(), VehicleDetectorConfig(backend="motion"), "site1")
    late = Car(5.4, 150, 180)  # crosses at ~6.57 s, after the re-initialisation at 5 s
    out = []
    for i, t, img, _ in frames(8.0, 25, [RUNNER, late], lambda t: "red"):
        if i >= 75:
            img = cv2.resize(img, (1280, 720))
        out += p.process(img, i, 1_700_000_000 + t, t)
    out += p.flush()
    cands = [vc.candidate for vc, _ in out]
    assert "frame size is now 1280x720 (was 640x360) for 50 frames: re-initialising" in caplog.text
    assert p._frame_size == (1280, 720) and p.guard.stats["size_changes"] == 1
    times = sorted(c.video_time_s for c in cands)
    assert times == [pytest.approx(RUNNER.crossing_time(), abs=0.1), pytest.approx(late.crossing_time(), abs=0.15)]
