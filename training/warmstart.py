"""Trainable ultralytics weights recovered from a shipped ONNX detector.

The shipped INT8 models are the only copy of a training run that a fresh machine has. Their
convolutions hold the weights with BatchNorm folded in (and, for INT8, quantised per channel), so
they are mapped back onto a model built from the same YAML: each folded ``conv`` takes the
dequantised weight, and its BatchNorm is set so that it reproduces the folded bias both in eval
mode and, approximately, in train mode (running mean and variance measured on real inputs, the
affine part undoing them). Fine-tuning then starts from the shipped model instead of from scratch.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from .env import ToolchainError, ultralytics
from .jsonfile import read_json
from .train import arch_path


def onnx_conv_weights(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """``{module name: (weight, bias)}`` for every Conv of an ultralytics ONNX export, INT8 QDQ
    weights dequantised (``model.0.conv`` -> its folded weight and bias)."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    inits = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    producer = {o: n for n in graph.node for o in n.output}
    def constant(name: str) -> tuple[np.ndarray, str]:
        """A stored or dequantised tensor and the name of what it was stored as."""
        if name in inits:
            return inits[name].astype(np.float32), name
        dq = producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear":
            raise ToolchainError(f"{path}: {name} is neither stored nor dequantised")
        q, scale, zero = (inits[n] for n in dq.input[:3])
        shape = (-1,) + (1,) * (q.ndim - 1) if scale.ndim else ()
        value = (q.astype(np.float32) - np.reshape(zero.astype(np.float32), shape)) * np.reshape(scale, shape)
        return value, dq.input[0].removesuffix("_quantized")

    out: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for node in graph.node:
        if node.op_type != "Conv":
            continue
        weight, stored = constant(node.input[1])
        bias = constant(node.input[2])[0] if len(node.input) > 2 and node.input[2] else None
        out[stored.removesuffix(".weight")] = (weight, bias)
    return out


def _calibration_batch(images: list[Path], imgsz: int) -> "torch.Tensor":  # noqa: F821
    import torch

    batch = []
    for p in images:
        img = cv2.imread(str(p))
        if img is None:
            continue
        batch.append(cv2.resize(img, (imgsz, imgsz))[:, :, ::-1].transpose(2, 0, 1) / 255.0)
    if not batch:
        raise ToolchainError("warm start: no readable calibration image")
    return torch.from_numpy(np.ascontiguousarray(np.stack(batch))).float()


def warm_start(onnx_path: Path, out: Path, *, arch: str, names: list[str], images: list[Path],
               imgsz: int) -> Path:
    """Write ``out`` (.pt) with ``onnx_path``'s weights in the ``arch`` model; ``images`` (a few
    dozen training images) set the BatchNorm statistics."""
    import torch

    ul = ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    yolo = ul.YOLO(arch_path(arch))
    net = DetectionModel(arch_path(arch), nc=len(names), verbose=False)
    net.names = dict(enumerate(names))
    yolo.model = net
    found = onnx_conv_weights(onnx_path)
    modules = dict(net.named_modules())
    bns: dict[str, tuple[torch.nn.BatchNorm2d, np.ndarray]] = {}
    with torch.no_grad():
        for name, (weight, bias) in found.items():
            conv = modules.get(name)
            if not isinstance(conv, torch.nn.Conv2d) or tuple(conv.weight.shape) != weight.shape:
                raise ToolchainError(f"{onnx_path}: {name} {weight.shape} does not fit {arch}")
            conv.weight.copy_(torch.from_numpy(weight))
            b = bias if bias is not None else np.zeros(weight.shape[0], np.float32)
            # ultralytics' Conv block (conv + bn + act) exports as its folded ``NAME.conv``
            owner = modules.get(name.removesuffix(".conv")) if name.endswith(".conv") else None
            if owner is not None and hasattr(owner, "bn"):
                bn = owner.bn
                bn.weight.fill_(1.0)
                bn.bias.copy_(torch.from_numpy(b))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
                bns[name] = (bn, b)
            elif conv.bias is not None:
                conv.bias.copy_(torch.from_numpy(b))
        # identity BatchNorms reproduce the ONNX model exactly; measure each conv's output there
        stats: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        hooks = [modules[n].register_forward_hook(
            lambda _m, _i, y, n=n: stats.__setitem__(n, (y.mean((0, 2, 3)), y.var((0, 2, 3)))))
            for n in bns]
        net.eval()
        net(_calibration_batch(images, imgsz))
        for h in hooks:
            h.remove()
        # BN(y) = (y - m) / sqrt(v + eps) * sqrt(v + eps) + (b + m) = y + b in eval mode, and close
        # to it in train mode where the batch statistics are near m and v
        for n, (bn, b) in bns.items():
            m, v = stats[n]
            bn.running_mean.copy_(m)
            bn.running_var.copy_(v)
            bn.weight.copy_(torch.sqrt(v + bn.eps))
            bn.bias.copy_(torch.from_numpy(b) + m)
    missing = [n for n, m in modules.items() if isinstance(m, torch.nn.Conv2d) and n not in found]
    if missing:
        raise ToolchainError(f"{onnx_path}: no weights for {len(missing)} convolutions, e.g. {missing[:3]}")
    out.parent.mkdir(parents=True, exist_ok=True)
    yolo.save(str(out))
    # the training record of the ONNX model (its card's metrics file) stays the lineage's parent
    card = read_json(onnx_path.parent / f"{onnx_path.name.split('-')[0]}.metrics.json") or {}
    record = {"warm_start_from": str(onnx_path), "train_minutes": 0.0, "device": "cpu", "data": None,
              "recipe": {}, "parent": card.get("training")}
    out.with_suffix(".train.json").write_text(json.dumps(record, indent=2))
    return out
