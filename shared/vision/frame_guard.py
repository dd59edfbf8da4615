"""Frames a camera should not send, made safe before the detector sees them.

* not a BGR uint8 image, or under ``min_side`` pixels a side (a 1x1 frame): skipped;
* over ``max_pixels`` (an 8K frame): scaled down to fit (every box, the evidence and the ring
  then stay within the memory an edge box has);
* a size other than the stream's mid-stream: scaled to the stream's size, until the new size has
  held for ``settle_s`` (the camera was reconfigured): then the caller re-initialises for it.

Each problem is logged with the camera's id (the first ten of a kind, then every hundredth) and
counted in ``stats``. Nothing here raises: the camera keeps going.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np

log = logging.getLogger(__name__)

MIN_SIDE = 32
MAX_PIXELS = 3840 * 2160  # 4K UHD


class FrameGuard:
    """``admit(frame, index) -> (frame to process or None, new stream size or None)``."""

    def __init__(self, camera_id: str, fps: float, *, min_side: int = MIN_SIDE, max_pixels: int = MAX_PIXELS,
                 settle_s: float = 2.0):
        self.camera_id = camera_id
        self.min_side, self.max_pixels = min_side, max_pixels
        self.settle_frames = max(2, int(round(settle_s * fps)))
        self.size: tuple[int, int] | None = None  # the stream's (width, height), after fitting
        self._other: tuple[tuple[int, int], int] | None = None  # a new size and how long it has held
        self.stats = {"skipped": 0, "scaled": 0, "resized": 0, "size_changes": 0}

    def _log(self, kind: str, msg: str, *args: object) -> None:
        self.stats[kind] += 1
        n = self.stats[kind]
        if n <= 10 or n % 100 == 0:  # a camera sending nothing else does not flood the log
            log.warning("camera %s: " + msg + " (%d so far)", self.camera_id, *args, n)

    def fit(self, size: tuple[int, int]) -> tuple[int, int]:
        """``size`` scaled down to ``max_pixels`` (aspect kept), else itself."""
        w, h = size
        if w * h <= self.max_pixels:
            return size
        k = (self.max_pixels / float(w * h)) ** 0.5
        return max(1, int(w * k)), max(1, int(h * k))

    def admit(self, frame: object, index: int) -> tuple[np.ndarray | None, tuple[int, int] | None]:
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            shape = getattr(frame, "shape", None)
            self._log("skipped", "frame %d skipped: not a BGR uint8 image (shape %s, type %s)", index, shape,
                      getattr(frame, "dtype", type(frame).__name__))
            return None, None
        h, w = frame.shape[:2]
        if min(w, h) < self.min_side:
            self._log("skipped", "frame %d skipped: %dx%d is too small to detect anything in (under %d px a side)",
                      index, w, h, self.min_side)
            return None, None
        fitted = self.fit((w, h))
        if fitted != (w, h):
            self._log("scaled", "frame %d is %dx%d, over %.1f megapixels: scaled down to %dx%d",
                      index, w, h, self.max_pixels / 1e6, *fitted)
        if self.size is None or fitted == self.size:
            self._other = None
            new = fitted if self.size is None else None
            self.size = fitted
            return _resize(frame, fitted), new
        # a different size mid-stream
        held = self._other[1] + 1 if self._other is not None and self._other[0] == fitted else 1
        self._other = (fitted, held)
        if held >= self.settle_frames:
            self.stats["size_changes"] += 1
            log.warning("camera %s: frame size is now %dx%d (was %dx%d) for %d frames: re-initialising "
                        "detection and tracking at the new size", self.camera_id, *fitted, *self.size, held)
            self.size, self._other = fitted, None
            return _resize(frame, fitted), fitted
        self._log("resized", "frame %d is %dx%d, the stream is %dx%d: scaled to the stream's size "
                  "(re-initialised if the new size lasts %d frames)", index, w, h, *self.size, self.settle_frames)
        return _resize(frame, self.size), None


def _resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (frame.shape[1], frame.shape[0]) == size:
        return frame
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
