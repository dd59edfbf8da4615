"""Plate formats per region and format-constrained correction of OCR confusions.

A format is a pattern over character classes: ``L`` letter, ``D`` digit, ``A`` either. Reading a
plate means choosing, among the formats of the region, the one the recogniser's per-character
probabilities fit best; a character that breaks the format may only be swapped for one of its
look-alikes (O/0, I/1, B/8, S/5, Z/2, ...), never for an arbitrary character.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .engines import ALPHABET, CONFUSIONS, RawRead
from .us_states import LAYOUT_STATES

REGIONS = ("us", "eu", "br")
_LETTERS = np.array([c.isalpha() for c in ALPHABET])
_DIGITS = ~_LETTERS
_IDX = {c: i for i, c in enumerate(ALPHABET)}


@dataclass(frozen=True)
class PlateFormat:
    name: str
    region: str
    pattern: str  # L, D or A per character
    cost: float = 0.0  # nats: rarer layouts of a region cost a little, so ties go to common ones

    @property
    def specific(self) -> bool:
        return "A" not in self.pattern


def _any(region: str, lo: int, hi: int) -> list[PlateFormat]:
    return [PlateFormat(f"{region}-{n}", region, "A" * n) for n in range(lo, hi + 1)]


def _example(pattern: str) -> str:
    letters, digits = iter("ABCDEFGH"), iter("12345678")
    return "".join(next(letters if c == "L" else digits).lower() for c in pattern)


def _us_layouts() -> list[PlateFormat]:
    """One format per layout in ``us_states.STATE_LAYOUTS``: issued by 5+ states or by one of the
    four most populous (a third of US vehicles) costs nothing, by 2-4 states 0.1 nats, by one 0.2."""
    def cost(states: list[str]) -> float:
        if len(states) >= 5 or set(states) & {"CA", "TX", "FL", "NY"}:
            return 0.0
        return 0.1 if len(states) >= 2 else 0.2

    out = [PlateFormat(f"us-{_example(p)}", "us", p, cost(st)) for p, st in LAYOUT_STATES.items()]
    return sorted(out, key=lambda f: f.cost)


FORMATS: dict[str, list[PlateFormat]] = {
    # Brazil: old grey plates ABC1234, Mercosul ABC1D23
    "br": [PlateFormat("br-abc1234", "br", "LLLDDDD"), PlateFormat("br-mercosul", "br", "LLLDLDD")],
    # US: every state's standard layouts (us_states.py), the more states issue one the more it is
    # preferred; then vanity/specialty plates, any 2-8 letters/digits
    "us": [*_us_layouts(), *_any("us", 2, 8)],
    # EU: common national layouts (without their separators), then any 2-8 characters
    "eu": [PlateFormat("eu-ab123cd", "eu", "LLDDDLL"),    # HR, IT, FR, SK, ...
           PlateFormat("eu-ab1234cd", "eu", "LLDDDDLL", 0.1),  # HR (4 digits)
           PlateFormat("eu-ab12abc", "eu", "LLDDLLL", 0.1),    # UK
           PlateFormat("eu-1234abc", "eu", "DDDDLLL", 0.1),    # ES
           PlateFormat("eu-1a23456", "eu", "DLDDDDD", 0.1),    # CZ
           PlateFormat("eu-ab12345", "eu", "LLDDDDD", 0.2),    # PL, ...
           PlateFormat("eu-abc1234", "eu", "LLLDDDD", 0.2),
           PlateFormat("eu-abcd123", "eu", "LLLLDDD", 0.2),   # DE (district, letters, digits: 'HH AB 123')
           PlateFormat("eu-abc123", "eu", "LLLDDD", 0.2),     # DE, ...
           *_any("eu", 2, 8)],
}

SWAP_PENALTY = 0.3       # nats per look-alike swap the format forces ...
SWAP_CERTAINTY = 0.08    # ... plus this much per nat the recogniser preferred what it saw
GENERIC_PENALTY = 1.2    # nats for falling back to "any characters" in a region
DROP_PENALTY = 1.5       # nats per unit of confidence of a dropped edge character
MAX_PENALTY = 3.0        # beyond this the text is no plate (a sign, a sticker, a dealer's name)
GROUP_PENALTY = 0.6      # nats for a swap against the character's own group ('W 053011': the 0
                         # sits among digits, so it is no letter O, whatever a layout wants)


@dataclass
class FormatFit:
    text: str
    confidences: list[float]
    format: PlateFormat
    penalty: float   # nats; 0 = the raw read already fits a specific format
    swaps: int
    dropped: int


_AUTO = [f for r in REGIONS for f in FORMATS[r] if f.specific] + _any("auto", 2, 8)


def formats_for(region: str) -> list[PlateFormat]:
    """The formats a region allows; "auto": every region's layouts, then any 2-8 characters."""
    if region == "auto":
        return _AUTO
    if region not in FORMATS:
        raise ValueError(f"unknown region {region!r} (auto, {', '.join(REGIONS)})")
    return FORMATS[region]


def _in_kind_group(read: RawRead, i: int) -> bool:
    """True when the separators the recogniser read put character ``i`` in a group where its
    neighbours are of its own kind (a digit among digits, a letter among letters): swapping it
    for a look-alike of the other kind would break the group."""
    if read.breaks is None or not read.breaks.any():
        return False
    groups, kinds = read.groups(), _LETTERS[read.probs.argmax(axis=1)]
    near = [j for j in (i - 1, i + 1) if 0 <= j < len(kinds) and groups[j] == groups[i]]
    return bool(near) and all(kinds[j] == kinds[i] for j in near)


def _fit_one(read: RawRead, fmt: PlateFormat, bests: np.ndarray) -> tuple[str, list[float], float, int] | None:
    """``bests``: ``read.probs.argmax(axis=1)`` (the same for every format tried)."""
    text, confs, penalty, swaps = [], [], 0.0, 0
    for i, (row, cls) in enumerate(zip(read.probs, fmt.pattern)):
        best = int(bests[i])
        allowed = np.ones(36, bool) if cls == "A" else (_LETTERS if cls == "L" else _DIGITS)
        if allowed[best]:
            text.append(ALPHABET[best])
            confs.append(float(row[best]))
            continue
        partners = [_IDX[c] for c in CONFUSIONS.get(ALPHABET[best], "") if allowed[_IDX[c]]]
        if not partners:
            return None
        # the first look-alike listed is the usual one (0 -> O before D) unless the model disagrees
        alt = max(partners, key=lambda k: row[k] * (1.0 if k == partners[0] else 0.5))
        # the glyph was read as `best`; its look-alike is what the format allows
        text.append(ALPHABET[alt])
        confs.append(float(min(1.0, (row[best] + row[alt]) * 0.9)))
        penalty += SWAP_PENALTY + SWAP_CERTAINTY * math.log(max(row[best], 1e-4) / max(row[alt], 1e-4))
        penalty += GROUP_PENALTY if _in_kind_group(read, i) else 0.0
        swaps += 1
    return "".join(text), confs, penalty, swaps


def _trims(read: RawRead, droppable: np.ndarray | None) -> list[tuple[RawRead, float, int]]:
    """The read and versions without up to two edge characters (bolts, frame, band letters) and
    without characters read on colour marks (stickers, emblems: ``droppable``)."""
    n = len(read.probs)
    conf = read.confidences
    marks = np.zeros(n, bool) if droppable is None else np.asarray(droppable, bool)
    bases = [(np.arange(n), 0.0, 0)]
    marked = np.where(marks)[0]
    # without each marked character alone (a band letter and a sticker are separate marks), and all
    for drop in [[i] for i in marked] + ([marked] if len(marked) > 1 else []):
        bases.append((np.setdiff1d(np.arange(n), drop), 0.1 * len(drop), len(drop)))
    out = []
    for idx, base_cost, base_drop in bases:
        m = len(idx)
        for left in range(0, 3):
            for right in range(0, 3):
                if left + right > 2 or m - left - right < 2:
                    continue
                cost = base_cost
                # a mark at the left edge is the country band; on the right it is more
                # likely the car's paint beside the plate, so it makes no drop cheaper there
                for i in idx[:left]:
                    cost += 0.05 if marks[i] else DROP_PENALTY * float(conf[i]) + 0.1
                for i in idx[m - right:]:
                    cost += DROP_PENALTY * float(conf[i]) + 0.1
                out.append((read.take(idx[left:m - right]), cost, base_drop + left + right))
    return out


def colour_marks_apply(region: str) -> bool:
    """Whether characters read on colour marks (``droppable``) may be left out in ``region``:
    colour marks in the character row (country band, inspection sticker) are European; US and
    Brazilian stickers and state/country names sit above or below the row."""
    return region not in ("us", "br")


def fit_format(read: RawRead, region: str = "auto", droppable: np.ndarray | None = None) -> FormatFit | None:
    """The best format-constrained text for one raw read, or None when nothing fits.

    ``droppable``: per character, True where it was read on a colour mark (country band, emblem,
    sticker); leaving it out costs little.
    """
    best: FormatFit | None = None
    if len(read.probs) == 0:
        return None
    if not colour_marks_apply(region):
        droppable = None
    for part, drop_cost, dropped in _trims(read, droppable):
        bests = part.probs.argmax(axis=1)
        for fmt in formats_for(region):
            if len(fmt.pattern) != len(part.probs):
                continue
            # a fit only adds penalty (swaps): a format that cannot beat the best so far is skipped
            floor = drop_cost + fmt.cost + (0.0 if fmt.specific else GENERIC_PENALTY)
            if floor > MAX_PENALTY or (best is not None and floor >= best.penalty):
                continue
            fit = _fit_one(part, fmt, bests)
            if fit is None:
                continue
            text, confs, penalty, swaps = fit
            penalty += drop_cost + fmt.cost + (0.0 if fmt.specific else GENERIC_PENALTY)
            if penalty <= MAX_PENALTY and (best is None or penalty < best.penalty):
                best = FormatFit(text, confs, fmt, penalty, swaps, dropped)
    return best


def correct_text(text: str, region: str = "auto", confidence: float = 0.9) -> str | None:
    """Format-correct a plain string (engines without probabilities, tests, user input)."""
    from .engines import text_to_raw

    fit = fit_format(text_to_raw(normalise(text), confidence), region)
    return None if fit is None else fit.text


def normalise(text: str) -> str:
    """Upper case A-Z0-9 only (what every stopline component stores and compares)."""
    return "".join(c for c in text.upper() if c in _IDX)


def fit_score(fit: FormatFit) -> float:
    """Raw (uncalibrated) plausibility of a fitted read: geometric mean of the character
    confidences, discounted by the format penalty."""
    c = np.clip(np.asarray(fit.confidences, dtype=np.float64), 1e-6, 1.0)
    return float(math.exp(np.log(c).mean() - fit.penalty * 0.5) * min(1.0, c.min() + 0.5))
