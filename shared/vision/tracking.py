"""Multi-object tracking with ByteTrack (the ``trackers`` library, Roboflow's home for it since
supervision 0.26): Kalman prediction, two-stage association of high- then low-confidence boxes,
tracks kept through short occlusions (``lost_track_buffer``)."""

from __future__ import annotations

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from stopline.shared.vision.detections import Detections


def inflation(fps: float) -> float:
    """How much boxes are grown about their centres for association: 1 at 12 frames/s and up, 2 at
    6, at most 3. ByteTrack associates by IoU; at 5-8 frames/s a motorbike moves more than its own
    length between frames, so its boxes never overlap and its track never starts."""
    return max(1.0, min(3.0, 12.0 / max(fps, 1e-3)))


def _scale_boxes(xyxy: np.ndarray, k: float) -> np.ndarray:
    c = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    half = (xyxy[:, 2:] - xyxy[:, :2]) / 2 * k
    return np.concatenate([c - half, c + half], axis=1)


class Tracker:
    """``update(detections) -> (xyxy, track_ids, class_ids, scores)`` for confirmed tracks.

    Below 12 frames/s boxes are tracked grown by ``inflation(fps)`` (and shrunk back on the way
    out), so a small vehicle that moves further than its size from frame to frame still overlaps
    its own track's prediction."""

    def __init__(self, fps: float = 25.0, *, lost_s: float = 1.0, activation: float = 0.3,
                 high_conf: float = 0.5, min_frames: int = 2, min_iou: float = 0.1):
        self.inflate = inflation(fps)
        self._bt = ByteTrackTracker(
            lost_track_buffer=max(1, int(round(lost_s * fps))),
            frame_rate=fps,
            track_activation_threshold=activation,
            minimum_consecutive_frames=min_frames,
            minimum_iou_threshold=min_iou,
            high_conf_det_threshold=high_conf,
        )

    def update(self, det: Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        xyxy = det.xyxy.astype(np.float32).reshape(-1, 4)
        if self.inflate != 1.0:
            xyxy = _scale_boxes(xyxy, self.inflate)
        sv_det = sv.Detections(xyxy=xyxy, confidence=det.scores.astype(np.float32),
                               class_id=det.class_ids.astype(int))
        out = self._bt.update(sv_det)
        ids = out.tracker_id if out.tracker_id is not None else np.full(len(out), -1)
        ok = ids >= 0
        conf = out.confidence if out.confidence is not None else np.ones(len(out), np.float32)
        cls = out.class_id if out.class_id is not None else np.zeros(len(out), int)
        boxes = out.xyxy[ok] if self.inflate == 1.0 else _scale_boxes(out.xyxy[ok], 1.0 / self.inflate)
        return boxes, ids[ok].astype(int), cls[ok].astype(int), conf[ok]
