"""Evidence clip size and encoding time at 1280x720: a real street (shared/data) for each codec
(H.264 at each ``--presets``; CPU seconds, the figure that bounds cameras per box).

    .venv/bin/python bench/evidence_clip.py [--video PATH] [--seconds 6] [--fps 10] [--presets ultrafast veryfast]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2

from stopline.services.vehicle_detector.clip import encode_clip
from stopline.services.vehicle_detector.evidence import BufferedFrame
from stopline.shared.config import EvidenceConfig

DEFAULT = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "redlight_demo1.mp4"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=DEFAULT)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--presets", nargs="+", default=["ultrafast", "superfast", "veryfast"])
    args = ap.parse_args()
    cap = cv2.VideoCapture(str(args.video))
    if not cap.isOpened():
        raise SystemExit(f"{args.video}: cannot open")
    step = max(1, round((cap.get(cv2.CAP_PROP_FPS) or 25) / args.fps))
    frames, i = [], 0
    while len(frames) < int(args.seconds * args.fps):
        ok, img = cap.read()
        if not ok:
            break
        if i % step == 0:
            t = len(frames) / args.fps
            frames.append(BufferedFrame(i, t, 1.7e9 + t, cv2.resize(img, (1280, 720)), {}))
        i += 1
    box = (500.0, 300.0, 700.0, 450.0)
    print(f"{args.video.name}: {len(frames)} frames at {args.fps:g} fps, 1280x720")
    configs = [(f"h264 {p}", EvidenceConfig(clip_fps=args.fps, clip_preset=p)) for p in args.presets]
    for name, config in configs + [("vp8", EvidenceConfig(clip_codec="vp8", clip_fps=args.fps))]:
        start, cpu = time.perf_counter(), time.process_time()
        data = encode_clip(frames, [box] * len(frames), config)
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
        seconds = len(frames) / args.fps
        print(f"  {name}: {len(data) / 1e6:.2f} MB ({len(data) / 1e6 / seconds:.3f} MB/s), "
              f"encoded in {took:.2f} s, {cpu:.2f} s CPU ({1000 * cpu / len(frames):.0f} ms/frame)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
