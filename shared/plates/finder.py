"""The edge plate finder: where are plates in an evidence frame, and which frames show the most
readable one. Light on purpose (one small text-detector pass per vehicle, no OCR)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .localise import PlateLocaliser, TextDetLocaliser, make_localiser, sharpness, tighten
from .overlays import Polygon, is_static, mask_zones, scaled_zones
from .rectify import expand_quad
from .types import XYXY, PlateBox

_DEFAULT: "PlateFinder | None" = None


@dataclass
class EvidencePlate:
    """A plate chosen for reading: which evidence image, where, and how readable it looks."""

    name: str
    plate: PlateBox
    crop: np.ndarray       # plate with margin, what the edge sends to the reader
    crop_box: XYXY         # the crop's box in the evidence image
    quality: float


class PlateFinder:
    def __init__(self, localiser: str | PlateLocaliser = "textdet", model: str | None = None,
                 threads: int = 1, max_side: int = 448, refine: bool = True):
        self.localiser = make_localiser(localiser, model, threads, max_side) if isinstance(localiser, str) else localiser
        self.refine = refine and isinstance(self.localiser, TextDetLocaliser)

    def find(self, image: np.ndarray, vehicle_box: XYXY | None = None, max_plates: int = 3) -> list[PlateBox]:
        plates = self.localiser.locate(image, roi=vehicle_box, max_plates=max_plates)
        if self.refine:
            out = []
            for p in plates:
                t = tighten(self.localiser.detector, image, p)
                out.append(p if t is None or (t.rows == 1 and t.width < 0.6 * p.width) else
                           PlateBox(box=t.box, score=p.score, sharpness=sharpness(image, t.box),
                                    corners=t.corners, rows=t.rows, source=p.source, parts=t.parts))
            plates = out
        return plates


def default_finder() -> PlateFinder:
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = PlateFinder()
    return _DEFAULT


def find_plates(image_bgr: np.ndarray, vehicle_box: XYXY | None = None, max_plates: int = 3,
                finder: PlateFinder | None = None) -> list[PlateBox]:
    """Plate-like regions in an evidence frame (inside ``vehicle_box`` when given), best first."""
    return (finder or default_finder()).find(image_bgr, vehicle_box, max_plates)


def readability(plate: PlateBox) -> float:
    """How well a plate will read, from what the edge can see: plate-likeness, text-line height
    (~36 px line = ~20 px characters, where recognisers stop gaining) and sharpness (variance of
    the Laplacian on a 32 px tall patch: 2000-7000 on the sharp openalpr photos, ~500 blurred)."""
    h = plate.height / plate.rows
    size = min(1.0, h / 36.0)
    sharp = min(1.0, plate.sharpness / 2500.0)
    return float(plate.score * (0.2 + 0.8 * size) * (0.3 + 0.7 * sharp))


def crop_plate(image: np.ndarray, plate: PlateBox, margin: float = 0.3) -> tuple[np.ndarray, XYXY]:
    """The plate with a margin (the reader re-localises inside it), and the crop's box."""
    q = expand_quad(plate.quad(), margin, margin * 2)
    h, w = image.shape[:2]
    x1, y1 = max(0, int(q[:, 0].min())), max(0, int(q[:, 1].min()))
    x2, y2 = min(w, int(np.ceil(q[:, 0].max()))), min(h, int(np.ceil(q[:, 1].max())))
    return image[y1:y2, x1:x2].copy(), (float(x1), float(y1), float(x2), float(y2))


def rank_evidence(images: Sequence[tuple[str, np.ndarray, XYXY | None]], max_plates: int = 3,
                  min_sharpness: float = 0.0, finder: PlateFinder | None = None,
                  ignore_zones: Sequence[Polygon] = (), frame_size: tuple[int, int] | None = None
                  ) -> list[EvidencePlate]:
    """The most readable plate crops across a violation's evidence images, best first, at most one
    per image (the reader votes across them). ``images``: (name, BGR image, vehicle box or None).

    Overlays are never plates: ``ignore_zones`` (polygons in ``frame_size`` pixels) are painted
    out before looking, and a candidate whose pixels stay put while the vehicle moves between
    the burst's frames (``overlays.is_static``) is skipped."""
    out = []
    masked = [(name, mask_zones(img, scaled_zones(ignore_zones, img.shape, frame_size)), vbox)
              for name, img, vbox in images]
    for i, (name, image, vbox) in enumerate(masked):
        others = [(img, vb) for j, (_, img, vb) in enumerate(masked) if j != i]
        plates = [p for p in find_plates(image, vbox, max_plates=3, finder=finder)
                  if not is_static(p.box, image, vbox, others)]
        if not plates or plates[0].sharpness < min_sharpness:
            continue
        crop, box = crop_plate(image, plates[0])
        out.append(EvidencePlate(name, plates[0], crop, box, readability(plates[0])))
    out.sort(key=lambda e: e.quality, reverse=True)
    return out[:max_plates]
