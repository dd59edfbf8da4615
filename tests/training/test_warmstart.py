"""A shipped ONNX detector turned back into trainable weights computes what the ONNX computes
(train extra only: skipped without ultralytics)."""

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("ultralytics")
torch = pytest.importorskip("torch")

from stopline.models import HERE as MODELS  # noqa: E402
from stopline.training.warmstart import onnx_conv_weights, warm_start  # noqa: E402


def _frames(tmp_path: Path, n: int = 8) -> list[Path]:
    from stopline.sim import export_yolo

    export_yolo(tmp_path / "scene", 30, seed=41)
    return sorted((tmp_path / "scene" / "vehicles" / "images").rglob("*.jpg"))[:n]


def test_int8_weights_are_dequantised_for_every_convolution():
    weights = onnx_conv_weights(MODELS / "vehicle-int8.onnx")
    assert len(weights) == 64
    w, b = weights["model.0.conv"]
    assert w.shape == (16, 3, 3, 3) and b is not None and np.abs(w).max() > 0


def test_warm_started_model_reproduces_the_onnx_outputs(tmp_path):
    import onnxruntime as ort
    from ultralytics import YOLO

    frames = _frames(tmp_path)
    pt = warm_start(MODELS / "vehicle-int8.onnx", tmp_path / "v.pt", arch="yolov8n-relu.yaml",
                    names=["car", "truck", "bus", "motorcycle"], images=frames, imgsz=320)
    net = YOLO(str(pt)).model.float().eval()
    img = cv2.resize(cv2.imread(str(frames[-1])), (320, 192))
    x = np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)[None] / 255.0).astype(np.float32)
    with torch.no_grad():
        mine = net(torch.from_numpy(x))[0].numpy()
    sess = ort.InferenceSession(str(MODELS / "vehicle-int8.onnx"), providers=["CPUExecutionProvider"])
    theirs = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    # INT8 activations differ from FP32 ones a little; the scores must still agree closely
    assert np.corrcoef(mine[0, 4:].ravel(), theirs[0, 4:].ravel())[0, 1] > 0.98
    # and train mode (batch statistics) stays near eval mode: BatchNorm was set from real inputs
    net.train()
    with torch.no_grad():
        feats = net.model[0](torch.from_numpy(x))
    net.eval()
    with torch.no_grad():
        ref = net.model[0](torch.from_numpy(x))
    assert float((feats - ref).abs().mean()) < 0.5 * float(ref.abs().mean())
