"""The motion safety net of the YOLO backend: a moving blob that no detection explains and that
behaves like a vehicle is handed to the tracker too, as class ``motion``.

A model misses the odd dark or unusual vehicle; background subtraction does not care what a
vehicle looks like. Each processed frame, MOG2 blobs inside the approach (the lanes) are followed
from frame to frame and compared with the model's boxes and the tracks the model holds: a blob
overlapping one, or lying just ahead of / beside one (headlight beams, shadows, fragments of a
detected vehicle), is explained. A followed blob is confirmed once it has been seen in
``min_frames`` frames over at least ``min_age_s``, of vehicle size, moving steadily along the
travel direction at vehicle speed. In a frame where a confirmed blob is not explained, its box
joins the detections (score ``score``, class ``motion``): a vehicle the model never sees, or one
it loses on the way to the line.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stopline.shared.vision.detections import MOTION_CLASS_ID, Detections, box_iou
from stopline.shared.vision.motion import MotionDetector

XYXY = tuple[float, float, float, float]


@dataclass
class _Candidate:
    boxes: list[tuple[float, XYXY]] = field(default_factory=list)  # (t, box)
    missed: int = 0
    confirmed: bool = False
    explained: bool = False  # its blob in the latest frame is a detection's

    @property
    def last(self) -> XYXY:
        return self.boxes[-1][1]


class MotionSafetyNet:
    """``update(frame, t, detections) -> detections plus confirmed unexplained moving blobs``."""

    def __init__(self, direction: tuple[float, float], *, roi_polygons: list[list[tuple[float, float]]] | None = None,
                 work_width: int = 320, min_frames: int = 4, min_age_s: float = 0.4,
                 min_speed_frac_s: float = 0.04, max_speed_frac_s: float = 1.5, min_area_frac: float = 0.002,
                 max_area_frac: float = 0.2, max_missed: int = 2, score: float = 0.6,
                 explain_margin: float = 0.5, explain_ahead: float = 3.0):
        d = np.asarray(direction, np.float64)
        self.direction = d / max(float(np.hypot(*d)), 1e-9)
        self.motion = MotionDetector(work_width=work_width, min_area_frac=min_area_frac, roi_polygons=roi_polygons)
        self.min_frames, self.min_age_s = min_frames, min_age_s
        self.min_speed_frac_s, self.max_speed_frac_s = min_speed_frac_s, max_speed_frac_s
        self.min_area_frac, self.max_area_frac = min_area_frac, max_area_frac
        self.max_missed, self.score = max_missed, score
        self.explain_margin, self.explain_ahead = explain_margin, explain_ahead
        self._candidates: list[_Candidate] = []
        self.stats = {"blobs": 0, "explained": 0, "confirmed": 0, "added": 0}

    def reset(self) -> None:
        """Forget everything (the frame size changed)."""
        self.motion = MotionDetector(work_width=self.motion.work_width, min_area_frac=self.motion.min_area_frac,
                                     roi_polygons=self.motion.roi_polygons)
        self._candidates = []

    def _explain_regions(self, boxes: np.ndarray) -> np.ndarray:
        """Each box grown by ``explain_margin`` of its size on every side and ``explain_ahead``
        of its size in the travel direction: at night a car's headlight beam lights the road up
        to three car lengths ahead of it, a blob moving with the car (busy night 14, sim seed 14:
        a beam two lengths ahead of a far car crossed the line as "motion" at one length)."""
        if len(boxes) == 0:
            return np.zeros((0, 4), np.float32)
        w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
        size = np.maximum(w, h)
        m = self.explain_margin * size
        dx, dy = self.direction * self.explain_ahead
        out = np.stack([boxes[:, 0] - m + np.minimum(dx, 0) * size, boxes[:, 1] - m + np.minimum(dy, 0) * size,
                        boxes[:, 2] + m + np.maximum(dx, 0) * size, boxes[:, 3] + m + np.maximum(dy, 0) * size], 1)
        return out

    def update(self, frame: np.ndarray, t: float, det: Detections,
               tracked: list[XYXY] | tuple[XYXY, ...] = (), min_score: float = 0.0) -> Detections:
        """``det`` plus the boxes of confirmed candidates; ``tracked``: boxes the tracker holds
        (they explain blobs too). Only detections scoring ``min_score`` or more explain a blob: a
        vehicle the model half sees (a dark pickup at 0.15) is what the net is there for."""
        blobs = self.motion.detect(frame)
        fh, fw = frame.shape[:2]
        area_min, area_max = self.min_area_frac * fw * fh, self.max_area_frac * fw * fh
        known = np.concatenate([det.xyxy[det.scores >= min_score].reshape(-1, 4),
                                np.asarray(tracked, np.float32).reshape(-1, 4)])
        regions = self._explain_regions(known)
        self.stats["blobs"] += len(blobs)
        fresh: list[tuple[XYXY, bool]] = []
        for b in blobs.xyxy:
            box: XYXY = tuple(map(float, b))  # type: ignore[assignment]
            area = (box[2] - box[0]) * (box[3] - box[1])
            if area < area_min or area > area_max:
                continue
            explained = _overlaps_any(box, regions)
            self.stats["explained"] += explained
            fresh.append((box, explained))
        # every blob is followed, explained or not: a vehicle the model sees on its way in and
        # then loses is taken over at once, its history already vehicle-like
        self._associate(fresh, t)
        extra = []
        for c in self._candidates:
            if c.missed == 0 and not c.confirmed and self._vehicle_like(c, fw, fh):
                c.confirmed = True
                self.stats["confirmed"] += 1
            if c.confirmed and c.missed == 0 and not c.explained:
                extra.append(c.last)
        if not extra:
            return det
        self.stats["added"] += len(extra)
        return Detections(np.concatenate([det.xyxy.reshape(-1, 4), np.asarray(extra, np.float32)]),
                          np.concatenate([det.scores, np.full(len(extra), self.score, np.float32)]),
                          np.concatenate([det.class_ids, np.full(len(extra), MOTION_CLASS_ID, np.int32)]))

    def _associate(self, fresh: list[tuple[XYXY, bool]], t: float) -> None:
        """Greedy match of this frame's blobs to candidates (overlap with the box predicted from
        the candidate's last move); unmatched blobs start candidates."""
        used: set[int] = set()
        for c in self._candidates:
            pred = _predict(c, t)
            best, best_score = None, 0.05
            for i, (box, _) in enumerate(fresh):
                if i in used:
                    continue
                s = max(box_iou(pred, box), box_iou(c.last, box))
                if s > best_score:
                    best, best_score = i, s
            if best is None:
                c.missed += 1
            else:
                used.add(best)
                c.boxes.append((t, fresh[best][0]))
                del c.boxes[:-32]
                c.missed, c.explained = 0, fresh[best][1]
        self._candidates = [c for c in self._candidates if c.missed <= self.max_missed]
        self._candidates += [_Candidate([(t, box)], explained=ex) for i, (box, ex) in enumerate(fresh)
                             if i not in used]

    def _vehicle_like(self, c: _Candidate, fw: int, fh: int) -> bool:
        """Seen long enough, moving along the travel direction at vehicle speed."""
        if len(c.boxes) < self.min_frames:
            return False
        (t0, b0), (t1, b1) = c.boxes[0], c.boxes[-1]
        if t1 - t0 < self.min_age_s:
            return False
        # the box's centre and its front edge both move (a blob growing in place is a ghost
        # or a light coming on, not a vehicle)
        move = np.array([(b1[0] + b1[2] - b0[0] - b0[2]) / 2, (b1[1] + b1[3] - b0[1] - b0[3]) / 2])
        along = float(move @ self.direction)
        dist = float(np.hypot(*move))
        if along <= 0 or along < 0.8 * dist:  # within ~37 degrees of the travel direction
            return False
        speed = along / (t1 - t0) / max(fw, fh)
        if not (self.min_speed_frac_s <= speed <= self.max_speed_frac_s):
            return False
        # steady: every step moves forward (no jitter back and forth)
        steps = [(b[0] + b[2] - a[0] - a[2]) / 2 * self.direction[0] + (b[1] + b[3] - a[1] - a[3]) / 2 * self.direction[1]
                 for (_, a), (_, b) in zip(c.boxes, c.boxes[1:])]
        return sum(s > 0 for s in steps) >= 0.75 * len(steps)


def _predict(c: _Candidate, t: float) -> XYXY:
    if len(c.boxes) < 2:
        return c.last
    (ta, a), (tb, b) = c.boxes[-2], c.boxes[-1]
    k = (t - tb) / max(tb - ta, 1e-6)
    dx, dy = ((b[0] + b[2]) - (a[0] + a[2])) / 2 * k, ((b[1] + b[3]) - (a[1] + a[3])) / 2 * k
    return (b[0] + dx, b[1] + dy, b[2] + dx, b[3] + dy)


def _overlaps_any(box: XYXY, regions: np.ndarray) -> bool:
    """More than a third of ``box`` lies in one of ``regions``."""
    if len(regions) == 0:
        return False
    iw = np.clip(np.minimum(regions[:, 2], box[2]) - np.maximum(regions[:, 0], box[0]), 0, None)
    ih = np.clip(np.minimum(regions[:, 3], box[3]) - np.maximum(regions[:, 1], box[1]), 0, None)
    area = max((box[2] - box[0]) * (box[3] - box[1]), 1e-9)
    return bool(((iw * ih) / area > 1 / 3).any())

