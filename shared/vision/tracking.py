"""Multi-object tracking with ByteTrack (the ``trackers`` library, Roboflow's home for it since
supervision 0.26): Kalman prediction, two-stage association of high- then low-confidence boxes,
tracks kept through short occlusions (``lost_track_buffer``)."""

from __future__ import annotations

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from stopline.shared.vision.detections import Detections


class Tracker:
    """``update(detections) -> (xyxy, track_ids, class_ids, scores)`` for confirmed tracks."""

    def __init__(self, fps: float = 25.0, *, lost_s: float = 1.0, activation: float = 0.3,
                 high_conf: float = 0.5, min_frames: int = 2, min_iou: float = 0.1):
        self._bt = ByteTrackTracker(
            lost_track_buffer=max(1, int(round(lost_s * fps))),
            frame_rate=fps,
            track_activation_threshold=activation,
            minimum_consecutive_frames=min_frames,
            minimum_iou_threshold=min_iou,
            high_conf_det_threshold=high_conf,
        )

    def update(self, det: Detections) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        sv_det = sv.Detections(xyxy=det.xyxy.astype(np.float32), confidence=det.scores.astype(np.float32),
                               class_id=det.class_ids.astype(int))
        out = self._bt.update(sv_det)
        ids = out.tracker_id if out.tracker_id is not None else np.full(len(out), -1)
        ok = ids >= 0
        conf = out.confidence if out.confidence is not None else np.ones(len(out), np.float32)
        cls = out.class_id if out.class_id is not None else np.zeros(len(out), int)
        return out.xyxy[ok], ids[ok].astype(int), cls[ok].astype(int), conf[ok]
