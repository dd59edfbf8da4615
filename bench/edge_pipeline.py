"""Throughput and peak memory of the full edge path: decode (own thread) + detect + track +
signal + rules + evidence, as the vehicle detector runs it, on one video.

    python bench/edge_pipeline.py VIDEO --camera camera.yaml [--model yolo.int8.onnx] [--frames 750]

Use a 1280x720 clip for the issue's target (>= 25 frames/s on the 2-core box): `stopline sim
--duration 30 --out /tmp/s` writes one with its camera.yaml. Prints frames/s for decode alone
and for the whole path, a per-stage breakdown (ms/frame) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from collections import defaultdict
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("video")
    ap.add_argument("--camera", required=True)
    ap.add_argument("--model", help="YOLO .onnx; default: motion backend")
    ap.add_argument("--frames", type=int, default=750)
    ap.add_argument("--threads", type=int, default=None, help="onnxruntime intra-op threads")
    ap.add_argument("--no-safety-net", action="store_true", help="onnx: without the motion safety net")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    from stopline.services.vehicle_detector.pipeline import DetectorPipeline
    from stopline.shared.config import VehicleDetectorConfig, load_camera
    from stopline.shared.vision.sources import ThreadedSource, VideoSource

    camera = load_camera(args.camera)
    # decode alone
    src = VideoSource(args.video)
    t0 = time.perf_counter()
    n_dec = 0
    size = None
    for f in src:
        size = f.image.shape[1], f.image.shape[0]
        n_dec += 1
        if n_dec >= args.frames:
            break
    src.close()
    decode_fps = n_dec / (time.perf_counter() - t0)

    cfg = VehicleDetectorConfig(backend="onnx" if args.model else "motion", model=args.model,
                                safety_net=not args.no_safety_net)
    pipe = DetectorPipeline(camera, cfg, "bench", clock="video")
    if args.model and args.threads:
        from stopline.shared.vision.yolo import YoloOnnx

        pipe._onnx = YoloOnnx(args.model, threads=args.threads, conf=cfg.confidence)
    stage = defaultdict(float)

    def timed(name, fn):
        def wrapper(*a, **k):
            s = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                stage[name] += time.perf_counter() - s
        return wrapper

    source = ThreadedSource(VideoSource(args.video), drop=False)
    n = 0
    t0 = time.perf_counter()
    c0 = time.process_time()
    for f in source:
        if n == 0:  # wrap the stages once the pipeline has built them
            pipe.process(f.image, f.index, f.timestamp, f.video_time_s)
            pipe.detector.detect = timed("detect", pipe.detector.detect)
            pipe.tracker.update = timed("track", pipe.tracker.update)
            pipe.signal.update = timed("signal", pipe.signal.update)
            pipe.rule.update = timed("rules", pipe.rule.update)
            pipe.encoder.encode = timed("evidence", pipe.encoder.encode)
            if pipe._net is not None:  # the motion safety net (MOG2 + blob following)
                pipe._net.update = timed("safety_net", pipe._net.update)
            if pipe._gate is not None:
                pipe._gate.moving = timed("gate", pipe._gate.moving)
            t0 = time.perf_counter()
            c0 = time.process_time()
        else:
            pipe.process(f.image, f.index, f.timestamp, f.video_time_s)
        n += 1
        if n >= args.frames:
            break
    pipe.flush()
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    source.close()
    measured = n - 1
    fps = measured / wall
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "video": args.video, "size": size, "backend": cfg.backend, "model": args.model,
        "frames": measured, "decode_fps": round(decode_fps, 1), "pipeline_fps": round(fps, 1),
        "cpu_ms_per_frame": round(1000 * cpu / measured, 1), "loadavg_1min": round(os.getloadavg()[0], 1),
        "ms_per_frame": {k: round(1000 * v / measured, 2) for k, v in stage.items()},
        "violations": pipe.stats["violations"], "inferred": pipe.stats["inferred"],
        "motion_boxes": pipe.stats.get("motion_boxes", 0),
        "skipped_static": pipe.stats["skipped_static"], "peak_rss_mb": round(rss_mb, 1),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
