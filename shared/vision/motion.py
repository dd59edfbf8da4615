"""Motion: background subtraction (MOG2, shadows removed) into vehicle boxes, and a cheap gate.

The motion backend is the default detector while no trained model is deployed: foreground
mask -> open/close/dilate -> contours -> boxes, filtered by area and by an optional region
(the road). ``MotionGate`` tells the ONNX backend whether a frame has anything moving at all.
"""

from __future__ import annotations

import cv2
import numpy as np

from stopline.shared.vision.detections import VEHICLE_CLASSES, Detections, class_from_shape


class MotionDetector:
    """Moving-blob detector at a reduced working width (speed), boxes in full-frame pixels."""

    def __init__(self, *, work_width: int = 480, min_area_frac: float = 0.0015, history: int = 300,
                 var_threshold: float = 24.0, roi_polygons: list[list[tuple[float, float]]] | None = None,
                 warmup_frames: int = 5):
        self.work_width = work_width
        self.min_area_frac = min_area_frac
        self.roi_polygons = roi_polygons or []
        self.warmup_frames = warmup_frames
        self._bg = cv2.createBackgroundSubtractorMOG2(history=history, varThreshold=var_threshold,
                                                      detectShadows=True)
        self._k3 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self._k7 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
        self._mask_roi: np.ndarray | None = None
        self._scale = 1.0
        self._seen = 0
        self.last_mask: np.ndarray | None = None

    def _prepare(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        self._scale = min(1.0, self.work_width / float(w))
        small = frame if self._scale == 1.0 else cv2.resize(
            frame, (int(w * self._scale), int(h * self._scale)), interpolation=cv2.INTER_LINEAR)  # AREA: 10x slower
        if self.roi_polygons and (self._mask_roi is None or self._mask_roi.shape != small.shape[:2]):
            m = np.zeros(small.shape[:2], np.uint8)
            for poly in self.roi_polygons:
                pts = (np.asarray(poly, np.float32) * self._scale).astype(np.int32)
                cv2.fillPoly(m, [pts], 255)
            self._mask_roi = m
        return small

    def foreground(self, frame: np.ndarray) -> np.ndarray:
        """Binary foreground mask (working resolution), shadows (value 127) removed."""
        small = self._prepare(frame)
        fg = self._bg.apply(small)
        self._seen += 1
        _, fg = cv2.threshold(fg, 200, 255, cv2.THRESH_BINARY)  # drop shadow label 127
        fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, self._k3)
        fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, self._k7)
        fg = cv2.dilate(fg, self._k3)
        if self._mask_roi is not None:
            fg = cv2.bitwise_and(fg, self._mask_roi)
        self.last_mask = fg
        return fg

    def detect(self, frame: np.ndarray) -> Detections:
        fg = self.foreground(frame)
        if self._seen <= self.warmup_frames:
            return Detections.empty()
        h, w = fg.shape
        contours, _ = cv2.findContours(fg, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_area = self.min_area_frac * h * w
        boxes, scores, classes = [], [], []
        inv = 1.0 / self._scale
        for c in contours:
            area = cv2.contourArea(c)
            if area < min_area:
                continue
            x, y, bw, bh = cv2.boundingRect(c)
            fill = area / float(bw * bh)
            if fill < 0.25:  # thin scribbles (swaying wires, rain streaks)
                continue
            boxes.append((x * inv, y * inv, (x + bw) * inv, (y + bh) * inv))
            scores.append(min(1.0, 0.5 + 0.5 * fill))
            classes.append(VEHICLE_CLASSES.index(class_from_shape(bw * inv, bh * inv, int(h * inv))))
        if not boxes:
            return Detections.empty()
        return Detections(np.asarray(boxes, np.float32), np.asarray(scores, np.float32),
                          np.asarray(classes, np.int32))


class MotionGate:
    """Is anything moving? Frame differencing on a tiny grey image; cheap enough for every frame."""

    def __init__(self, *, width: int = 160, pixel_threshold: int = 18, min_changed_frac: float = 0.0015,
                 hold_frames: int = 3):
        self.width = width
        self.pixel_threshold = pixel_threshold
        self.min_changed_frac = min_changed_frac
        self.hold_frames = hold_frames
        self._prev: np.ndarray | None = None
        self._hold = 0

    def moving(self, frame: np.ndarray) -> bool:
        h, w = frame.shape[:2]
        size = (self.width, max(1, int(h * self.width / w)))
        if w > 4 * self.width:  # INTER_AREA over the whole frame costs 1 ms at 720p: halve it cheaply first
            frame = cv2.resize(frame, (2 * size[0], 2 * size[1]), interpolation=cv2.INTER_LINEAR)
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        grey = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
        prev, self._prev = self._prev, grey
        if prev is None:
            return True
        changed = np.count_nonzero(cv2.absdiff(grey, prev) > self.pixel_threshold) / grey.size
        if changed >= self.min_changed_frac:
            self._hold = self.hold_frames  # keep running a few frames after motion stops
            return True
        if self._hold > 0:
            self._hold -= 1
            return True
        return False
