"""The YOLO plate-detector slot (issue 4's model plugs in here): letterbox, decode, NMS, scale back."""

import numpy as np
import pytest

from stopline.shared.imaging import plate_roi
from stopline.shared.plates import YoloLocaliser

onnx = pytest.importorskip("onnx", reason="onnx (train extra) builds the tiny test model")
from onnx import TensorProto, helper  # noqa: E402


def tiny_yolo(path, preds: np.ndarray, size: int = 64) -> None:
    """An ONNX graph with YOLOv8's interface (1x3xSxS in, 1x(4+1)xN out) that outputs ``preds``."""
    const = helper.make_tensor("preds", TensorProto.FLOAT, preds.shape, preds.ravel().tolist())
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["m"], keepdims=0),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["preds", "z"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(preds.shape))],
        initializer=[const, helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_yolo_decoding(tmp_path):
    # columns: (cx, cy, w, h, score) in the 64x64 letterboxed input
    preds = np.array([[32, 8, 16, 4, 0.9], [32.5, 8, 16, 4, 0.8], [10, 10, 8, 4, 0.1]], np.float32).T[None]
    tiny_yolo(tmp_path / "plate.onnx", preds)
    loc = YoloLocaliser(tmp_path / "plate.onnx", confidence=0.25)
    image = np.zeros((128, 256, 3), np.uint8)  # letterbox scale 64/256 = 0.25
    plates = loc.locate(image)
    assert len(plates) == 1  # the overlapping 0.8 box is suppressed, the 0.1 one filtered
    assert plates[0].box == pytest.approx((96, 24, 160, 40), abs=0.5)
    assert plates[0].score == pytest.approx(0.9) and plates[0].source == "yolo"
    # inside a vehicle box, grown as in training (plate_roi), boxes come back in image coordinates
    vehicle = (100, 50, 356, 178)
    x0, y0, x1, y1 = plate_roi(vehicle, (300, 400))
    assert (x0, y0) == (74, 30)  # 10 % of the width a side, 15 % of the height up and down
    r = 64 / max(x1 - x0, y1 - y0)
    roi = loc.locate(np.zeros((300, 400, 3), np.uint8), roi=vehicle)
    assert roi[0].box == pytest.approx((x0 + 24 / r, y0 + 6 / r, x0 + 40 / r, y0 + 10 / r), abs=0.5)


def test_reader_accepts_a_yolo_localiser(tmp_path, synth):
    render_plate, scene_with_plate = synth
    img, box = scene_with_plate(render_plate("7ABC123", 30), size=(480, 640), at=(320, 240))
    # a "detector" that finds exactly the plate: its box in 640-letterbox coordinates (scale 1)
    cx, cy, w, h = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]
    tiny_yolo(tmp_path / "plate.onnx", np.array([[cx, cy, w, h, 0.95]], np.float32).T[None], size=640)
    from stopline.shared.plates import PlateReader

    r = PlateReader(localiser="yolo", localiser_model=str(tmp_path / "plate.onnx")).read(img, region="us")
    assert r is not None and r.text == "7ABC123"
