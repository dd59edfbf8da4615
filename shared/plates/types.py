"""Plain data types shared by the plate finder (edge) and the plate reader (gateway)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from stopline.shared.messages import PlateRead

XYXY = tuple[float, float, float, float]


@dataclass(frozen=True)
class PlateBox:
    """A plate-like region of an image.

    ``box`` is axis-aligned xyxy in image pixels; ``corners`` (4x2, clockwise from top-left) is
    the tighter rotated quadrilateral when the localiser knows it. ``rows`` is 2 for a two-row
    plate candidate. ``sharpness`` is the variance of the Laplacian of the region (higher reads
    better); ``score`` is the localiser's plate-likeness, 0..1.
    """

    box: XYXY
    score: float
    sharpness: float = 0.0
    corners: np.ndarray | None = field(default=None, compare=False, repr=False)
    rows: int = 1
    source: str = ""
    # two-row plates: each row's own quadrilateral (top first), read side by side
    parts: tuple[np.ndarray, ...] = field(default=(), compare=False, repr=False)

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def quad(self) -> np.ndarray:
        """The four corners (4x2 float32, tl tr br bl), from ``box`` when none were given."""
        if self.corners is not None:
            return np.asarray(self.corners, dtype=np.float32)
        x1, y1, x2, y2 = self.box
        return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], dtype=np.float32)


@dataclass
class PlateReadResult:
    """One plate read: normalised text (A-Z0-9), calibrated confidence and where it came from.
    ``text`` is empty when the read is "unreadable" (a plate, but a confidence below the floor)."""

    text: str
    confidence: float
    char_confidences: list[float]
    region: str
    engine: str
    ms: float
    box: XYXY | None = None
    corners: np.ndarray | None = field(default=None, repr=False)
    crop: np.ndarray | None = field(default=None, repr=False)
    raw_text: str = ""
    raw_confidence: float = 0.0
    format_name: str | None = None
    source: str | None = None
    guess: str = ""  # what was read, also when it is below the floor and ``text`` is empty
    specific: bool = False  # the text fits one of the region's layouts (not "any characters")

    @property
    def unreadable(self) -> bool:
        """A plate was found and read, but too unsure to name (confidence below the floor)."""
        return not self.text

    def to_message(self, source: str | None = None, crop_name: str | None = None) -> PlateRead:
        """The wire form (``shared.messages.PlateRead``)."""
        return PlateRead(
            text=self.text,
            confidence=float(min(1.0, max(0.0, self.confidence))),
            char_confidences=[float(min(1.0, max(0.0, c))) for c in self.char_confidences],
            region=self.region,
            engine=self.engine,
            source=source if source is not None else self.source,
            crop=crop_name,
            box=None if self.box is None else tuple(float(v) for v in self.box),
        )
