"""FP32 vs pruned vs INT8 detectors on the synthetic test split, against the issue's targets.

    python bench/models_detectors.py                     # vehicle and plate, from training-runs/
    python bench/models_detectors.py --kinds vehicle --runs 100 --threads 2
    python bench/models_detectors.py --cards             # also rewrite models/KIND.md, .metrics.json, .png

Needs only onnxruntime + OpenCV (runs in the services' venv). Accuracy: mAP50, mAP50-95, P, R
(stopline.training.metrics); latency: batch 1, ``--threads`` onnxruntime threads, the variants
taking turns run by run (fair on a shared machine); size on disk. Appends a dated section to
bench/results/models.md and prints it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

from stopline.training.card import breakdown_text
from stopline.training.dataset import class_names, data_yaml
from stopline.training.evaluate import evaluate_variants, split_images

REPO = Path(__file__).resolve().parents[1]
TARGET_MAP = {"vehicle": 0.95, "plate": 0.90}


def variants(runs_dir: Path, models_dir: Path, kind: str) -> dict[str, Path]:
    out = {"fp32": runs_dir / f"{kind}-fp32.onnx", "pruned": runs_dir / f"{kind}-pruned-fp32.onnx",
           "pruned-int8": runs_dir / f"{kind}-pruned-int8.onnx", "int8": models_dir / f"{kind}-int8.onnx"}
    return {k: v for k, v in out.items() if v.is_file()}


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO / "datasets" / "sim")
    ap.add_argument("--runs-dir", type=Path, default=REPO / "training-runs")
    ap.add_argument("--models-dir", type=Path, default=REPO / "models")
    ap.add_argument("--kinds", nargs="+", default=["vehicle", "plate"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=60)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "models.md")
    ap.add_argument("--json", type=Path, help="also write the rows as JSON")
    ap.add_argument("--cards", action="store_true",
                    help="also (re)write the model cards, metrics.json and plots in --models-dir")
    args = ap.parse_args()

    lines = [f"## Detectors, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"`python bench/models_detectors.py --threads {args.threads} --runs {args.runs}` on "
             f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other work: latency is the median "
             "of interleaved runs), onnxruntime CPU, batch 1, synthetic test split.", ""]
    all_rows = {}
    for kind in args.kinds:
        yaml_path = data_yaml(args.data, kind)
        images = split_images(yaml_path.parent, "test")
        vs = variants(args.runs_dir, args.models_dir, kind)
        if "int8" not in vs:
            print(f"{kind}: no INT8 model in {args.models_dir}; skipped", file=sys.stderr)
            continue
        rows = [r.as_dict() for r in evaluate_variants(vs, images, class_names(yaml_path), threads=args.threads,
                                                        runs=args.runs)]
        all_rows[kind] = rows
        if args.cards:
            from stopline.training.card import write_detector_card

            write_detector_card(kind, rows, args.models_dir, data_root=args.data, runs_dir=args.runs_dir)
        lines += [f"### {kind} ({len(images)} test images)", "",
                  "| variant | mAP50 | mAP50-95 | P | R | latency ms | size MB |", "| --- | --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['variant']} | {r['mAP50']:.3f} | {r['mAP50-95']:.3f} | {r['precision']:.3f} | "
                  f"{r['recall']:.3f} | {r['latency_ms']:.1f} | {r['size_mb']:.2f} |" for r in rows]
        by = {r["variant"]: r for r in rows}
        q = by["int8"]
        lines.append("")
        lines.append(f"- INT8 mAP50 {q['mAP50']:.3f} >= {TARGET_MAP[kind]}: {verdict(q['mAP50'] >= TARGET_MAP[kind])}")
        if "fp32" in by:
            f = by["fp32"]
            lat, size, drop = q["latency_ms"] / f["latency_ms"], q["size_bytes"] / f["size_bytes"], 100 * (f["mAP50"] - q["mAP50"])
            lines.append(f"- INT8/FP32 latency {lat:.2f}x (target <= 0.5x): {verdict(lat <= 0.5)}")
            lines.append(f"- INT8/FP32 size {size:.2f}x (target <= 0.3x): {verdict(size <= 0.3)}")
            lines.append(f"- mAP50 drop {drop:+.2f} points (target <= 1.0): {verdict(drop <= 1.0)}")
        lines.append(f"- shipped size {q['size_mb']:.2f} MB (target < 5 MB): {verdict(q['size_bytes'] < 5e6)}")
        lines.append(f"- INT8 {breakdown_text(q)}")
        lines.append("")
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as f:
        f.write("\n" + text)
    if args.json:
        args.json.write_text(json.dumps(all_rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
