"""Signal-head state from a crop of its housing: which lamp is lit, and in what colour.

No model: two pieces of evidence from HSV, combined.

* colour: pixels that are bright *relative to this crop* and saturated vote for red, amber or
  green by hue. Blown-out lamps are white in the middle, so the halo around the brightest blob
  carries the hue; the vote is therefore taken over a ring of "lit" pixels, not only the peak.
* position: which third of the housing (top/middle/bottom, or left/middle/right for horizontal
  heads) holds the brightest blob, measured against the crop's own median so that exposure and
  night glare (everything bright) cancel out.

Colour wins when it is clear; position settles weak or conflicting colour votes. A crop with no
lamp standing out from the housing is ``unknown``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

State = Literal["red", "amber", "green", "unknown"]
STATES: tuple[State, ...] = ("red", "amber", "green", "unknown")

# OpenCV hue is 0..179. Ranges chosen on the labelled crops (bench/edge_signal.py reports them).
_RED_LO, _RED_HI = 7, 155  # red: h < 7 or h > 155
_AMBER = (7, 35)
_GREEN = (60, 100)  # signal "green" is cyan-ish; >100 is blue (street signs, sky)
_MIN_CHROMA = 20.0  # max(B,G,R) - min(B,G,R) below this is grey, whatever its hue


@dataclass(frozen=True)
class LampReading:
    state: State
    confidence: float
    votes: dict[str, float]  # colour vote shares among lit saturated pixels
    thirds: tuple[float, float, float]  # lit-ness of top/middle/bottom (or left/middle/right)


def _percentile(a: np.ndarray, pct: float) -> float:
    """``np.percentile(a, pct)`` (linear), from a partial sort of the two values it needs: the same
    number, without numpy's general-purpose overhead (a fifth of a frame's signal time)."""
    flat = a.ravel()
    n = flat.size
    virtual = (n - 1) * float(np.true_divide(pct, 100))  # numpy's index for the linear method
    lo = min(int(np.floor(virtual)), n - 1)
    hi = min(lo + 1, n - 1)
    part = np.partition(flat, (lo, hi)) if hi != lo else np.partition(flat, lo)
    low, high = part[lo], part[hi]
    t = float(virtual - np.floor(virtual))  # a Python float: the sum stays in the array's dtype
    diff = high - low
    return float(high - diff * (1 - t) if t >= 0.5 else low + diff * t)


def classify_lamp(crop_bgr: np.ndarray, layout: Literal["vertical", "horizontal"] = "vertical") -> LampReading:
    """Read one signal head. ``crop_bgr`` is the housing (a little margin is fine)."""
    if crop_bgr is None or crop_bgr.ndim != 3 or crop_bgr.shape[0] < 3 or crop_bgr.shape[1] < 3:
        return LampReading("unknown", 0.0, {}, (0.0, 0.0, 0.0))
    if layout == "horizontal":
        crop_bgr = cv2.rotate(crop_bgr, cv2.ROTATE_90_CLOCKWISE)  # left lamp (red) ends on top
    h, w = crop_bgr.shape[:2]
    scale = 48.0 / h
    img = cv2.resize(crop_bgr, (max(8, int(round(w * scale))), 48), interpolation=cv2.INTER_AREA)
    img = cv2.GaussianBlur(img, (3, 3), 0)
    hsv = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
    hue = hsv[..., 0].astype(np.int16)
    sat = hsv[..., 1].astype(np.float32)
    val = hsv[..., 2].astype(np.float32)

    peak = _percentile(val, 99.5)
    med = float(np.median(val))
    if peak < 60:
        return LampReading("unknown", 0.0, {}, (0.0, 0.0, 0.0))
    # Colour votes: strongly coloured pixels (chroma near the crop's most colourful) that are also
    # bright, weighted by chroma. Blown-out lamp cores are white (low S) so the vote comes from their halo;
    # an overexposed sky is bright but unsaturated and does not vote.
    chroma = sat * val / 255.0  # = max(B,G,R) - min(B,G,R)
    is_red = (hue < _RED_LO) | (hue > _RED_HI)
    is_amber = (hue >= _AMBER[0]) & (hue <= _AMBER[1])
    is_green = (hue >= _GREEN[0]) & (hue <= _GREEN[1])
    lamp_hue = is_red | is_amber | is_green
    # Reference chroma over lamp hues only, so a blue sign or sky does not drown a lamp's colour.
    chroma_ref = _percentile(chroma[lamp_hue], 99.5) if lamp_hue.any() else 0.0
    colourful = lamp_hue & (chroma >= max(_MIN_CHROMA, 0.5 * chroma_ref)) & (val >= max(90.0, 0.45 * peak))
    weight = np.where(colourful, chroma, 0.0)
    red_w = float(weight[is_red].sum())
    amber_w = float(weight[is_amber].sum())
    green_w = float(weight[is_green].sum())
    total = red_w + amber_w + green_w
    votes = {"red": red_w / total, "amber": amber_w / total, "green": green_w / total} if total > 0 else {}
    n_colour = int(colourful.sum())
    contrast = peak - med
    lit = val >= med + 0.5 * max(contrast, 1.0)

    # Position: the brightest blob's third, from row profiles of the lit mask (central columns).
    cols = slice(img.shape[1] // 5, img.shape[1] - img.shape[1] // 5 or None)
    excess = np.clip(val[:, cols] - med, 0, None) * lit[:, cols]
    rows = excess.sum(axis=1)
    thirds_raw = np.array([rows[:16].sum(), rows[16:32].sum(), rows[32:].sum()], dtype=np.float64)
    thirds = thirds_raw / thirds_raw.sum() if thirds_raw.sum() > 0 else np.zeros(3)
    by_position: State = ("red", "amber", "green")[int(np.argmax(thirds))]

    if votes:
        best = max(votes, key=votes.__getitem__)
        share = votes[best]
        strong = n_colour >= 4 and share >= 0.6
        # Glare: a blown-out red lamp's halo reads orange, i.e. amber by hue. When the core is
        # saturated white and one lamp position clearly dominates, red/amber is settled by position.
        blown = bool(((val >= 235) & (sat < 70)).sum() >= 2)
        if blown and {best, by_position} == {"red", "amber"} and thirds.max() >= 0.75:
            return LampReading(by_position, 0.6 * float(thirds.max()), votes, tuple(map(float, thirds)))  # type: ignore[arg-type]
        if strong or best == by_position:
            conf = share if best != by_position else min(1.0, 0.5 + 0.5 * share + 0.2 * float(thirds.max()))
            return LampReading(best, float(conf), votes, tuple(map(float, thirds)))  # type: ignore[arg-type]
    # Weak or absent colour: fall back on which lamp position is lit, if one clearly is.
    if contrast >= 40 and thirds.max() >= 0.6:
        return LampReading(by_position, 0.5 * float(thirds.max()), votes, tuple(map(float, thirds)))  # type: ignore[arg-type]
    return LampReading("unknown", 0.0, votes, tuple(map(float, thirds)))  # type: ignore[arg-type]


class SignalSmoother:
    """Temporal smoothing of one head's readings: a state must hold for ``frames`` frames.

    ``unknown`` readings (a passing truck, a glitch) do not reset the held state until they
    persist for ``unknown_after`` frames.
    """

    def __init__(self, frames: int = 3, unknown_after: int = 24):
        self.frames = max(1, frames)
        self.unknown_after = max(self.frames, unknown_after)
        self.state: State = "unknown"
        self._candidate: State = "unknown"
        self._count = 0
        self._unknown_run = 0

    def update(self, reading: State) -> State:
        if reading == "unknown":
            self._unknown_run += 1
            if self._unknown_run >= self.unknown_after:
                self.state = "unknown"
            return self.state
        self._unknown_run = 0
        if reading == self._candidate:
            self._count += 1
        else:
            self._candidate, self._count = reading, 1
        if self._count >= self.frames or self.state == "unknown" and self._count >= 1 and self.frames == 1:
            self.state = reading
        return self.state
