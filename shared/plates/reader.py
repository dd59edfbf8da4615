"""The gateway plate reader: localise -> rectify -> recognise -> format -> calibrate."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from .calibration import FULL_LENGTH, Calibration  # FULL_LENGTH: a sure read shorter gets a wider look too
from .engines import OcrEngine, RawRead, make_engine
from .formats import FormatFit, colour_marks_apply, fit_format, fit_score, formats_for
from stopline.shared.vision.detections import box_inside

from .localise import (FirstFound, box_of, PlateLocaliser, TextDetLocaliser, YoloLocaliser, make_localiser,
                       plate_likeness, sharpness, tighten)
from .overlays import mask_zones
from .textdet import TextDetector
from .rectify import canonical, droppable_characters, expand_quad, join_rows, refine_corners, warp
from .types import XYXY, PlateBox, PlateReadResult

STOP_RAW = 0.80        # a candidate read this sure (raw score) ends the search (saves OCR on the rest);
                       # raw, not calibrated, so what is read never depends on the calibration
MARGIN = 0.06          # of the line's width on each side of the crop ...
WIDE_MARGIN = 0.15     # ... and when unsure: the detector's box can miss a thin edge 'I' or '1'
UNREADABLE_BELOW = 0.5  # calibrated: a read more likely wrong than right is no read ('unreadable')
PLATE_MODEL = YoloLocaliser.name  # the source of the plate detector's boxes
WHOLE_IMAGE = "image"   # the source of a read of the whole image (a plate crop)
PLATE_OUTLINES = (PLATE_MODEL, WHOLE_IMAGE)  # boxes that hold a whole plate, not one text line
PLATE_MARGIN = 0.02    # the plate detector's whole box, read as one crop: its box already has the plate's edge
PIECE_SPAN = 0.75      # a text line narrower than this share of the plate detector's box is a piece of it
PIECE_SURE = 0.7       # a read inside a longer one drops out only when the longer is at least this sure
                       # relative to it (a 0.3 '3XHK8591' does not overrule a 1.0 '3XHK859')


@dataclass
class _Try:
    plate: PlateBox
    fit: FormatFit
    raw: float
    crop: np.ndarray
    read: RawRead


def _sure(t: _Try) -> bool:
    """A read that ends the search: sure, and fitting one of the region's layouts (a free-form
    read may be a piece of the plate, or a badge: the next localiser stage looks too)."""
    return t.raw >= STOP_RAW and t.fit.format.specific


def _overlap(a: XYXY, b: XYXY) -> bool:
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def _crop_shaped(w: int, h: int) -> bool:
    """The image itself looks like a plate crop (a plate's shape, not a photo's size)."""
    return plate_likeness(w, h, 1, 10 * h) > 0 and h <= 240


def _subsequence(short: str, long: str) -> bool:
    """``short`` is ``long`` with characters left out (CTC merged or missed them)."""
    rest = iter(long)
    return all(c in rest for c in short)


def _piece_of(t: _Try, o: _Try) -> bool:
    """A piece of a plate is no plate: ``t`` is contained in a longer, about as sure read of an
    overlapping box (a partial detector box read '206' of 'XLXF206', 'RSV066' of '2RSV066'; the
    unstretched crop read 'LEHY66' where the stretched one kept the '4' of 'LEHY466'), or
    it is a text line well inside the plate detector's box that read fewer characters than the
    box (a close-up line that lost the plate's edge character: 'TUV867' of '2TUV867')."""
    if len(o.fit.text) <= len(t.fit.text):
        return False
    contained = t.fit.text in o.fit.text or _subsequence(t.read.text, o.read.text)
    if contained and o.raw >= PIECE_SURE * t.raw and _overlap(t.plate.box, o.plate.box):
        return True
    return (o.plate.source in PLATE_OUTLINES and t.plate.source not in PLATE_OUTLINES
            and box_inside(t.plate.box, o.plate.box) >= 0.8
            and t.plate.width < PIECE_SPAN * o.plate.width)


class PlateReader:
    """Reads the plate in an image (whole photo, evidence frame or plate crop).

    ``engine``: "rapidocr" (default), "onnx" (``model``, default the shipped recogniser),
    "easyocr", or an OcrEngine. ``localiser``: "auto" (default: the plate model, then the text
    detector where the model's candidates give no sure read, then the text detector's closer
    look), "yolo" (``localiser_model``, default the shipped plate model), "textdet", "cascade" or
    a PlateLocaliser (a ``FirstFound`` is read stage by stage). ``region``: default plate region,
    "auto", "us", "eu" or "br".
    """

    def __init__(self, engine: str | OcrEngine = "rapidocr", model: str | None = None, threads: int = 1,
                 localiser: str | PlateLocaliser = "auto", localiser_model: str | None = None,
                 region: str = "auto", max_candidates: int = 3, calibration: Calibration | None = None,
                 det_max_side: int = 448, stretch: float | None = None, floor: float = UNREADABLE_BELOW):
        formats_for(region)  # validates
        self.floor = floor
        self.engine = make_engine(engine, model, threads) if isinstance(engine, str) else engine
        self.localiser = (make_localiser(localiser, localiser_model, threads, det_max_side)
                          if isinstance(localiser, str) else localiser)
        self.stages: tuple[PlateLocaliser, ...] = (self.localiser.localisers if isinstance(self.localiser, FirstFound)
                                                   else (self.localiser,))
        self.region = region
        self.max_candidates = max_candidates
        self.calibration = calibration if calibration is not None else Calibration.load()
        # the second, close-up text detection reuses the localiser's network when it has one
        text = next((s for s in self.stages if isinstance(s, TextDetLocaliser)), None)
        self.fine = text.detector if text is not None else TextDetector(threads=threads)
        # a recogniser trained on whole plates too also reads a plate detector's whole box
        self.whole_plates = bool(getattr(self.engine, "reads_whole_plates", False))
        # sideways stretch of the crop: the engine's preference unless given
        self.stretch = stretch if stretch is not None else getattr(self.engine, "stretch", 1.0)

    @property
    def engine_name(self) -> str:
        return self.engine.name

    def candidates(self, image: np.ndarray, hint_box: XYXY | None = None,
                   stage: PlateLocaliser | None = None) -> list[PlateBox]:
        """Plate regions to try, best first (from one localiser ``stage``; default the first)."""
        roi = None
        if hint_box is not None:
            bw, bh = hint_box[2] - hint_box[0], hint_box[3] - hint_box[1]
            roi = (hint_box[0] - 0.3 * bw, hint_box[1] - 0.5 * bh, hint_box[2] + 0.3 * bw, hint_box[3] + 0.5 * bh)
        found = (stage or self.stages[0]).locate(image, roi=roi, max_plates=self.max_candidates)
        return found[: self.max_candidates]

    def _read_whole(self, image: np.ndarray, region: str) -> list[_Try]:
        """An image shaped like a plate crop is also read whole, as a plate detector's box is."""
        h, w = image.shape[:2]
        if not self.whole_plates or not _crop_shaped(w, h):
            return []
        whole = PlateBox(box=(0.0, 0.0, float(w), float(h)), score=0.1, source=WHOLE_IMAGE)
        crops = [self._plate_crop(image, whole)]
        return self._score(self.engine.recognise(crops), crops, [whole], region)

    def _fallbacks(self, image: np.ndarray, hint_box: XYXY | None) -> list[PlateBox]:
        """Where no localiser found anything: the hint itself, or the whole image when it
        already looks like a plate crop."""
        h, w = image.shape[:2]
        if hint_box is not None:
            return [PlateBox(box=tuple(float(v) for v in hint_box), score=0.1, source="hint",
                             sharpness=sharpness(image, hint_box))]
        if _crop_shaped(w, h):
            return [PlateBox(box=(0.0, 0.0, float(w), float(h)), score=0.1, source=WHOLE_IMAGE,
                             sharpness=sharpness(image, (0, 0, w, h)))]
        return []

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

    def _plate_crop(self, image: np.ndarray, plate: PlateBox) -> np.ndarray:
        """A whole plate (the plate detector's box, or a plate-shaped image) as one crop: the
        recogniser was fine-tuned on whole plates too, and it reads past the edge character a
        close-up text line can cut off."""
        return warp(image, expand_quad(plate.quad(), PLATE_MARGIN, PLATE_MARGIN), height=48)

    def _whole_boxes(self, plates: list[PlateBox]) -> list[PlateBox]:
        """The candidates a recogniser trained on whole plates also reads whole."""
        return [p for p in plates if p.source == PLATE_MODEL] if self.whole_plates else []

    def line_crops(self, image: np.ndarray, plate: PlateBox) -> list[np.ndarray]:
        """What the recogniser is given for one plate candidate: its text line (found again close
        up), at the normal and at the wide margin."""
        top = self._tighten(image, plate)
        return [self._crop(image, top), self._crop(image, top, margin=WIDE_MARGIN)]

    def _score(self, raws: list[RawRead], crops: list[np.ndarray], plates: list[PlateBox],
               region: str) -> list[_Try]:
        tries = []
        for raw, crop, plate in zip(raws, crops, plates):
            # (colour marks are looked for only where the region's plates have them)
            droppable = droppable_characters(crop, raw.xs) if colour_marks_apply(region) else None
            fit = fit_format(raw, region, droppable=droppable)
            if fit is not None:
                tries.append(_Try(plate, fit, fit_score(fit), crop, raw))
        return tries

    def _try_plates(self, image: np.ndarray, plates: list[PlateBox], region: str) -> list[_Try]:
        """Reads of one localiser's candidates: the top one alone first (most photos end there);
        when unsure, the others, the top one unstretched and with a wider margin."""
        if not plates:
            return []
        top = self._tighten(image, plates[0])
        used = [top, *self._whole_boxes(plates[:1])]
        crops = [self._crop(image, top)] + [self._plate_crop(image, p) for p in used[1:]]
        tries = self._score(self.engine.recognise(crops), crops, used, region)
        if tries and max(t.raw for t in tries) >= STOP_RAW:
            if max(len(t.fit.text) for t in tries) >= FULL_LENGTH:
                return tries
            # sure but short: a thin edge '1' or 'I' the detector's box left out?
            return tries + self._wider(image, top, tries, region)
        rest = [self._tighten(image, p) for p in plates[1:]]
        # a second "row" may be the dealer's frame or the state name above the registration:
        # each row of a two-row candidate is also read on its own
        rest += [PlateBox(box=box_of(q), score=p.score, sharpness=p.sharpness, corners=q, source=p.source)
                 for p in [top, *rest] if p.rows == 2 for q in p.parts]
        # (wide, bold glyphs read better unstretched)
        whole = self._whole_boxes(plates[1:])
        crops = [self._crop(image, p) for p in rest] + [self._plate_crop(image, p) for p in whole]
        plates_used = rest + whole
        if self.stretch != 1.0:
            crops.append(self._crop(image, top, stretch=1.0))
            plates_used.append(top)
        tries += self._score(self.engine.recognise(crops), crops, plates_used, region)
        return tries + self._wider(image, top, tries, region)

    def _wider(self, image: np.ndarray, top: PlateBox, tries: list[_Try], region: str) -> list[_Try]:
        """The top candidate with a wider margin, for a character the box cut off: that read only
        counts when it has more characters (the plate's frame beside an edge 'O' reads as 'D')."""
        crops = [self._crop(image, top, margin=WIDE_MARGIN)]
        longest = max((len(t.fit.text) for t in tries if t.plate is top), default=0)
        return [t for t in self._score(self.engine.recognise(crops), crops, [top], region)
                if len(t.fit.text) > longest]

    def read(self, image: np.ndarray, region: str | None = None, hint_box: XYXY | None = None,
             ignore_zones: "Sequence[np.ndarray] | None" = None) -> PlateReadResult | None:
        """The best plate read in ``image`` (BGR); None when no plate is found. A read whose
        calibrated confidence is below ``floor`` comes back "unreadable": empty ``text``, the
        guess in ``guess``. ``ignore_zones``: polygons (image pixels) never looked in (overlays)."""
        t0 = time.perf_counter()
        region = region or self.region
        formats_for(region)
        if image is None or image.ndim not in (2, 3) or min(image.shape[:2]) < 8:
            return None
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        if ignore_zones:
            image = mask_zones(image, ignore_zones)
        tries: list[_Try] = self._read_whole(image, region)
        seen = False
        for stage in self.stages:
            plates = self.candidates(image, hint_box, stage)
            seen |= bool(plates)
            tries += self._try_plates(image, plates, region)
            if any(_sure(t) for t in tries):
                break
        if not seen:
            tries += self._try_plates(image, self._fallbacks(image, hint_box), region)
        if not tries:
            return None
        tries = [t for t in tries if not any(_piece_of(t, o) for o in tries)]
        best = max(tries, key=lambda t: t.raw)
        confidence = self.calibration(self.engine.name, best.raw)
        quad = refine_corners(image, best.plate.quad()) if best.plate.rows == 1 else None
        quad = best.plate.quad() if quad is None else quad
        return PlateReadResult(
            text=best.fit.text if confidence >= self.floor else "",
            guess=best.fit.text,
            confidence=confidence,
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
            specific=best.fit.format.specific,
        )

    def read_many(self, images: "list[np.ndarray]", region: str | None = None,
                  hint_boxes: "list[XYXY | None] | None" = None) -> tuple[PlateReadResult | None, list[PlateReadResult]]:
        """Read each image of one violation and vote: (voted read or None, per-image reads)."""
        from .vote import vote

        hints = hint_boxes or [None] * len(images)
        reads = [r for img, hint in zip(images, hints) if (r := self.read(img, region, hint)) is not None and r.text]
        return vote(reads), reads
