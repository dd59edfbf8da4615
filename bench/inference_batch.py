"""Does batching the cameras' frames into one inference pay? CPU time per image of a vehicle
model run with batches of 1, 2 and 4 (one intra-op thread, the service's session options).

The shipped model has a fixed batch of 1; a copy with a dynamic batch is exported and quantised
the way the shipped one was (needs the ``train`` extra for the export):

    yolo export model=training-runs/real3/vehicle.pt format=onnx imgsz=192,320 dynamic=True opset=17
    python -c "from pathlib import Path; from stopline.training.quantize import list_images, \
        quantize_detector as q; q(Path('training-runs/real3/vehicle.onnx'), Path('/tmp/int8-dyn.onnx'), \
        list_images(Path('datasets/sim/vehicles/images/train')) \
        + list_images(Path('datasets/real/vehicles/images/train')), n_frames=100, size=(320, 192))"
    python bench/inference_batch.py /tmp/int8-dyn.onnx training-runs/real3/vehicle.onnx
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402

from stopline.shared.vision.yolo import session_options  # noqa: E402


def cpu_ms_per_image(session: ort.InferenceSession, batch: int, height: int, width: int,
                     seconds: float) -> float:
    name = session.get_inputs()[0].name
    x = np.random.default_rng(0).random((batch, 3, height, width), dtype=np.float32)
    for _ in range(5):
        session.run(None, {name: x})
    n, c0 = 0, time.process_time()
    while time.process_time() - c0 < seconds:
        session.run(None, {name: x})
        n += 1
    return (time.process_time() - c0) / (n * batch) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", type=Path, help="ONNX models with a dynamic batch dimension")
    ap.add_argument("--size", default="320x192", help="input WIDTHxHEIGHT")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--seconds", type=float, default=6.0, help="CPU seconds per measurement")
    args = ap.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    for path in args.models:
        session = ort.InferenceSession(str(path), sess_options=session_options(1),
                                       providers=["CPUExecutionProvider"])
        base = None
        for b in args.batches:
            ms = cpu_ms_per_image(session, b, height, width, args.seconds)
            base = base or ms
            print(f"{path.name}: batch {b}: {ms:.2f} ms CPU per image ({ms / base:.2f}x batch {args.batches[0]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
