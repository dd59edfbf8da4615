"""Confidence calibration: a monotone map from the reader's raw score to the probability that
the read is exactly right, fitted on real photos (``bench/plates_real.py --fit-calibration``)
and shipped as ``calibration.json`` (per engine)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

CALIBRATION_FILE = Path(__file__).with_name("calibration.json")


def isotonic(scores: Sequence[float], correct: Sequence[bool]) -> tuple[list[float], list[float]]:
    """Pool-adjacent-violators fit of P(correct | score), as knots (x, y) for np.interp."""
    order = np.argsort(scores)
    xs = np.asarray(scores, float)[order]
    ys = np.asarray(correct, float)[order]
    blocks: list[list[float]] = []  # [sum_y, count, x_lo, x_hi]
    for x, y in zip(xs, ys):
        blocks.append([y, 1.0, x, x])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, n, _, hi = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += n
            blocks[-1][3] = hi
    kx, ky = [], []
    for s, n, lo, hi in blocks:
        # shrink each block towards 0.5 by one pseudo-observation: small blocks stay humble
        p = (s + 0.5) / (n + 1.0)
        kx += [lo, hi]
        ky += [p, p]
    return [float(v) for v in kx], [float(v) for v in ky]


class Calibration:
    def __init__(self, knots: dict[str, tuple[list[float], list[float]]] | None = None):
        self.knots = knots or {}

    @classmethod
    def load(cls, path: Path | str = CALIBRATION_FILE) -> "Calibration":
        path = Path(path)
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        return cls({k: (v["x"], v["y"]) for k, v in data.get("engines", {}).items()})

    def save(self, path: Path | str = CALIBRATION_FILE, note: str = "") -> None:
        data = {"note": note, "engines": {k: {"x": x, "y": y} for k, (x, y) in self.knots.items()}}
        Path(path).write_text(json.dumps(data, indent=1) + "\n")

    def __call__(self, engine: str, raw: float) -> float:
        """Calibrated confidence; the raw score itself where no fit exists for the engine."""
        if engine not in self.knots:
            return float(raw)
        x, y = self.knots[engine]
        return float(np.interp(raw, x, y))


FULL_LENGTH = 7  # most plates of every region have 7 characters
