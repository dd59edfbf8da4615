"""Export a trained ``.pt`` to ONNX: fixed input size, batch 1, graph simplified (onnxslim)."""

from __future__ import annotations

import shutil
from pathlib import Path

from .env import ToolchainError, ultralytics


def export_onnx(weights: Path, out: Path, imgsz: int = 320, opset: int = 17) -> Path:
    """Write ``out`` (.onnx) from an ultralytics detection ``weights`` (.pt); returns ``out``."""
    if not weights.is_file() or weights.suffix != ".pt":
        raise ToolchainError(f"{weights}: expected an ultralytics YOLO detection .pt file")
    ul = ultralytics()
    model = ul.YOLO(str(weights))
    if getattr(model, "task", "detect") != "detect":
        raise ToolchainError(f"{weights}: a {model.task} model; only detection models are supported")
    # ultralytics writes the ONNX next to the weights (class names go into its metadata)
    produced = Path(model.export(format="onnx", imgsz=imgsz, simplify=True, dynamic=False,
                                 opset=opset, batch=1, half=False, device="cpu", verbose=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    if produced.resolve() != out.resolve():
        shutil.move(str(produced), out)
    return out
