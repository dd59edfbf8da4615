"""ONNX YOLO (v8 / 11 export layout) on onnxruntime, CPU: letterbox, decode, NMS, class mapping.

An ultralytics export has one output of shape (1, 4 + C, N): per anchor the box centre/size in
input pixels then C class scores (no objectness). Class names come from the model's metadata
(``names``) or, failing that, COCO order; names are mapped to stopline's vehicle classes and
everything else is dropped. INT8 (quantised) and FP32 files load the same way.
"""

from __future__ import annotations

import ast
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from stopline.shared.vision.detections import CLASS_ALIASES, VEHICLE_CLASSES, Detections

COCO80: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)


class ModelError(Exception):
    """A model file that cannot be used; the text names the file and why."""


@dataclass(frozen=True)
class Letterbox:
    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        out = xyxy.copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - self.pad_x) / self.scale
        out[:, [1, 3]] = (out[:, [1, 3]] - self.pad_y) / self.scale
        return out


def letterbox(image: np.ndarray, size: tuple[int, int], colour: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Resize keeping aspect into ``size`` (width, height), padding the rest evenly."""
    h, w = image.shape[:2]
    tw, th = size
    scale = min(tw / w, th / h)
    nw, nh = int(round(w * scale)), int(round(h * scale))
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nw, nh) != (w, h) else image
    pad_x, pad_y = (tw - nw) / 2.0, (th - nh) / 2.0
    top, left = int(round(pad_y - 0.1)), int(round(pad_x - 0.1))
    out = cv2.copyMakeBorder(resized, top, th - nh - top, left, tw - nw - left, cv2.BORDER_CONSTANT,
                             value=(colour, colour, colour))
    return out, Letterbox(scale, float(left), float(top))


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, highest score first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = boxes.T
    areas = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        rest = order[1:]
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou <= iou_threshold]
    return np.asarray(keep, np.int64)


def class_map(names: list[str] | tuple[str, ...]) -> np.ndarray:
    """Model class index -> stopline class index (-1: not a vehicle, dropped)."""
    out = np.full(len(names), -1, np.int32)
    for i, name in enumerate(names):
        mapped = CLASS_ALIASES.get(name.strip().lower())
        if mapped is not None:
            out[i] = VEHICLE_CLASSES.index(mapped)
    return out


def decode_v8(output: np.ndarray, *, conf: float, iou: float, cmap: np.ndarray, box: Letterbox,
              frame_size: tuple[int, int], class_agnostic: bool = True) -> Detections:
    """Decode a (1, 4 + C, N) YOLOv8/11 output into frame-pixel vehicle detections.

    ``class_agnostic`` NMS suits traffic: a car and a truck box on one vehicle are one vehicle.
    """
    pred = np.asarray(output, np.float32)
    if pred.ndim == 3:
        pred = pred[0]
    if pred.ndim != 2 or pred.shape[0] < 5:
        raise ModelError(f"unexpected YOLO output shape {output.shape}; expected (1, 4+C, N)")
    if pred.shape[0] - 4 != len(cmap) and pred.shape[1] - 4 == len(cmap):
        pred = pred.T  # some exports are (1, N, 4+C)
    if pred.shape[0] - 4 != len(cmap):
        raise ModelError(f"YOLO output has {pred.shape[0] - 4} classes but the model names {len(cmap)}")
    cls_scores = pred[4:]
    vehicle_rows = np.nonzero(cmap >= 0)[0]
    if vehicle_rows.size == 0:
        return Detections.empty()
    sub = cls_scores[vehicle_rows]
    best = sub.argmax(axis=0)
    score = sub[best, np.arange(sub.shape[1])]
    keep = score >= conf
    if not keep.any():
        return Detections.empty()
    cx, cy, w, h = pred[0, keep], pred[1, keep], pred[2, keep], pred[3, keep]
    xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    score = score[keep]
    cls = cmap[vehicle_rows[best[keep]]]
    if class_agnostic:
        idx = nms(xyxy, score, iou)
    else:
        offset = cls[:, None].astype(np.float32) * 10_000.0  # batched NMS by offsetting classes
        idx = nms(xyxy + offset, score, iou)
    xyxy = box.to_frame(xyxy[idx])
    fw, fh = frame_size
    xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clip(0, fw)
    xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clip(0, fh)
    return Detections(xyxy.astype(np.float32), score[idx].astype(np.float32), cls[idx].astype(np.int32))


def session_options(threads: int | None = None):  # -> onnxruntime.SessionOptions
    """CPU session options for a small edge box: all graph optimisations, bounded threads."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads or max(1, min(4, os.cpu_count() or 1))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # idle pool threads sleep instead of spinning: spinning buys a little latency and costs about
    # as much CPU again as the inference itself (17 vs 9 ms CPU per 320x192 frame), CPU that other
    # cameras on the box need
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return so


def _names_from_metadata(meta: dict[str, str], n_classes: int) -> list[str]:
    raw = meta.get("names")
    if raw:
        try:
            parsed = ast.literal_eval(raw)  # ultralytics writes "{0: 'person', ...}"
            if isinstance(parsed, dict):
                return [str(parsed[k]) for k in sorted(parsed)]
            if isinstance(parsed, (list, tuple)):
                return [str(x) for x in parsed]
        except (ValueError, SyntaxError):
            pass
    if n_classes == len(COCO80):
        return list(COCO80)
    raise ModelError(f"model has {n_classes} classes and no 'names' metadata; cannot map them to vehicles")


class YoloOnnx:
    """A YOLO ONNX model: ``detect(frame_bgr) -> Detections`` in frame pixels."""

    def __init__(self, path: str | os.PathLike[str], *, conf: float = 0.35, iou: float = 0.5,
                 threads: int | None = None, names: list[str] | None = None):
        p = Path(path)
        if p.suffix == ".pt":
            p = _export_pt(p)
        if not p.is_file():
            raise ModelError(f"{p}: model file not found")
        if p.suffix != ".onnx":
            raise ModelError(f"{p}: not an ONNX model (expected a .onnx file exported from YOLO)")
        import onnxruntime as ort

        try:
            self.session = ort.InferenceSession(str(p), sess_options=session_options(threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelError(f"{p}: onnxruntime cannot load it: {e}") from None
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        shape = inp.shape  # [1, 3, H, W], H/W may be symbolic
        h = shape[2] if isinstance(shape[2], int) else 640
        w = shape[3] if isinstance(shape[3], int) else 640
        self.input_size = (int(w), int(h))
        self.input_dtype = np.float16 if "float16" in inp.type else np.float32
        out_shape = self.session.get_outputs()[0].shape
        n_classes = (out_shape[1] - 4) if isinstance(out_shape[1], int) else 80
        meta = self.session.get_modelmeta().custom_metadata_map
        self.names = list(names) if names else _names_from_metadata(meta, n_classes)
        self.cmap = class_map(self.names)
        if not (self.cmap >= 0).any():
            shown = ", ".join(self.names[:6]) + (", ..." if len(self.names) > 6 else "")
            raise ModelError(f"{p}: none of its classes ({shown}) is a vehicle class "
                             f"({', '.join(VEHICLE_CLASSES)} or an alias); pass names= if the metadata is wrong")
        self.conf, self.iou = conf, iou
        self.path = p

    def preprocess(self, frame: np.ndarray) -> tuple[np.ndarray, Letterbox]:
        img, box = letterbox(frame, self.input_size)
        blob = cv2.dnn.blobFromImage(img, 1 / 255.0, swapRB=True)  # NCHW RGB float32
        return blob.astype(self.input_dtype, copy=False), box

    def detect(self, frame: np.ndarray) -> Detections:
        blob, box = self.preprocess(frame)
        out = self.session.run(None, {self.input_name: blob})[0]
        return decode_v8(out, conf=self.conf, iou=self.iou, cmap=self.cmap, box=box,
                         frame_size=(frame.shape[1], frame.shape[0]))


def _export_pt(p: Path) -> Path:
    """A .pt works only where ultralytics is installed (train extra): export it to ONNX once."""
    if not p.is_file():
        raise ModelError(f"{p}: model file not found")
    onnx_path = p.with_suffix(".onnx")
    if onnx_path.is_file() and onnx_path.stat().st_mtime >= p.stat().st_mtime:
        return onnx_path
    try:
        from ultralytics import YOLO  # type: ignore[import-not-found]
    except ImportError:
        raise ModelError(
            f"{p}: a PyTorch .pt model, and ultralytics is not installed (the edge runs ONNX only). "
            f"Export it where the train extra is installed: `yolo export model={p.name} format=onnx` "
            f"(INT8: add int8=True), then set the detector's model to the .onnx file") from None
    try:
        return Path(YOLO(str(p)).export(format="onnx"))
    except Exception as e:
        raise ModelError(f"{p}: ultralytics could not export it to ONNX: {e}") from None


def load_detector(path: str | os.PathLike[str], **kwargs: object) -> YoloOnnx:
    """Open a YOLO model for the edge (ONNX); raises ModelError naming the file otherwise."""
    return YoloOnnx(path, **kwargs)  # type: ignore[arg-type]


_SHARED: dict[tuple[str, float, float, int], YoloOnnx] = {}
_SHARED_LOCK = threading.Lock()


def shared_detector(path: str | os.PathLike[str], *, conf: float = 0.35, iou: float = 0.5,
                    threads: int = 1) -> YoloOnnx:
    """One detector (one onnxruntime session, one set of weights in memory) per model file and
    thresholds, for every camera of the process: ``detect`` holds no state of its own and
    onnxruntime runs a session from several threads at once. One intra-op thread by default:
    each camera's thread runs its own inference while the decode threads use the other cores
    (one camera at 1280x720 on 2 cores: 75 frames/s and 13.4 ms CPU a frame, against 71 and
    14.6 with two intra-op threads)."""
    key = (str(Path(path).resolve()), float(conf), float(iou), int(threads))
    with _SHARED_LOCK:
        if key not in _SHARED:
            _SHARED[key] = YoloOnnx(path, conf=conf, iou=iou, threads=threads)
        return _SHARED[key]
