"""Character-level, confidence-weighted voting across the reads of one violation's images."""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import numpy as np

from .types import PlateReadResult

# reads after the best one add evidence at half weight: the images of one burst are not
# independent (same plate, same light), so a plain noisy-OR would be over-confident
OTHER_READ_WEIGHT = 0.5


def vote(results: Sequence[PlateReadResult | None]) -> PlateReadResult | None:
    """One read from several: the text length with most confidence behind it, then per position
    the character with the largest sum of (read confidence x character confidence).

    Confidence: the best agreeing read's confidence, raised by the other reads that agree on the
    whole text (damped noisy-OR), times the weakest per-position agreement share.
    """
    reads = [r for r in results if r is not None and r.text]
    if not reads:
        return None
    if len(reads) == 1:
        return reads[0]
    by_len: dict[int, float] = defaultdict(float)
    for r in reads:
        by_len[len(r.text)] += r.confidence
    length = max(by_len, key=lambda n: (by_len[n], n))
    total_w = sum(r.confidence for r in reads) or 1e-9
    same = [r for r in reads if len(r.text) == length]
    chars, char_conf, agree = [], [], []
    for i in range(length):
        score: dict[str, float] = defaultdict(float)
        best_cc: dict[str, float] = defaultdict(float)
        for r in same:
            cc = r.char_confidences[i] if i < len(r.char_confidences) else r.confidence
            score[r.text[i]] += r.confidence * cc
            best_cc[r.text[i]] = max(best_cc[r.text[i]], cc)
        c = max(score, key=lambda k: score[k])
        share = score[c] / (sum(score.values()) or 1e-9)
        chars.append(c)
        char_conf.append(float(best_cc[c] * share))
        agree.append(sum(r.confidence for r in same if r.text[i] == c) / total_w)
    text = "".join(chars)
    matching = sorted((r for r in reads if r.text == text), key=lambda r: r.confidence, reverse=True)
    if matching:
        base = matching[0]
        miss = 1.0 - base.confidence
        for r in matching[1:]:
            miss *= 1.0 - OTHER_READ_WEIGHT * r.confidence
        conf = (1.0 - miss) * min(agree)
    else:  # a composite no single image read: as sure as its weakest character
        base = max(same, key=lambda r: r.confidence)
        conf = float(min(char_conf)) * min(agree)
    return PlateReadResult(
        text=text, confidence=float(np.clip(conf, 0.0, 1.0)), char_confidences=char_conf,
        region=base.region, engine=base.engine, ms=float(sum(r.ms for r in reads)), box=base.box,
        corners=base.corners, crop=base.crop, raw_text=text, raw_confidence=base.raw_confidence,
        format_name=base.format_name, source="vote",
    )
