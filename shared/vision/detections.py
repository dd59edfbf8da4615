"""Detections as plain arrays, and the mapping from model class names to stopline's classes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

VEHICLE_CLASSES: tuple[str, ...] = ("car", "truck", "bus", "motorcycle")
# A moving blob the model did not explain, tracked by the safety net (``safety_net.py``).
MOTION_CLASS = "motion"
MOTION_CLASS_ID = len(VEHICLE_CLASSES)

# Detector class names (COCO and common aliases) -> stopline vehicle class. Others are ignored.
CLASS_ALIASES: dict[str, str] = {
    "car": "car", "truck": "truck", "bus": "bus", "motorcycle": "motorcycle", "motorbike": "motorcycle",
    "van": "car", "pickup": "truck", "lorry": "truck", "vehicle": "car",
}


@dataclass
class Detections:
    """N boxes (x1, y1, x2, y2, pixels), scores and stopline class ids (index in VEHICLE_CLASSES)."""

    xyxy: np.ndarray  # (N, 4) float32
    scores: np.ndarray  # (N,) float32
    class_ids: np.ndarray  # (N,) int32

    @staticmethod
    def empty() -> "Detections":
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.scores)

    def class_name(self, i: int) -> str:
        return class_label(int(self.class_ids[i]))


def class_label(class_id: int) -> str:
    """The class name of a stopline class id (``motion`` for the safety net's blobs)."""
    if 0 <= class_id < len(VEHICLE_CLASSES):
        return VEHICLE_CLASSES[class_id]
    return MOTION_CLASS if class_id == MOTION_CLASS_ID else "car"


def class_from_shape(w: float, h: float, frame_h: int) -> str:
    """Vehicle class guessed from a motion blob's size (motion backend has no classifier)."""
    area_frac = (w * h) / float(frame_h * frame_h)
    aspect = w / max(h, 1.0)
    if area_frac > 0.12 and aspect < 2.2:
        return "truck"
    if area_frac < 0.004 and aspect < 0.9:
        return "motorcycle"
    return "car"


def box_iou(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def box_inside(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> float:
    """Fraction of box ``a`` that lies inside box ``b``."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    area = (a[2] - a[0]) * (a[3] - a[1])
    return iw * ih / area if area > 0 else 0.0
