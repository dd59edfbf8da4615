"""Plate localisers behind one protocol, so the toolchain's YOLO plate detector (issue 4) can
replace the fallbacks without touching the reader or the finder.

* ``TextDetLocaliser`` (default): the PP-OCRv4 DB text detector from the rapidocr wheel, restricted
  to plate-like text lines (aspect, size, line grouping, two-row stacking).
* ``CascadeLocaliser``: OpenCV's ``haarcascade_russian_plate_number.xml`` (ships with opencv-python).
* ``YoloLocaliser``: a single-class YOLOv8-style ONNX (output 1 x (4+classes) x N, xywh centre).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from stopline.shared.imaging import plate_roi

from .engines import ort_session
from .rectify import expand_quad
from .textdet import TextBox, TextDetector, order_corners
from .types import XYXY, PlateBox


class PlateLocaliser(Protocol):
    name: str

    def locate(self, image: np.ndarray, roi: XYXY | None = None, max_plates: int = 3) -> list[PlateBox]:
        """Plate-like regions of a BGR image (inside ``roi`` when given), best first."""
        ...


def sharpness(image: np.ndarray, box: XYXY) -> float:
    """Variance of the Laplacian inside ``box``, normalised to a 32 px tall patch."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    h, w = image.shape[:2]
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
    if x2 - x1 < 4 or y2 - y1 < 4:
        return 0.0
    patch = image[y1:y2, x1:x2]
    if patch.ndim == 3:
        patch = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    scale = 32.0 / patch.shape[0]
    patch = cv2.resize(patch, (max(4, int(patch.shape[1] * scale)), 32), interpolation=cv2.INTER_AREA)
    return float(cv2.Laplacian(patch, cv2.CV_32F).var())


def crop_roi(image: np.ndarray, roi: XYXY | None) -> tuple[np.ndarray, int, int]:
    if roi is None:
        return image, 0, 0
    h, w = image.shape[:2]
    x1, y1 = max(0, int(roi[0])), max(0, int(roi[1]))
    x2, y2 = min(w, int(np.ceil(roi[2]))), min(h, int(np.ceil(roi[3])))
    if x2 - x1 < 8 or y2 - y1 < 8:
        return image, 0, 0
    return image[y1:y2, x1:x2], x1, y1


def box_of(corners: np.ndarray) -> XYXY:
    x1, y1 = corners.min(axis=0)
    x2, y2 = corners.max(axis=0)
    return float(x1), float(y1), float(x2), float(y2)


def _merge_line(boxes: list[TextBox]) -> list[TextBox]:
    """Join text boxes that continue one line (plates like 'RK 099-AN' come out in pieces)."""
    boxes = sorted(boxes, key=lambda b: b.corners[:, 0].min())
    used = [False] * len(boxes)
    out: list[TextBox] = []
    for i, b in enumerate(boxes):
        if used[i]:
            continue
        group = [b]
        used[i] = True
        changed = True
        while changed:
            changed = False
            cur = np.concatenate([g.corners for g in group])
            cx2 = cur[:, 0].max()
            cy = cur[:, 1].mean()
            ch = np.mean([g.height for g in group])
            for j, o in enumerate(boxes):
                if used[j]:
                    continue
                gap = o.corners[:, 0].min() - cx2
                if (-0.5 * ch < gap < 0.9 * ch and abs(o.centre[1] - cy) < 0.35 * ch
                        and 0.6 < o.height / ch < 1.6):
                    group.append(o)
                    used[j] = True
                    changed = True
        if len(group) == 1:
            out.append(b)
        else:
            pts = np.concatenate([g.corners for g in group]).astype(np.float32)
            rect = cv2.minAreaRect(pts)
            out.append(TextBox(order_corners(cv2.boxPoints(rect)),
                               float(np.mean([g.score for g in group]))))
    return out


def _stack_rows(lines: list[TextBox]) -> list[tuple[np.ndarray, float, tuple[np.ndarray, ...]]]:
    """Two-row plate candidates: two lines one above the other, overlapping horizontally."""
    out = []
    for a in lines:
        for b in lines:
            if a is b or b.centre[1] <= a.centre[1]:
                continue
            ax1, ax2 = a.corners[:, 0].min(), a.corners[:, 0].max()
            bx1, bx2 = b.corners[:, 0].min(), b.corners[:, 0].max()
            overlap = min(ax2, bx2) - max(ax1, bx1)
            gap = b.corners[:, 1].min() - a.corners[:, 1].max()
            h = max(a.height, b.height)
            if overlap > 0.6 * min(ax2 - ax1, bx2 - bx1) and -0.3 * h < gap < 0.6 * h \
                    and 0.6 < a.height / b.height < 1.7:
                pts = np.concatenate([a.corners, b.corners]).astype(np.float32)
                x, y, w, hh = cv2.boundingRect(pts)
                quad = np.array([[x, y], [x + w, y], [x + w, y + hh], [x, y + hh]], np.float32)
                out.append((quad, (a.score + b.score) / 2, (a.corners, b.corners)))
    return out


def plate_likeness(w: float, h: float, rows: int, img_h: int) -> float:
    """Prior on a text line being a plate, from its shape alone (0..1)."""
    aspect = w / max(h, 1.0)
    lo, hi = (1.0, 3.2) if rows == 2 else (2.0, 9.0)
    if aspect < lo * 0.7 or aspect > hi * 1.4 or h < 7:
        return 0.0
    s = 1.0 if lo <= aspect <= hi else 0.5
    if h > 0.5 * img_h:  # a plate never fills the frame height... unless it is a plate crop
        s *= 0.7
    return s


def plate_look(image: np.ndarray, corners: np.ndarray, rows: int = 1) -> float:
    """How much a text line looks like a plate's character row (0.5..1): 1 when it sits in a
    bordered rectangle of its own (the plate: bright or dark background, 1.5-6 times as wide as
    tall) of which the row is 30-95 % of the height; 0.7 when a rectangle is found with other
    proportions (a dealer frame's line, a sign); 0.5 when none (badges and lettering on the
    car's paint, shop signs)."""
    from .rectify import refine_corners

    # the text detector's box is inflated: a plate cut tight round its row can be smaller
    quad = refine_corners(image, corners, area=(0.6, 4.0))
    if quad is None:
        return 0.5
    pw = float(np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[3])) / 2
    ph = float(np.linalg.norm(quad[3] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2
    th = float(np.linalg.norm(corners[3] - corners[0]) + np.linalg.norm(corners[2] - corners[1])) / 2
    if ph < 2:
        return 0.5
    aspect, share = pw / ph, th / ph
    lo = 0.3 if rows == 1 else 0.6
    return 1.0 if 1.5 <= aspect <= 6.0 and lo <= share <= 0.95 else 0.7


class TextDetLocaliser:
    """DB text detector restricted to plate-like lines."""

    name = "textdet"

    def __init__(self, detector: TextDetector | None = None, max_side: int = 448, threads: int = 1,
                 min_image_side: int = 0):
        self.detector = detector or TextDetector(max_side=max_side, threads=threads)
        # a closer look only pays on images bigger than this (smaller ones the first pass saw whole)
        self.min_image_side = min_image_side

    def locate(self, image: np.ndarray, roi: XYXY | None = None, max_plates: int = 3) -> list[PlateBox]:
        sub, ox, oy = crop_roi(image, roi)
        if max(sub.shape[:2]) <= self.min_image_side:
            return []
        lines = _merge_line([b for b in self.detector.detect(sub) if abs(b.angle) <= 40])
        cands: list[tuple[float, np.ndarray, int, tuple[np.ndarray, ...]]] = []
        in_pair: set[int] = set()
        for quad, score, parts in _stack_rows(lines):
            w, h = quad[1, 0] - quad[0, 0], quad[3, 1] - quad[0, 1]
            prior = plate_likeness(w, h, 2, sub.shape[0])
            if prior > 0:
                cands.append((score * prior, quad, 2, parts))
                in_pair.update(id(p) for p in parts)
        for b in lines:
            prior = plate_likeness(b.width, b.height, 1, sub.shape[0])
            if prior > 0:
                # a row of a two-row candidate stays a (weaker) candidate of its own
                cands.append((b.score * prior * (0.8 if id(b.corners) in in_pair else 1.0), b.corners, 1, ()))
        plates = []
        off = np.array([ox, oy], np.float32)
        for rank_score, corners, rows, parts in cands:
            corners = corners + off
            box = box_of(corners)
            # bigger text is more likely the plate than stickers and badges, and reads better;
            # a plate's row sits in a plate (not the longest or biggest text: a bordered rectangle)
            size = min(1.0, (box[3] - box[1]) / 24.0)
            look = plate_look(image, corners, rows)
            plates.append(PlateBox(box=box, score=float(rank_score * (0.6 + 0.4 * size) * look),
                                   sharpness=sharpness(image, box), corners=corners, rows=rows,
                                   source=self.name, parts=tuple(p + off for p in parts)))
        plates.sort(key=lambda p: p.score, reverse=True)
        return plates[:max_plates]


class CascadeLocaliser:
    """OpenCV's Haar cascade for plates (trained on Russian plates; a fast, weak baseline)."""

    name = "cascade"

    def __init__(self, cascade: str | None = None):
        path = cascade or str(Path(cv2.data.haarcascades) / "haarcascade_russian_plate_number.xml")
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise FileNotFoundError(f"cannot load plate cascade {path}")

    def locate(self, image: np.ndarray, roi: XYXY | None = None, max_plates: int = 3) -> list[PlateBox]:
        sub, ox, oy = crop_roi(image, roi)
        gray = cv2.cvtColor(sub, cv2.COLOR_BGR2GRAY) if sub.ndim == 3 else sub
        scale = min(1.0, 800 / max(gray.shape))
        if scale < 1:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        found, _, weights = self.cascade.detectMultiScale3(gray, scaleFactor=1.1, minNeighbors=3,
                                                           minSize=(24, 8), outputRejectLevels=True)
        plates = []
        for (x, y, w, h), wgt in zip(found, np.ravel(weights) if len(found) else []):
            box = (ox + x / scale, oy + y / scale, ox + (x + w) / scale, oy + (y + h) / scale)
            plates.append(PlateBox(box=box, score=float(1 / (1 + np.exp(-wgt))),
                                   sharpness=sharpness(image, box), source=self.name))
        plates.sort(key=lambda p: p.score, reverse=True)
        return plates[:max_plates]


class YoloLocaliser:
    """A YOLOv8-style plate detector exported to ONNX (input 1x3xSxS RGB 0..1, letterboxed)."""

    name = "yolo"

    def __init__(self, model: Path | str, threads: int = 1, confidence: float = 0.25, iou: float = 0.5):
        self.session = ort_session(model, threads)
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        self.size = int(inp.shape[2]) if isinstance(inp.shape[2], int) else 640
        self.confidence = confidence
        self.iou = iou

    def locate(self, image: np.ndarray, roi: XYXY | None = None, max_plates: int = 3) -> list[PlateBox]:
        # a vehicle box is grown as in training (the model saw the vehicle with a margin)
        sub, ox, oy = crop_roi(image, plate_roi(roi, image.shape) if roi is not None else None)
        h, w = sub.shape[:2]
        r = self.size / max(h, w)
        nh, nw = int(round(h * r)), int(round(w * r))
        canvas = np.full((self.size, self.size, 3), 114, np.uint8)
        canvas[:nh, :nw] = cv2.resize(sub, (nw, nh))
        x = cv2.cvtColor(canvas, cv2.COLOR_BGR2RGB).transpose(2, 0, 1)[None].astype(np.float32) / 255
        out = self.session.run(None, {self.input_name: x})[0][0]  # (4+nc, N)
        scores = out[4:].max(axis=0)
        keep = scores >= self.confidence
        xywh, scores = out[:4, keep].T, scores[keep]
        boxes = np.stack([xywh[:, 0] - xywh[:, 2] / 2, xywh[:, 1] - xywh[:, 3] / 2,
                          xywh[:, 0] + xywh[:, 2] / 2, xywh[:, 1] + xywh[:, 3] / 2], 1) / r
        idx = cv2.dnn.NMSBoxes([[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
                                for b in boxes], scores.tolist(), self.confidence, self.iou)
        plates = []
        for i in np.ravel(idx) if len(idx) else []:
            b = boxes[i]
            box = (ox + float(b[0]), oy + float(b[1]), ox + float(b[2]), oy + float(b[3]))
            plates.append(PlateBox(box=box, score=float(scores[i]), sharpness=sharpness(image, box),
                                   source=self.name))
        plates.sort(key=lambda p: p.score, reverse=True)
        return plates[:max_plates]


class FirstFound:
    """Localisers tried in order: the first that finds any plate answers (e.g. the plate model,
    then the text detector for plates unlike those it was trained on)."""

    def __init__(self, *localisers: PlateLocaliser):
        self.localisers = localisers
        self.name = "+".join(getattr(loc, "name", type(loc).__name__) for loc in localisers)

    def locate(self, image: np.ndarray, roi: XYXY | None = None, max_plates: int = 3) -> list[PlateBox]:
        for loc in self.localisers:
            plates = loc.locate(image, roi=roi, max_plates=max_plates)
            if plates:
                return plates
        return []


CLOSE_LOOK_SIDE = 960  # the text detector's second, finer pass over a whole photo (small plates)


def close_look(first: TextDetLocaliser) -> TextDetLocaliser:
    """The text detector again at up to ``CLOSE_LOOK_SIDE`` px, for photos bigger than the first
    pass's input (a 90 px plate in an 896 px photo has 10 px characters at 448 px: too small)."""
    return TextDetLocaliser(_sibling(first.detector, CLOSE_LOOK_SIDE),
                            min_image_side=int(first.detector.max_side * 1.25))


def _sibling(det: TextDetector, max_side: int) -> TextDetector:
    """The same network (one ONNX session) at another input size."""
    twin = TextDetector.__new__(TextDetector)
    twin.__dict__.update(det.__dict__)
    twin.max_side = max_side
    return twin


# The plate model sees a whole photo at 256 px, where a plate 80 px wide in a 900 px photo is
# 23 px: it finds such plates at 0.1-0.25. A false box costs one read, and only a sure read that
# fits one of the region's layouts ends the search before the text detector looks.
PLATE_MODEL_CONFIDENCE = 0.1


def make_localiser(kind: str = "auto", model: str | None = None, threads: int = 1,
                   max_side: int = 448, confidence: float = PLATE_MODEL_CONFIDENCE) -> PlateLocaliser:
    """``auto`` (default): the plate model (shipped, or ``model``; boxes scored ``confidence`` or
    more), then the text detector where it finds nothing, then the text detector's closer look;
    ``yolo``: the plate model only (shipped unless ``model``); ``textdet``; ``cascade``."""
    if kind == "textdet":
        return TextDetLocaliser(max_side=max_side, threads=threads)
    if kind == "cascade":
        return CascadeLocaliser()
    if kind in ("yolo", "auto"):
        if not model:
            from stopline.models import plate_model

            model = str(plate_model())
        yolo = YoloLocaliser(model, threads=threads, confidence=confidence)
        if kind == "yolo":
            return yolo
        text = TextDetLocaliser(max_side=max_side, threads=threads)
        return FirstFound(yolo, text, close_look(text))
    raise ValueError(f"unknown localiser {kind!r} (auto, yolo, textdet, cascade)")


TIGHTEN_PADS = (0.15, 0.35)  # sideways margins of the second look: the first, and a wider one
                             # when the line found runs into the first's edge


def tighten(detector: TextDetector, image: np.ndarray, plate: PlateBox,
            region_height: int = 80) -> PlateBox | None:
    for i, pad in enumerate(TIGHTEN_PADS):
        found, at_edge = _tighten(detector, image, plate, region_height, pad)
        if not at_edge or i == len(TIGHTEN_PADS) - 1:
            return found
    return None


def _tighten(detector: TextDetector, image: np.ndarray, plate: PlateBox, region_height: int,
             pad: float) -> tuple[PlateBox | None, bool]:
    """Second look at one candidate: re-detect text in its neighbourhood at a resolution where the
    characters are ~30 px tall, and return the tight (rotated) line, or the two stacked rows of a
    two-row plate. Coarse boxes are often the whole plate, a cut-off line, or several pieces."""
    outer = expand_quad(plate.quad(), pad, 0.6)
    h = max(np.linalg.norm(outer[3] - outer[0]), np.linalg.norm(outer[2] - outer[1]))
    w = max(np.linalg.norm(outer[1] - outer[0]), np.linalg.norm(outer[2] - outer[3]))
    if h < 4 or w < 4:
        return None, False
    scale = region_height / h
    rw = int(min(480, max(32, w * scale)))
    dst = np.array([[0, 0], [rw - 1, 0], [rw - 1, region_height - 1], [0, region_height - 1]], np.float32)
    m = cv2.getPerspectiveTransform(outer.astype(np.float32), dst)
    region = cv2.warpPerspective(image, m, (rw, region_height), flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_REPLICATE)
    saved = detector.max_side
    detector.max_side = max(rw, region_height)
    try:
        lines = _merge_line([b for b in detector.detect(region) if abs(b.angle) <= 40])
    finally:
        detector.max_side = saved
    lines = [b for b in lines if b.height >= 8 and plate_likeness(b.width, b.height, 1, 10 * region_height) > 0
             or (b.height >= 8 and b.width >= 1.2 * b.height)]
    if not lines:
        return None, False
    inv = np.linalg.inv(m)

    def back(q: np.ndarray) -> np.ndarray:
        return cv2.perspectiveTransform(q.reshape(1, 4, 2).astype(np.float32), inv).reshape(4, 2)

    # the candidate's own extent inside the region (expand_quad added ``pad`` a side)
    cx1, cx2 = rw * pad / (1 + 2 * pad), rw * (1 + pad) / (1 + 2 * pad)

    def inside(b: TextBox) -> float:
        bx1, bx2 = b.corners[:, 0].min(), b.corners[:, 0].max()
        return max(0.0, min(bx2, cx2) - max(bx1, cx1)) / max(1.0, bx2 - bx1)

    lines = [b for b in lines if inside(b) > 0.5]
    if not lines:
        return None, False
    # the registration is the tallest text on a plate (state names, dealer lines are smaller)
    main = max(lines, key=lambda b: b.width * b.height ** 2 * b.score)
    # pieces of the same row (plates split by an emblem, a dash or a wide gap)
    same = [b for b in lines if abs(b.centre[1] - main.centre[1]) < 0.4 * main.height
            and 0.6 < b.height / main.height < 1.6]
    if len(same) > 1:
        pts = np.concatenate([b.corners for b in same]).astype(np.float32)
        main = TextBox(order_corners(cv2.boxPoints(cv2.minAreaRect(pts))), float(np.mean([b.score for b in same])))
        lines = [main] + [b for b in lines if not any(b is x for x in same)]
    rows = [main]
    for other in lines:
        if other is main:
            continue
        ox1, ox2 = other.corners[:, 0].min(), other.corners[:, 0].max()
        mx1, mx2 = main.corners[:, 0].min(), main.corners[:, 0].max()
        overlap = min(ox2, mx2) - max(ox1, mx1)
        gap = abs(other.centre[1] - main.centre[1]) - (other.height + main.height) / 2
        if overlap > 0.5 * min(ox2 - ox1, mx2 - mx1) and gap < 0.5 * main.height \
                and other.height > 0.6 * main.height and other.width > 0.3 * main.width:
            rows.append(other)
    rows = sorted(rows[:2], key=lambda b: b.centre[1])
    # the line runs into the region's side: a character beyond it may have been cut off
    at_edge = bool(main.corners[:, 0].min() < 0.02 * rw or main.corners[:, 0].max() > 0.98 * rw)
    quads = [back(b.corners) for b in rows]
    corners = quads[0] if len(quads) == 1 else order_corners(
        cv2.boxPoints(cv2.minAreaRect(np.concatenate(quads).astype(np.float32))))
    return PlateBox(box=box_of(corners), score=plate.score, sharpness=plate.sharpness, corners=corners,
                    rows=len(quads), source=plate.source, parts=tuple(quads) if len(quads) == 2 else ()), at_edge
