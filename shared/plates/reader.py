"""The gateway plate reader: localise -> rectify -> recognise -> format -> calibrate."""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from .calibration import Calibration
from .engines import OcrEngine, RawRead, make_engine
from .formats import FormatFit, fit_format, fit_score, formats_for
from .localise import PlateLocaliser, TextDetLocaliser, make_localiser, plate_likeness, sharpness, tighten
from .textdet import TextDetector
from .rectify import canonical, droppable_characters, expand_quad, join_rows, refine_corners, warp
from .types import XYXY, PlateBox, PlateReadResult

STOP_CONFIDENCE = 0.9  # a candidate read this sure ends the search (saves OCR on the rest)
MARGIN = 0.06          # of the line's width on each side of the crop ...
WIDE_MARGIN = 0.15     # ... and when unsure: the detector's box can miss a thin edge 'I' or '1'


@dataclass
class _Try:
    plate: PlateBox
    fit: FormatFit
    raw: float
    crop: np.ndarray
    read: RawRead


class PlateReader:
    """Reads the plate in an image (whole photo, evidence frame or plate crop).

    ``engine``: "rapidocr" (default), "onnx" (with ``model``), "easyocr", or an OcrEngine.
    ``localiser``: "textdet" (default), "cascade", "yolo" (with ``localiser_model``) or a
    PlateLocaliser. ``region``: default plate region, "auto", "us", "eu" or "br".
    """

    def __init__(self, engine: str | OcrEngine = "rapidocr", model: str | None = None, threads: int = 1,
                 localiser: str | PlateLocaliser = "textdet", localiser_model: str | None = None,
                 region: str = "auto", max_candidates: int = 3, calibration: Calibration | None = None,
                 det_max_side: int = 448, stretch: float | None = None):
        formats_for(region)  # validates
        self.engine = make_engine(engine, model, threads) if isinstance(engine, str) else engine
        self.localiser = (make_localiser(localiser, localiser_model, threads, det_max_side)
                          if isinstance(localiser, str) else localiser)
        self.region = region
        self.max_candidates = max_candidates
        self.calibration = calibration if calibration is not None else Calibration.load()
        # the second, close-up text detection reuses the localiser's network when it has one
        self.fine = (self.localiser.detector if isinstance(self.localiser, TextDetLocaliser)
                     else TextDetector(threads=threads))
        # sideways stretch of the crop: the engine's preference unless given
        self.stretch = stretch if stretch is not None else getattr(self.engine, "stretch", 1.0)

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def candidates(self, image: np.ndarray, hint_box: XYXY | None = None) -> list[PlateBox]:
        """Plate regions to try, best first."""
        h, w = image.shape[:2]
        roi = None
        if hint_box is not None:
            bw, bh = hint_box[2] - hint_box[0], hint_box[3] - hint_box[1]
            roi = (hint_box[0] - 0.3 * bw, hint_box[1] - 0.5 * bh, hint_box[2] + 0.3 * bw, hint_box[3] + 0.5 * bh)
        found = self.localiser.locate(image, roi=roi, max_plates=self.max_candidates)
        # fallbacks: the hint itself, or the whole image when it already looks like a plate crop
        if hint_box is not None and not found:
            found.append(PlateBox(box=tuple(float(v) for v in hint_box), score=0.1, source="hint",
                                  sharpness=sharpness(image, hint_box)))
        if not found and plate_likeness(w, h, 1, 10 * h) > 0 and h <= 240:
            found.append(PlateBox(box=(0.0, 0.0, float(w), float(h)), score=0.1, source="image",
                                  sharpness=sharpness(image, (0, 0, w, h))))
        return found[: self.max_candidates]

    def _crop(self, image: np.ndarray, plate: PlateBox, stretch: float | None = None,
              margin: float = MARGIN) -> np.ndarray:
        """The text line as the recogniser wants it: upright, 48 px tall, a little margin, and
        stretched sideways (more CTC frames per character: doubled letters like '66' survive)."""
        if plate.rows == 2 and plate.parts:
            crop = join_rows([warp(image, expand_quad(p, margin, 0.15), height=48) for p in plate.parts])
        else:
            crop = warp(image, expand_quad(plate.quad(), margin, 0.15), height=48)
        stretch = self.stretch if stretch is None else stretch
        if stretch == 1.0:
            return crop
        return cv2.resize(crop, (int(crop.shape[1] * stretch), crop.shape[0]), interpolation=cv2.INTER_LINEAR)

    def _tighten(self, image: np.ndarray, plate: PlateBox) -> PlateBox:
        tight = tighten(self.fine, image, plate)
        # a second look that keeps only a piece of a one-row line has lost characters
        if tight is None or (tight.rows == 1 and plate.rows == 1 and tight.width < 0.6 * plate.width):
            return plate
        return tight

    def _score(self, raws: list[RawRead], crops: list[np.ndarray], plates: list[PlateBox],
               region: str) -> list[_Try]:
        tries = []
        for raw, crop, plate in zip(raws, crops, plates):
            fit = fit_format(raw, region, droppable=droppable_characters(crop, raw.xs))
            if fit is not None:
                tries.append(_Try(plate, fit, fit_score(fit), crop, raw))
        return tries

    def read(self, image: np.ndarray, region: str | None = None, hint_box: XYXY | None = None) -> PlateReadResult | None:
        """The best plate read in ``image`` (BGR), or None when no plate is found or readable."""
        t0 = time.perf_counter()
        region = region or self.region
        formats_for(region)
        if image is None or image.ndim not in (2, 3) or min(image.shape[:2]) < 8:
            return None
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        plates = self.candidates(image, hint_box)
        if not plates:
            return None
        tries: list[_Try] = []
        # the top candidate alone first: most photos end here
        top = self._tighten(image, plates[0])
        crops = [self._crop(image, top)]
        tries += self._score(self.engine.recognise(crops), crops, [top], region)
        if not tries or self._calibrated(max(t.raw for t in tries)) < STOP_CONFIDENCE:
            # unsure: the other candidates, and the top one without the sideways stretch
            # (wide, bold glyphs read better unstretched)
            rest = [self._tighten(image, p) for p in plates[1:]]
            crops = [self._crop(image, p) for p in rest]
            plates_used = list(rest)
            if self.stretch != 1.0:
                crops.append(self._crop(image, top, stretch=1.0))
                plates_used.append(top)
            tries += self._score(self.engine.recognise(crops), crops, plates_used, region)
            # and with a wider margin, for a character the box cut off: that read only counts
            # when it has more characters (the plate's frame beside an edge 'O' reads as 'D')
            crops = [self._crop(image, top, margin=WIDE_MARGIN)]
            longest = max((len(t.fit.text) for t in tries if t.plate is top), default=0)
            tries += [t for t in self._score(self.engine.recognise(crops), crops, [top], region)
                      if len(t.fit.text) > longest]
        if not tries:
            return None
        best = max(tries, key=lambda t: t.raw)
        quad = refine_corners(image, best.plate.quad()) if best.plate.rows == 1 else None
        quad = best.plate.quad() if quad is None else quad
        return PlateReadResult(
            text=best.fit.text,
            confidence=self._calibrated(best.raw),
            char_confidences=[round(c, 4) for c in best.fit.confidences],
            region=best.fit.format.region,
            engine=self.engine.name,
            ms=(time.perf_counter() - t0) * 1000,
            box=best.plate.box,
            corners=quad,
            crop=canonical(image, quad, best.plate.rows) if best.plate.rows == 1 else best.crop,
            raw_text=best.read.text,
            raw_confidence=best.raw,
            format_name=best.fit.format.name,
        )

    def _calibrated(self, raw: float) -> float:
        return self.calibration(self.engine.name, raw)

    def read_many(self, images: "list[np.ndarray]", region: str | None = None,
                  hint_boxes: "list[XYXY | None] | None" = None) -> tuple[PlateReadResult | None, list[PlateReadResult]]:
        """Read each image of one violation and vote: (voted read or None, per-image reads)."""
        from .vote import vote

        hints = hint_boxes or [None] * len(images)
        reads = [r for img, hint in zip(images, hints) if (r := self.read(img, region, hint)) is not None]
        return vote(reads), reads
