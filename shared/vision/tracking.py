"""Multi-object tracking with ByteTrack (the ``trackers`` library, Roboflow's home for it since
supervision 0.26): Kalman prediction, two-stage association of high- then low-confidence boxes,
tracks kept through short occlusions (``lost_track_buffer``)."""

from __future__ import annotations

from collections import deque

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from stopline.shared.vision.detections import Detections, box_iou


def inflation(fps: float) -> float:
    """How much boxes are grown about their centres for association: 1 at 12 frames/s and up, 2 at
    6, at most 3. ByteTrack associates by IoU; at 5-8 frames/s a motorbike moves more than its own
    length between frames, so its boxes never overlap and its track never starts."""
    return max(1.0, min(3.0, 12.0 / max(fps, 1e-3)))


def _scale_boxes(xyxy: np.ndarray, k: float) -> np.ndarray:
    c = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    half = (xyxy[:, 2:] - xyxy[:, :2]) / 2 * k
    return np.concatenate([c - half, c + half], axis=1)


XYXY = tuple[float, float, float, float]


class Tracker:
    """``update(detections) -> (xyxy, track_ids, class_ids, scores)`` for confirmed tracks.

    Below 12 frames/s boxes are tracked grown by ``inflation(fps)`` (and shrunk back on the way
    out), so a small vehicle that moves further than its size from frame to frame still overlaps
    its own track's prediction.

    ``earlier`` holds, after each update, where the tracks confirmed in it were seen before: the
    chain of boxes no track took (too unsure to start one: a vehicle half hidden behind another)
    that leads frame by frame to the new track's box, oldest first, as ``(t, box)``. A track
    starts when the model is sure of the vehicle; the vehicle was there before."""

    def __init__(self, fps: float = 25.0, *, lost_s: float = 1.0, activation: float = 0.3,
                 high_conf: float = 0.5, min_frames: int = 2, min_iou: float = 0.1,
                 chain_iou: float = 0.3):
        self.inflate = inflation(fps)
        self.chain_iou = chain_iou
        self._untaken: deque[tuple[float, np.ndarray]] = deque(maxlen=max(1, int(round(lost_s * fps))))
        self._newest_id = -1  # ByteTrack numbers confirmed tracks 0, 1, 2, ...: higher ones are new
        self.earlier: dict[int, list[tuple[float, XYXY]]] = {}
        self._bt = ByteTrackTracker(
            lost_track_buffer=max(1, int(round(lost_s * fps))),
            frame_rate=fps,
            track_activation_threshold=activation,
            minimum_consecutive_frames=min_frames,
            minimum_iou_threshold=min_iou,
            high_conf_det_threshold=high_conf,
        )

    def update(self, det: Detections, t: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Tracks after this frame's boxes; ``t`` (the frame's time) dates ``earlier``."""
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
        self.earlier = {}
        if t is not None:
            self._trace_new(out.xyxy[ok], ids[ok])
            self._untaken.append((t, np.asarray(out.xyxy[~ok], np.float32).reshape(-1, 4)))
        boxes = out.xyxy[ok] if self.inflate == 1.0 else _scale_boxes(out.xyxy[ok], 1.0 / self.inflate)
        return boxes, ids[ok].astype(int), cls[ok].astype(int), conf[ok]

    def _trace_new(self, xyxy: np.ndarray, ids: np.ndarray) -> None:
        """Follow each newly confirmed track back through the boxes no track took."""
        for box, tid in zip(xyxy, ids):
            if tid <= self._newest_id:
                continue
            chain, cur = [], np.asarray(box, np.float32)
            for i in range(len(self._untaken) - 1, -1, -1):
                t_prev, cand = self._untaken[i]
                if not len(cand):
                    break
                iou = [box_iou(cur, c) for c in cand]
                j = int(np.argmax(iou))
                if iou[j] < self.chain_iou:
                    break
                cur = cand[j]
                self._untaken[i] = (t_prev, np.delete(cand, j, axis=0))  # one box, one vehicle
                out = cur if self.inflate == 1.0 else _scale_boxes(cur[None], 1.0 / self.inflate)[0]
                chain.append((t_prev, tuple(map(float, out))))
            if chain:
                self.earlier[int(tid)] = chain[::-1]
        self._newest_id = max([self._newest_id, *map(int, ids)])
