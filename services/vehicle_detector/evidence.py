"""Evidence bursts: the frames around a violation, as JPEGs with boxes, crops and hashes.

A burst is ``approach`` frame(s) before the crossing, the ``crossing`` frame, and ``inside``
frame(s) after it, plus a ``vehicle`` crop and a ``signal`` crop from the crossing frame. The
privacy option blurs every *other* tracked road user in the frames (their plates and faces go
with them).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import cv2
import numpy as np

from stopline.shared.config import EvidenceConfig
from stopline.shared.messages import EvidenceImage, sha256_hex

XYXY = tuple[float, float, float, float]


@dataclass
class BufferedFrame:
    index: int
    t: float  # pipeline clock
    timestamp: float  # epoch
    image: np.ndarray
    boxes: dict[int, XYXY]  # tracked vehicles in this frame
    signal: str = "unknown"


class FrameRing:
    """The recent past: frames at least ``min_spacing_s`` apart over the last ``span_s``."""

    def __init__(self, span_s: float = 1.6, min_spacing_s: float = 0.09):
        self.span_s = span_s
        self.min_spacing_s = min_spacing_s
        self.frames: deque[BufferedFrame] = deque()

    def add(self, f: BufferedFrame) -> None:
        if self.frames and f.t - self.frames[-1].t < self.min_spacing_s:
            return
        self.frames.append(f)
        while self.frames and f.t - self.frames[0].t > self.span_s:
            self.frames.popleft()

    def nearest(self, t: float, before: float | None = None) -> BufferedFrame | None:
        pool = [f for f in self.frames if before is None or f.t < before]
        return min(pool, key=lambda f: abs(f.t - t)) if pool else None


def roles_for(burst_size: int) -> tuple[int, int]:
    """(approach frames, inside frames) for a burst of ``burst_size`` (one crossing frame)."""
    n_approach = 1 if burst_size <= 4 else 2
    return n_approach, burst_size - 1 - n_approach


@dataclass
class PendingBurst:
    track_id: int
    t_cross: float
    approach: list[BufferedFrame]
    crossing: BufferedFrame
    inside_targets: list[float]
    inside: list[BufferedFrame] = field(default_factory=list)

    def offer(self, f: BufferedFrame) -> None:
        """Take ``f`` as the next inside frame if its time has come."""
        if len(self.inside) < len(self.inside_targets) and f.t >= self.inside_targets[len(self.inside)]:
            self.inside.append(f)

    @property
    def complete(self) -> bool:
        return len(self.inside) >= len(self.inside_targets)


def _blur_box(img: np.ndarray, box: XYXY) -> None:
    h, w = img.shape[:2]
    x1, y1, x2, y2 = int(max(0, box[0])), int(max(0, box[1])), int(min(w, box[2])), int(min(h, box[3]))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return
    roi = img[y1:y2, x1:x2]
    small = cv2.resize(roi, (max(1, (x2 - x1) // 12), max(1, (y2 - y1) // 12)), interpolation=cv2.INTER_AREA)
    img[y1:y2, x1:x2] = cv2.resize(small, (x2 - x1, y2 - y1), interpolation=cv2.INTER_LINEAR)


def _crop(img: np.ndarray, box: XYXY, margin: float) -> np.ndarray:
    h, w = img.shape[:2]
    bw, bh = box[2] - box[0], box[3] - box[1]
    x1 = int(max(0, box[0] - margin * bw))
    y1 = int(max(0, box[1] - margin * bh))
    x2 = int(min(w, box[2] + margin * bw))
    y2 = int(min(h, box[3] + margin * bh))
    return img[y1:y2, x1:x2] if x2 > x1 and y2 > y1 else img[0:1, 0:1]


class BurstEncoder:
    """Turns a finished burst into ``EvidenceImage`` entries and their JPEG bytes."""

    def __init__(self, config: EvidenceConfig):
        self.config = config

    def _jpeg(self, img: np.ndarray) -> bytes:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, self.config.jpeg_quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        return buf.tobytes()

    def encode(self, burst: PendingBurst, signal_boxes: list[XYXY]) -> tuple[list[EvidenceImage], dict[str, bytes]]:
        frames = [("approach", f) for f in burst.approach] + [("crossing", burst.crossing)] + \
                 [("inside", f) for f in burst.inside]
        signal_box = _union(signal_boxes)
        images: list[EvidenceImage] = []
        blobs: dict[str, bytes] = {}
        for k, (role, f) in enumerate(frames):
            img = f.image
            if self.config.blur_others:
                img = img.copy()
                for tid, b in f.boxes.items():
                    if tid != burst.track_id:
                        _blur_box(img, b)
            scale = min(1.0, self.config.max_width / img.shape[1])
            if scale < 1.0:
                img = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)),
                                 interpolation=cv2.INTER_AREA)
            data = self._jpeg(img)
            name = f"{k}_{role}.jpg"
            box = f.boxes.get(burst.track_id)
            blobs[name] = data
            images.append(EvidenceImage(
                name=name, role=role, frame_index=f.index, captured_at=f.timestamp,  # type: ignore[arg-type]
                vehicle_box=_scale(box, scale), signal_box=_scale(signal_box, scale),
                signal_state=f.signal, sha256=sha256_hex(data)))
        cross = burst.crossing
        vbox = cross.boxes.get(burst.track_id)
        if vbox is not None:
            data = self._jpeg(_crop(cross.image, vbox, 0.1))
            blobs["vehicle.jpg"] = data
            images.append(EvidenceImage(name="vehicle.jpg", role="vehicle", frame_index=cross.index,
                                        captured_at=cross.timestamp, vehicle_box=vbox,
                                        signal_state=cross.signal, sha256=sha256_hex(data)))
        if signal_box is not None:
            crop = _crop(cross.image, signal_box, 0.3)
            if crop.shape[0] < 96:  # heads are tiny: enlarge (nearest) so a reviewer can see the lamp
                f = int(np.ceil(96 / crop.shape[0]))
                crop = cv2.resize(crop, None, fx=f, fy=f, interpolation=cv2.INTER_NEAREST)
            data = self._jpeg(crop)
            blobs["signal.jpg"] = data
            images.append(EvidenceImage(name="signal.jpg", role="signal", frame_index=cross.index,
                                        captured_at=cross.timestamp, signal_box=signal_box,
                                        signal_state=cross.signal, sha256=sha256_hex(data)))
        return images, blobs


def _union(boxes: list[XYXY]) -> XYXY | None:
    if not boxes:
        return None
    a = np.asarray(boxes, np.float64)
    return (float(a[:, 0].min()), float(a[:, 1].min()), float(a[:, 2].max()), float(a[:, 3].max()))


def _scale(box: XYXY | None, s: float) -> XYXY | None:
    if box is None:
        return None
    return tuple(float(v) * s for v in box)  # type: ignore[return-value]
