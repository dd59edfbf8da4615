"""The ONNX YOLO runtime's pure parts, on constructed tensors: letterbox, decode, NMS, classes."""

from __future__ import annotations

import numpy as np
import pytest

from stopline.shared.vision.detections import VEHICLE_CLASSES
from stopline.shared.vision.yolo import COCO80, ModelError, class_map, decode_v8, letterbox, load_detector, nms


def _output(rows: list[tuple[float, float, float, float, int, float]], n_classes: int = 80,
            n_anchors: int = 50) -> np.ndarray:
    """A (1, 4+C, N) tensor with the given (cx, cy, w, h, class, score) anchors, rest empty."""
    out = np.zeros((1, 4 + n_classes, n_anchors), np.float32)
    out[0, 4:, :] = 0.01
    for i, (cx, cy, w, h, cls, score) in enumerate(rows):
        out[0, :4, i] = (cx, cy, w, h)
        out[0, 4 + cls, i] = score
    return out


def test_letterbox_keeps_aspect_and_maps_back():
    frame = np.zeros((720, 1280, 3), np.uint8)
    img, box = letterbox(frame, (640, 640))
    assert img.shape == (640, 640, 3)
    assert box.scale == pytest.approx(0.5) and box.pad_x == 0 and box.pad_y == 140
    back = box.to_frame(np.array([[0, 140, 640, 500]], np.float32))
    assert back[0] == pytest.approx([0, 0, 1280, 720])


def test_decode_maps_coco_classes_drops_others_and_restores_frame_pixels():
    frame_size = (1280, 720)
    _, box = letterbox(np.zeros((720, 1280, 3), np.uint8), (640, 640))
    car, truck, person = COCO80.index("car"), COCO80.index("truck"), COCO80.index("person")
    out = _output([
        (320, 320, 100, 50, car, 0.9),  # centre of the frame
        (100, 200, 40, 40, truck, 0.8),
        (500, 300, 30, 80, person, 0.95),  # not a vehicle
        (600, 400, 20, 20, car, 0.2),  # below confidence
    ])
    det = decode_v8(out, conf=0.35, iou=0.5, cmap=class_map(COCO80), box=box, frame_size=frame_size)
    assert len(det) == 2
    names = sorted(det.class_name(i) for i in range(len(det)))
    assert names == ["car", "truck"]
    i_car = [det.class_name(i) for i in range(len(det))].index("car")
    assert det.xyxy[i_car] == pytest.approx([540, 310, 740, 410])  # (320±50, 320±25 - 140) * 2
    assert det.scores[i_car] == pytest.approx(0.9)


def test_class_agnostic_nms_merges_car_and_truck_boxes_on_one_vehicle():
    _, box = letterbox(np.zeros((640, 640, 3), np.uint8), (640, 640))
    car, truck = COCO80.index("car"), COCO80.index("truck")
    out = _output([(300, 300, 100, 60, car, 0.9), (302, 301, 98, 60, truck, 0.6), (100, 100, 50, 50, car, 0.7)])
    det = decode_v8(out, conf=0.35, iou=0.5, cmap=class_map(COCO80), box=box, frame_size=(640, 640))
    assert len(det) == 2
    per_class = decode_v8(out, conf=0.35, iou=0.5, cmap=class_map(COCO80), box=box, frame_size=(640, 640),
                          class_agnostic=False)
    assert len(per_class) == 3


def test_transposed_output_layout_is_accepted():
    _, box = letterbox(np.zeros((640, 640, 3), np.uint8), (640, 640))
    out = _output([(300, 300, 100, 60, COCO80.index("bus"), 0.9)]).transpose(0, 2, 1)
    det = decode_v8(out, conf=0.35, iou=0.5, cmap=class_map(COCO80), box=box, frame_size=(640, 640))
    assert len(det) == 1 and det.class_name(0) == "bus"


def test_wrong_class_count_is_a_clear_error():
    _, box = letterbox(np.zeros((64, 64, 3), np.uint8), (64, 64))
    with pytest.raises(ModelError, match="classes"):
        decode_v8(np.zeros((1, 10, 30), np.float32), conf=0.3, iou=0.5, cmap=class_map(COCO80), box=box,
                  frame_size=(64, 64))


def test_nms_keeps_highest_and_separate_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.5, 0.9, 0.4], np.float32)
    assert list(nms(boxes, scores, 0.5)) == [1, 2]
    assert list(nms(boxes, scores, 0.9)) == [1, 0, 2]


def test_class_map_by_name_for_custom_models():
    m = class_map(["Car", "pedestrian", "motorbike", "van", "Bus"])
    assert [VEHICLE_CLASSES[i] if i >= 0 else None for i in m] == ["car", None, "motorcycle", "car", "bus"]


def test_model_file_errors_name_the_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_detector(tmp_path / "missing.onnx")
    bad = tmp_path / "weights.bin"
    bad.write_bytes(b"x")
    with pytest.raises(ModelError, match=r"weights.bin.*not an ONNX.*expected a \.onnx"):
        load_detector(bad)
    garbage = tmp_path / "broken.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="broken.onnx.*cannot load"):
        load_detector(garbage)


def test_pt_model_without_ultralytics_explains_the_export(tmp_path):
    try:
        import ultralytics  # noqa: F401
        pytest.skip("ultralytics is installed here")
    except ImportError:
        pass
    pt = tmp_path / "yolo11n.pt"
    pt.write_bytes(b"\x80\x02")
    with pytest.raises(ModelError, match=r"yolo11n.pt.*ultralytics is not installed.*format=onnx"):
        load_detector(pt)


def _model_path():
    import os

    path = os.environ.get("STOPLINE_TEST_YOLO")
    if not path:
        pytest.skip("set STOPLINE_TEST_YOLO to a YOLO .onnx (COCO names) to run the model on real frames")
    return path


def test_real_onnx_model_runs_in_the_pipeline():
    """With a real exported model: detections come back in frame pixels, and the whole pipeline
    runs on the ONNX backend (motion gate, tracker, rules)."""
    from det_scene import Car, camera, frames

    from stopline.services.vehicle_detector.pipeline import DetectorPipeline
    from stopline.shared.config import VehicleDetectorConfig

    path = _model_path()
    model = load_detector(path, conf=0.05)
    frame = next(frames(1, 25, [Car(0.0, 200, 200)], lambda t: "red"))[2]
    det = model.detect(frame)
    assert det.xyxy.shape[1] == 4 and (det.xyxy[:, 2] <= 640).all() and (det.xyxy[:, 3] <= 360).all()
    p = DetectorPipeline(camera(), VehicleDetectorConfig(backend="onnx", model=path), "s")
    for i, t, img, _ in frames(2, 25, [Car(0.5, 200, 200)], lambda t: "red"):
        p.process(img, i, t, t)
    assert p.stats["inferred"] + p.stats["skipped_static"] == 50
