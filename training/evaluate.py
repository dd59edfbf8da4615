"""Evaluate ONNX detector variants (FP32, pruned, INT8) with the edge runtime on onnxruntime.

Accuracy: mAP50, mAP50-95, precision, recall on a YOLO split (``images/test`` + ``labels/test``).
Latency: batch 1, a fixed number of threads (an edge box's), median and p90 over repeated runs
of the model alone (preprocessing and decoding excluded: they are the same for every variant).
Size: bytes on disk.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stopline.shared.vision.yolo import decode_v8, letterbox

from .env import ToolchainError
from .metrics import DetectionMetrics, ImageResult, evaluate
from .quantize import input_size, list_images


@dataclass
class VariantReport:
    name: str
    path: Path
    metrics: DetectionMetrics
    latency_ms: float
    latency_p90_ms: float
    size_bytes: int
    threads: int
    input_size: tuple[int, int]  # (width, height) the model takes

    def as_dict(self) -> dict[str, object]:
        return {"variant": self.name, "file": self.path.name, "input": "%dx%d" % self.input_size,
                **self.metrics.as_dict(),
                "latency_ms": round(self.latency_ms, 2), "latency_p90_ms": round(self.latency_p90_ms, 2),
                "threads": self.threads, "size_bytes": self.size_bytes,
                "size_mb": round(self.size_bytes / 1e6, 3)}


def read_labels(label: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """YOLO label file -> (xyxy pixels, classes); a missing file is an image without objects."""
    if not label.is_file():
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    rows = [ln.split() for ln in label.read_text().splitlines() if ln.strip()]
    if not rows:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.int64)
    try:
        a = np.array([[float(v) for v in r[:5]] for r in rows], np.float64)
    except ValueError:
        raise ToolchainError(f"{label}: not a YOLO label file (class cx cy w h per line)") from None
    cx, cy, w, h = a[:, 1] * width, a[:, 2] * height, a[:, 3] * width, a[:, 4] * height
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1).astype(np.float32)
    return xyxy, a[:, 0].astype(np.int64)


def label_path(image: Path) -> Path:
    parts = list(image.parts)
    idx = len(parts) - 1 - parts[::-1].index("images")
    parts[idx] = "labels"
    return Path(*parts).with_suffix(".txt")


def split_images(dataset: Path, split: str) -> list[Path]:
    folder = dataset / "images" / split
    images = list_images(folder) if folder.is_dir() else []
    if not images:
        raise ToolchainError(f"{folder}: no images (expected a YOLO dataset from `stopline models dataset`)")
    return images


def accuracy(model: Path, images: list[Path], names: list[str], threads: int = 2,
             conf: float = 0.01, iou: float = 0.6, merge: dict[int, int] | None = None,
             sizes: dict[str, tuple[float, float]] | None = None) -> DetectionMetrics:
    """Run the model through the edge runtime's letterbox and decoder, score against the labels.
    ``merge`` maps predicted classes onto the labels' (a real set that labels trucks and buses
    "car": ``{1: 0, 2: 0}``); ``sizes`` as in :func:`metrics.evaluate`."""
    # the edge runtime's pieces (letterbox, decoder) with the model's own classes kept: the
    # vehicle class mapping of YoloOnnx would drop a plate model's only class
    sess = _session(model, threads)
    inp = sess.get_inputs()[0]
    size = (int(inp.shape[3]), int(inp.shape[2]))
    identity = np.arange(len(names), dtype=np.int32)
    results = []
    for path in images:
        img = cv2.imread(str(path))
        if img is None:
            raise ToolchainError(f"{path}: cannot read image")
        boxed, box = letterbox(img, size)
        blob = cv2.dnn.blobFromImage(boxed, 1 / 255.0, swapRB=True)
        out = sess.run(None, {inp.name: blob})[0]
        d = decode_v8(out, conf=conf, iou=iou, cmap=identity, box=box,
                      frame_size=(img.shape[1], img.shape[0]), class_agnostic=False)
        order = np.argsort(-d.scores)[:300]
        classes = d.class_ids[order].astype(np.int64)
        if merge:
            classes = np.array([merge.get(int(c), int(c)) for c in classes], np.int64)
        t_xyxy, t_cls = read_labels(label_path(path), img.shape[1], img.shape[0])
        results.append(ImageResult(d.xyxy[order], d.scores[order], classes, t_xyxy, t_cls))
    return evaluate(results, names, sizes)


def _session(model: Path, threads: int):
    import onnxruntime as ort

    from stopline.shared.vision.yolo import session_options

    so = session_options(threads)
    # the variants take turns run by run: a session whose idle threads spin-wait after its run
    # would take the cores from the next one (4 variants measured ~2x slower than 2 with spinning)
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model), sess_options=so, providers=["CPUExecutionProvider"])


def latency(models: list[Path], threads: int = 2, runs: int = 50, warmup: int = 5) -> list[tuple[float, float]]:
    """(median, p90) milliseconds of one batch-1 inference per model. The models take turns run
    by run, so load from other processes on a shared machine hits every variant alike."""
    sessions = [_session(m, threads) for m in models]
    inputs = []
    for sess in sessions:
        inp = sess.get_inputs()[0]
        shape = [d if isinstance(d, int) else 1 for d in inp.shape]
        inputs.append({inp.name: np.random.default_rng(0).random(shape, dtype=np.float32)})
    for sess, x in zip(sessions, inputs):
        for _ in range(warmup):
            sess.run(None, x)
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(runs):
        for k, (sess, x) in enumerate(zip(sessions, inputs)):
            t = time.perf_counter()
            sess.run(None, x)
            times[k].append((time.perf_counter() - t) * 1000)
    out = []
    for ts in times:
        ts.sort()
        out.append((statistics.median(ts), ts[int(0.9 * (len(ts) - 1))]))
    return out


def evaluate_variants(variants: dict[str, Path], images: list[Path], names: list[str], threads: int = 2,
                      runs: int = 50) -> list[VariantReport]:
    for path in variants.values():
        if not path.is_file():
            raise ToolchainError(f"{path}: model file not found")
    metrics = {n: accuracy(p, images, names, threads=threads) for n, p in variants.items()}
    lat = latency(list(variants.values()), threads=threads, runs=runs)
    return [VariantReport(n, p, metrics[n], med, p90, p.stat().st_size, threads, input_size(p))
            for (n, p), (med, p90) in zip(variants.items(), lat)]
