"""Export a trained ``.pt`` to ONNX: fixed input size, batch 1, graph simplified (onnxslim)."""

from __future__ import annotations

import shutil
from pathlib import Path

from .env import ToolchainError, ultralytics


STRIDE = 32  # YOLO's largest feature stride: input sides must be multiples of it


def parse_imgsz(text: str) -> tuple[int, int]:
    """``"256"`` -> ``(256, 256)``; ``"320x192"`` -> ``(320, 192)`` (width, height), sides multiples of 32.

    A 16:9 camera frame fills only 56 % of a square input; a wide input of the same area gives
    every vehicle more pixels (320x192 costs 0.94x the compute of 256x256 at 1.25x the scale)."""
    try:
        w, h = (int(v) for v in text.lower().split("x")) if "x" in text.lower() else (int(text),) * 2
    except ValueError:
        raise ToolchainError(f"--imgsz {text!r}: expected SIZE or WIDTHxHEIGHT, e.g. 256 or 320x192") from None
    if w <= 0 or h <= 0 or w % STRIDE or h % STRIDE:
        raise ToolchainError(f"--imgsz {text!r}: width and height must be positive multiples of {STRIDE}")
    return w, h


def export_onnx(weights: Path, out: Path, imgsz: tuple[int, int] = (256, 256), opset: int = 17) -> Path:
    """Write ``out`` (.onnx, fixed input ``imgsz`` = (width, height)) from an ultralytics detection
    ``weights`` (.pt); returns ``out``."""
    if not weights.is_file() or weights.suffix != ".pt":
        raise ToolchainError(f"{weights}: expected an ultralytics YOLO detection .pt file")
    ul = ultralytics()
    model = ul.YOLO(str(weights))
    if getattr(model, "task", "detect") != "detect":
        raise ToolchainError(f"{weights}: a {model.task} model; only detection models are supported")
    # ultralytics writes the ONNX next to the weights (class names go into its metadata)
    produced = Path(model.export(format="onnx", imgsz=[imgsz[1], imgsz[0]], simplify=True, dynamic=False,
                                 opset=opset, batch=1, half=False, device="cpu", verbose=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    if produced.resolve() != out.resolve():
        shutil.move(str(produced), out)
    return out
