"""onnxruntime INT8 quantisation.

* ``quantize_detector``: static INT8, QDQ format, per-channel weights, activations calibrated on
  frames of the synthetic intersection, preprocessed exactly as the edge runtime does it.
  Weights use 7 bits (``reduce_range``): on x86 CPUs without VNNI onnxruntime's u8s8 kernels
  saturate 16-bit intermediate sums, which cost a YOLOv8n 20 mAP50 points here. The
  detection head's post-processing (DFL softmax, box decoding, the final concat of boxes and class
  scores, which have very different ranges) stays FP32: quantising it costs mAP for no speed.
* ``quantize_dynamic_int8``: weights INT8, activations quantised on the fly; for models such as
  the OCR recogniser (an LSTM) that static calibration does not fit.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from stopline.shared.vision.yolo import letterbox

from .env import ToolchainError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp"}


def list_images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTS)


def preprocess(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The edge runtime's input: letterboxed, RGB, 0..1, NCHW float32."""
    img, _ = letterbox(image, size)
    return cv2.dnn.blobFromImage(img, 1 / 255.0, swapRB=True)


def input_size(model: Path) -> tuple[int, int]:
    import onnx

    shape = onnx.load(str(model), load_external_data=False).graph.input[0].type.tensor_type.shape.dim
    h, w = shape[2].dim_value, shape[3].dim_value
    if not h or not w:
        raise ToolchainError(f"{model}: input size is not fixed; export with a fixed imgsz")
    return int(w), int(h)


class FrameReader:
    """onnxruntime CalibrationDataReader over a sample of image files."""

    def __init__(self, images: list[Path], input_name: str, size: tuple[int, int]):
        self.images, self.input_name, self.size = images, input_name, size
        self._it: Iterator[Path] = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        for path in self._it:
            img = cv2.imread(str(path))
            if img is not None:
                return {self.input_name: preprocess(img, self.size)}
        return None

    def rewind(self) -> None:
        self._it = iter(self.images)


def head_postprocess_nodes(model_path: Path, keep_outputs_fp32: bool = True) -> list[str]:
    """Names of the detection head's non-Conv nodes (the last ``/model.N/`` block) and, with
    ``keep_outputs_fp32``, of its last 1x1 convs (box distributions and class logits: cheap,
    and the most sensitive to 8-bit steps)."""
    import onnx

    graph = onnx.load(str(model_path)).graph
    blocks = [int(m.group(1)) for n in graph.node if (m := re.match(r"/model\.(\d+)/", n.name))]
    if not blocks:
        return []
    head = f"/model.{max(blocks)}/"
    out_conv = re.compile(r"/cv[23]\.\d+\.2/Conv$|/dfl/")
    return [n.name for n in graph.node if n.name.startswith(head)
            and (n.op_type != "Conv" or (keep_outputs_fp32 and out_conv.search(n.name)))]


def quantize_detector(fp32: Path, out: Path, calibration: list[Path], *, n_frames: int = 200,
                      seed: int = 0, method: str = "minmax", keep_outputs_fp32: bool = True,
                      op_types: list[str] | None = None, reduce_range: bool = True,
                      size: tuple[int, int] | None = None) -> Path:
    """Static INT8 (QDQ, per-channel) of a YOLO ONNX, calibrated on ``calibration`` frames
    (at ``size``, WIDTHxHEIGHT, for a model exported with a dynamic input; else its own)."""
    from onnxruntime.quantization import (CalibrationMethod, QuantFormat, QuantType, quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if not fp32.is_file():
        raise ToolchainError(f"{fp32}: FP32 ONNX model not found")
    if not calibration:
        raise ToolchainError("no calibration frames (expected images of the synthetic intersection)")
    frames = list(calibration)
    random.Random(seed).shuffle(frames)
    frames = frames[:n_frames]
    import onnxruntime as ort

    input_name = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    out.parent.mkdir(parents=True, exist_ok=True)
    prepped = out.with_suffix(".prep.onnx")
    quant_pre_process(str(fp32), str(prepped), skip_symbolic_shape=True)
    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    try:
        quantize_static(
            str(prepped), str(out), FrameReader(frames, input_name, size or input_size(fp32)),
            quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8, calibrate_method=methods[method],
            nodes_to_exclude=head_postprocess_nodes(prepped, keep_outputs_fp32), op_types_to_quantize=op_types,
            reduce_range=reduce_range,
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    finally:
        prepped.unlink(missing_ok=True)
    _copy_metadata(fp32, out)
    return out


def quantize_dynamic_int8(fp32: Path, out: Path, op_types: list[str] | None = None) -> Path:
    """Dynamic INT8 (weights int8, activations on the fly), per-channel where supported."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if not fp32.is_file():
        raise ToolchainError(f"{fp32}: FP32 ONNX model not found")
    out.parent.mkdir(parents=True, exist_ok=True)
    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                     op_types_to_quantize=op_types)
    _copy_metadata(fp32, out)
    return out


def _copy_metadata(src: Path, dst: Path) -> None:
    """Keep the class names (and other metadata) of the FP32 export in the INT8 file."""
    import onnx

    a = onnx.load(str(src), load_external_data=False)
    b = onnx.load(str(dst))
    have = {p.key for p in b.metadata_props}
    for p in a.metadata_props:
        if p.key not in have:
            b.metadata_props.add(key=p.key, value=p.value)
    onnx.save(b, str(dst))
