"""Violation recall / precision / detection delay of the edge detector on synthetic scenes.

    python bench/edge_sim.py --generate --day 1 2 3 4 5 --night 6 7 8 9 10 --duration 60 --work /tmp/simbench
    python bench/edge_sim.py --scenes /tmp/simbench/*      # re-score existing scenes

Each scene is ``stopline sim`` output (video.mp4, truth.json, camera.yaml); the detector runs as
``stopline detect`` (default: the shipped INT8 YOLO gated by motion; ``--backend motion`` for
background subtraction only; ``--model`` for another model), then ``stopline eval``'s scorer.
Targets (issue 5): recall >= 0.98, precision >= 0.99, detection delay p95 <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def generate(work: Path, seeds: list[int], night: bool, duration: float) -> list[Path]:
    out = []
    for s in seeds:
        d = work / f"{'night' if night else 'day'}-{s}"
        if not (d / "truth.json").is_file():
            cmd = [sys.executable, "-m", "stopline", "sim", "--seed", str(s), "--duration", str(duration),
                   "--out", str(d)] + (["--night"] if night else [])
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        out.append(d)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenes", nargs="*", type=Path, default=[])
    ap.add_argument("--generate", action="store_true")
    ap.add_argument("--day", nargs="*", type=int, default=[])
    ap.add_argument("--night", nargs="*", type=int, default=[])
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--work", type=Path, default=Path("/tmp/stopline-simbench"))
    ap.add_argument("--backend", choices=["onnx", "motion"], default="onnx")
    ap.add_argument("--model", help="YOLO .onnx (default: the shipped INT8 vehicle model)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()

    from stopline.cli import main as cli
    from stopline.shared.records import read_records
    from stopline.sim.evaluate import score
    from stopline.sim.truth import load_truth

    scenes = list(args.scenes)
    if args.generate:
        scenes += generate(args.work, args.day, False, args.duration)
        scenes += generate(args.work, args.night, True, args.duration)
    if not scenes:
        ap.error("no scenes: pass --scenes DIR... or --generate with --day/--night seeds")
    rows, delays = [], []
    tp = fp = fn = 0
    seconds = 0.0
    for d in scenes:
        out = d / "detect"
        t0 = time.perf_counter()
        argv = ["detect", str(d / "video.mp4"), "--camera", str(d / "camera.yaml"), "--out", str(out), "--no-progress"]
        argv += ["--backend", args.backend] + (["--model", args.model] if args.model else [])
        if cli(argv) != 0:
            raise SystemExit(f"{d}: detect failed")
        elapsed = time.perf_counter() - t0
        truth = load_truth(d / "truth.json")
        rep = score(truth, list(read_records(out / "violations.jsonl")))
        summary = json.loads((out / "summary.json").read_text())
        seconds += summary["frames"] / truth.fps
        tp, fp, fn = tp + rep.true_positives, fp + rep.false_positives, fn + rep.false_negatives
        delays += [m.delay_s for m in rep.matches]
        rows.append({"scene": d.name, "lighting": truth.lighting, "true": rep.true_violations,
                     "found": rep.found_violations, "tp": rep.true_positives, "fp": rep.false_positives,
                     "fn": rep.false_negatives, "missed": rep.missed, "fps": summary["fps"],
                     "elapsed_s": round(elapsed, 1)})
        print(f"{d.name:12s} {truth.lighting:5s} true {rep.true_violations:2d} found {rep.found_violations:2d} "
              f"TP {rep.true_positives} FP {rep.false_positives} FN {rep.false_negatives} "
              f"({summary['fps']} frames/s)", flush=True)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    d = np.array(delays)
    total = {"backend": args.backend, "model": args.model, "scenes": len(scenes), "video_minutes": round(seconds / 60, 2), "tp": tp, "fp": fp, "fn": fn,
             "precision": round(precision, 4), "recall": round(recall, 4),
             "delay_p50_s": round(float(np.percentile(d, 50)), 3) if len(d) else None,
             "delay_p95_s": round(float(np.percentile(d, 95)), 3) if len(d) else None,
             "delay_max_s": round(float(d.max()), 3) if len(d) else None}
    print(json.dumps(total))
    if args.json:
        args.json.write_text(json.dumps({"total": total, "scenes": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
