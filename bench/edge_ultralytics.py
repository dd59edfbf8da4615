"""Edge path vs ultralytics' own ``model.track()`` loop, same weights, same video.

Run the two sides in their own environments, then compare:

    # 1. ultralytics (train extra: torch + ultralytics), FP32 PyTorch, ByteTrack, CPU
    .venv-train/bin/python bench/edge_ultralytics.py ultra yolo.pt VIDEO --frames 300 --json /tmp/ultra.json
    # 2. the edge runtime (onnxruntime), on the ONNX export of the same .pt (FP32 and/or INT8)
    python bench/edge_ultralytics.py edge yolo.int8.onnx VIDEO --frames 300 --json /tmp/edge.json
    # 3. frames/s ratio and detection agreement (IoU >= 0.5, same class) per frame
    python bench/edge_ultralytics.py compare /tmp/ultra.json /tmp/edge.json

Both sides report wall-clock frames/s and CPU seconds per frame (a fairer figure on a shared
machine), steady state: from the first frame's result to the last (start-up excluded).

Both sides in one command, on the same ONNX file (ultralytics runs it through its own
onnxruntime backend, stock settings: ``YOLO(onnx).track(stream=True, tracker="bytetrack.yaml")``;
the edge side is the whole ``stopline detect`` path: decode thread, motion gate, detector, safety
net, ByteTrack, signal, rules, evidence):

    python bench/edge_ultralytics.py both models/vehicle-int8.onnx VIDEO --camera camera.yaml \
        --ultra-python .venv-train/bin/python --json /tmp/both.json
    # per side: ultra-stream (ultralytics), pipeline [--gate-open] (the edge path)
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

NAMES = {2: "car", 3: "motorcycle", 5: "bus", 7: "truck"}  # COCO ids of the vehicle classes


def _frames(video: str, n: int):
    import cv2

    cap = cv2.VideoCapture(video)
    for _ in range(n):
        ok, f = cap.read()
        if not ok:
            return
        yield f


def ultra(args) -> dict:
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(args.threads)
    model = YOLO(args.model)
    # vehicle classes by name: COCO weights keep car/motorcycle/bus/truck, stopline's keep all
    names = {int(k): str(v) for k, v in model.names.items()}
    classes = [k for k, v in names.items() if v in set(NAMES.values())]
    opts = dict(persist=True, classes=classes, conf=args.conf, imgsz=args.imgsz, device="cpu", verbose=False,
                tracker="bytetrack.yaml")
    dets = []
    frames = list(_frames(args.video, args.frames))
    model.track(frames[0], **opts)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for f in frames:
        r = model.track(f, **opts)[0]
        b = r.boxes
        dets.append([[*map(float, xy), names[int(c)], float(s)]
                     for xy, c, s in zip(b.xyxy.tolist(), b.cls.tolist(), b.conf.tolist())])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"side": "ultralytics model.track (FP32 PyTorch)", "frames": len(frames), "fps": len(frames) / wall,
            "cpu_s_per_frame": cpu / len(frames), "loadavg": os.getloadavg(), "detections": dets}


def edge(args) -> dict:
    from stopline.shared.vision.tracking import Tracker
    from stopline.shared.vision.yolo import COCO80, YoloOnnx

    model = YoloOnnx(args.model, conf=args.conf, threads=args.threads,
                     names=list(COCO80) if args.coco_names else None)
    tracker = Tracker(25.0)
    frames = list(_frames(args.video, args.frames))
    model.detect(frames[0])
    dets = []
    t0, c0 = time.perf_counter(), time.process_time()
    for f in frames:
        d = model.detect(f)
        tracker.update(d)
        dets.append([[*map(float, d.xyxy[i]), d.class_name(i), float(d.scores[i])] for i in range(len(d))])
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"side": f"stopline edge runtime ({Path(args.model).name})", "frames": len(frames),
            "fps": len(frames) / wall, "cpu_s_per_frame": cpu / len(frames), "loadavg": os.getloadavg(),
            "detections": dets}


def ultra_stream(args) -> dict:
    """Stock ultralytics tracking on the video file (it decodes, letterboxes and infers itself)."""
    import torch
    from ultralytics import YOLO

    torch.set_num_threads(args.threads)
    model = YOLO(args.model, task="detect")
    n = 0
    t0 = c0 = 0.0
    dets = []
    for r in model.track(source=args.video, stream=True, tracker="bytetrack.yaml", device="cpu", verbose=False):
        if n == 0:  # steady state from the first result on
            t0, c0 = time.perf_counter(), time.process_time()
        else:
            b = r.boxes
            dets.append([[*map(float, xy), r.names[int(c)], float(s)]
                         for xy, c, s in zip(b.xyxy.tolist(), b.cls.tolist(), b.conf.tolist())])
        n += 1
        if n > args.frames:
            break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"side": f"ultralytics YOLO({Path(args.model).name}).track(stream=True), stock settings",
            "frames": n - 1, "fps": (n - 1) / wall, "cpu_s_per_frame": cpu / (n - 1),
            "loadavg": os.getloadavg(), "detections": dets}


def pipeline(args) -> dict:
    """The edge path as ``stopline detect`` runs it: decode thread, gate, detector, net, tracker,
    signal, rules, evidence; ``--gate-open`` infers every frame."""
    from stopline.services.vehicle_detector.pipeline import DetectorPipeline
    from stopline.shared.config import VehicleDetectorConfig, load_camera
    from stopline.shared.vision.sources import ThreadedSource, VideoSource

    pipe = DetectorPipeline(load_camera(args.camera), VehicleDetectorConfig(model=args.model), "bench",
                            clock="video")
    source = ThreadedSource(VideoSource(args.video), drop=False)
    n = 0
    t0 = c0 = 0.0
    for f in source:
        pipe.process(f.image, f.index, f.timestamp, f.video_time_s)
        if n == 0:
            if args.gate_open:
                pipe._gate = None
            t0, c0 = time.perf_counter(), time.process_time()
        n += 1
        if n > args.frames:
            break
    pipe.flush()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    source.close()
    return {"side": f"stopline detect path ({Path(args.model).name}, gate {'open' if args.gate_open else 'on'})",
            "frames": n - 1, "fps": (n - 1) / wall, "cpu_s_per_frame": cpu / (n - 1),
            "inferred": pipe.stats["inferred"], "loadavg": os.getloadavg(), "detections": []}


def both(args) -> dict:
    """ultralytics in its environment, then the edge path with the gate on and held open."""
    import subprocess
    import sys
    import tempfile

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        runs = [("ultralytics", args.ultra_python, "ultra-stream", []),
                ("edge_default", sys.executable, "pipeline", []),
                ("edge_gate_open", sys.executable, "pipeline", ["--gate-open"])]
        for name, python, cmd, extra in runs:
            j = Path(tmp) / f"{name}.json"
            argv = [python, __file__, cmd, args.model, args.video, "--frames", str(args.frames),
                    "--threads", str(args.threads), "--json", str(j)] + extra
            if cmd == "pipeline":
                argv += ["--camera", args.camera]
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                           env={**os.environ, "OMP_NUM_THREADS": str(args.threads)})
            r = json.loads(j.read_text())
            out[name] = {k: r[k] for k in ("side", "frames", "fps", "cpu_s_per_frame", "loadavg")}
    u = out["ultralytics"]
    for name in ("edge_default", "edge_gate_open"):
        out[name]["speedup_wall"] = round(out[name]["fps"] / u["fps"], 2)
        out[name]["speedup_cpu"] = round(u["cpu_s_per_frame"] / out[name]["cpu_s_per_frame"], 2)
    return out


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    u = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / u if u > 0 else 0.0


def compare(a: dict, b: dict, min_iou: float = 0.5) -> dict:
    matched = total_a = total_b = 0
    for da, db in zip(a["detections"], b["detections"]):
        total_a, total_b = total_a + len(da), total_b + len(db)
        used = set()
        for x in da:
            best = max(((j, _iou(x, y)) for j, y in enumerate(db) if j not in used and y[4] == x[4]),
                       key=lambda p: p[1], default=(None, 0.0))
            if best[0] is not None and best[1] >= min_iou:
                used.add(best[0])
                matched += 1
    return {"speedup_wall": b["fps"] / a["fps"], "speedup_cpu": a["cpu_s_per_frame"] / b["cpu_s_per_frame"],
            "a": {k: a[k] for k in ("side", "fps", "cpu_s_per_frame", "loadavg")},
            "b": {k: b[k] for k in ("side", "fps", "cpu_s_per_frame", "loadavg")},
            "detections_a": total_a, "detections_b": total_b, "matched": matched,
            "recall_of_a": matched / total_a if total_a else None,
            "precision_vs_a": matched / total_b if total_b else None}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("ultra", "edge"):
        p = sub.add_parser(name)
        p.add_argument("model")
        p.add_argument("video")
        p.add_argument("--frames", type=int, default=300)
        p.add_argument("--conf", type=float, default=0.35)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--imgsz", type=int, default=320,
                       help="ultralytics' input size: the long side of the ONNX export's (320 for 320x192)")
        p.add_argument("--coco-names", action="store_true", help="model has no names metadata: use COCO order")
        p.add_argument("--json", type=Path, required=True)
    for name in ("ultra-stream", "pipeline", "both"):
        p = sub.add_parser(name)
        p.add_argument("model", help="the ONNX file both sides run")
        p.add_argument("video")
        p.add_argument("--frames", type=int, default=300)
        p.add_argument("--threads", type=int, default=2)
        p.add_argument("--camera", help="camera.yaml (pipeline, both)")
        p.add_argument("--gate-open", action="store_true", help="pipeline: infer every frame")
        p.add_argument("--ultra-python", default=".venv-train/bin/python", help="both: the ultralytics environment")
        p.add_argument("--json", type=Path, required=True)
    c = sub.add_parser("compare")
    c.add_argument("ultra_json", type=Path)
    c.add_argument("edge_json", type=Path)
    args = ap.parse_args()
    if args.cmd == "compare":
        print(json.dumps(compare(json.loads(args.ultra_json.read_text()), json.loads(args.edge_json.read_text())),
                         indent=1))
        return 0
    if args.cmd in ("pipeline", "both") and not args.camera:
        ap.error(f"{args.cmd}: --camera camera.yaml is required")
    result = {"ultra": ultra, "edge": edge, "ultra-stream": ultra_stream, "pipeline": pipeline,
              "both": both}[args.cmd](args)
    if args.cmd == "both":
        args.json.write_text(json.dumps(result, indent=1))
        print(json.dumps(result, indent=1))
        return 0
    args.json.write_text(json.dumps(result))
    print(json.dumps({k: v for k, v in result.items() if k != "detections"}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
