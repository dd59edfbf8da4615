"""easyocr's English recogniser (CRNN: VGG + BiLSTM + CTC) exported to ONNX, on onnxruntime.

The model is the one ``stopline models ocr`` exports from easyocr's offline ``english_g2``
weights (INT8 dynamic-quantised by default): input ``N x 1 x 64 x W`` grey levels scaled to
-1..1, output ``N x T x C`` CTC probabilities (softmax inside the graph), class 0 the blank and
class k the k-th character of the model's character list (metadata ``character``, one per line).

Preprocessing and decoding follow easyocr's own ``recognize`` on a single box: grey, resize to
height 64 keeping the aspect (bilinear), right-pad by repeating the last column, greedy CTC
with the characters outside the allow-list removed and the rest renormalised. No PyTorch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .engines import ALPHABET, CtcOnnxEngine, EngineError

HEIGHT = 64


def to_grey(crop: np.ndarray) -> np.ndarray:
    if crop.ndim == 2:
        return crop
    if crop.ndim == 3 and crop.shape[2] == 1:
        return crop[:, :, 0]
    if crop.ndim == 3 and crop.shape[2] in (3, 4):
        return cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY if crop.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    raise EngineError(f"expected a BGR or grey image crop, got an array of shape {crop.shape}")


def resized_width(h: int, w: int, height: int = HEIGHT) -> int:
    return max(1, int(height * (w / max(1, h))))


def prepare(crops: Sequence[np.ndarray], height: int = HEIGHT) -> tuple[np.ndarray, list[int]]:
    """A batch ``N x 1 x height x W`` in -1..1 and each crop's own width before padding."""
    greys, widths = [], []
    for crop in crops:
        g = to_grey(crop)
        if g.size == 0 or min(g.shape[:2]) < 2:
            raise EngineError(f"crop of shape {g.shape} is too small to read")
        w = resized_width(g.shape[0], g.shape[1], height)
        greys.append(cv2.resize(g, (w, height), interpolation=cv2.INTER_LINEAR))
        widths.append(w)
    # easyocr pads every line to a whole number of squares (ceil(aspect) x height)
    width = max(max(math.ceil(w / height) * height for w in widths), height)
    batch = np.empty((len(crops), 1, height, width), np.float32)
    for i, (g, w) in enumerate(zip(greys, widths)):
        x = g.astype(np.float32) / 127.5 - 1.0
        batch[i, 0, :, :w] = x
        if w < width:  # easyocr pads by repeating the last column
            batch[i, 0, :, w:] = x[:, w - 1:w]
    return batch, widths


def custom_mean(p: np.ndarray) -> float:
    """easyocr's line confidence: product of the per-character maxima ** (2 / sqrt(n))."""
    if p.size == 0:
        return 0.0
    return float(np.prod(p) ** (2.0 / math.sqrt(p.size)))


class EasyOcrOnnxRecognizer(CtcOnnxEngine):
    """OcrEngine for the exported easyocr recogniser: ``recognise`` gives RawReads over A-Z0-9
    (the plate reader's interface), ``read`` gives easyocr-style (text, confidence)."""

    name = "easyocr-onnx"
    reads_whole_plates = True  # the toolchain fine-tunes it on whole plate crops as well as character rows

    def __init__(self, model: Path | str, threads: int = 1, allowlist: str = ALPHABET + ALPHABET.lower()):
        super().__init__(model, threads=threads, height=HEIGHT)
        characters = self._characters(Path(model))
        self.characters = characters
        inp = self.session.get_inputs()[0]
        if len(inp.shape) != 4 or inp.shape[1] != 1:
            raise EngineError(f"{model}: expected a 1-channel recogniser input N x 1 x 64 x W, got {inp.shape}")
        n_classes = self.session.get_outputs()[0].shape[2]
        if isinstance(n_classes, int) and n_classes != len(characters) + 1:
            raise EngineError(f"{model}: {n_classes} output classes but {len(characters)} characters (+ blank)")
        allowed = set(allowlist)
        # blank stays; every character outside the allow-list is ignored (easyocr's ignore_idx)
        self._ignore = np.array([k + 1 for k, ch in enumerate(characters) if ch not in allowed], np.int64)

    def _prepare(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        batch, self._widths = prepare(crops, self.height)
        return batch

    def probabilities(self, crop: np.ndarray) -> np.ndarray:
        """(T, C) CTC probabilities for one crop, the allow-list applied."""
        batch, _ = prepare([crop], self.height)
        p = self.session.run(None, {self.input_name: batch})[0][0].astype(np.float64)
        if self._ignore.size:
            p[:, self._ignore] = 0.0
        return p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)

    def read(self, crops: Sequence[np.ndarray]) -> list[tuple[str, float]]:
        """easyocr's greedy decoding, one crop at a time (as easyocr's ``recognize`` does)."""
        out = []
        for crop in crops:
            p = self.probabilities(crop)
            idx = p.argmax(axis=1)
            chars = [self.characters[k - 1] for t, k in enumerate(idx)
                     if k != 0 and (t == 0 or idx[t - 1] != k)]
            out.append(("".join(chars), custom_mean(p.max(axis=1)[idx != 0])))
        return out
