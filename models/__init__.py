"""Models shipped with stopline (package data): INT8 vehicle and plate detectors, the INT8 OCR
recogniser, each with a model card (``NAME.md``), ``NAME.metrics.json`` and a plot.

Built by ``stopline models ...`` (see docs/models.md); loaded by onnxruntime only.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent

VEHICLE = "vehicle-int8.onnx"
PLATE = "plate-int8.onnx"
RECOGNIZER = "easyocr-en-int8.onnx"


def shipped(name: str) -> Path:
    """Path of a shipped model file; FileNotFoundError naming what is missing and how to build it."""
    p = HERE / name
    if not p.is_file():
        raise FileNotFoundError(f"{p}: shipped model missing; build it with `stopline models build` "
                                f"(train extra) or reinstall stopline")
    return p


def vehicle_model() -> Path:
    return shipped(VEHICLE)


def plate_model() -> Path:
    return shipped(PLATE)


def recognizer_model() -> Path:
    return shipped(RECOGNIZER)
