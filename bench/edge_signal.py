"""Signal-head classifier on the real labelled crops (../shared/data/signals/...).

    python bench/edge_signal.py [--data ../shared/data] [--json out.json]

Prints the confusion matrix, per-class precision and recall, red-vs-not-red accuracy and the
time per crop. The thresholds in shared/vision/signal_lamp.py were chosen on this same set, so
these are fit figures, not held-out ones.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2

from stopline.shared.vision.signal_lamp import STATES, classify_lamp

LABELS = {"red": "red", "yellow": "amber", "green": "green"}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    root = args.data / "signals" / "traffic-light-crops-training"
    if not root.is_dir():
        raise SystemExit(f"{root}: not found")
    confusion = {t: {p: 0 for p in STATES} for t in LABELS.values()}
    images = []
    for folder, label in LABELS.items():
        for f in sorted((root / folder).glob("*.jpg")):
            images.append((label, cv2.imread(str(f))))
    t0 = time.perf_counter()
    for label, img in images:
        confusion[label][classify_lamp(img).state] += 1
    per_crop_ms = 1000 * (time.perf_counter() - t0) / len(images)
    rows = {}
    for c in LABELS.values():
        tp = confusion[c][c]
        predicted = sum(confusion[t][c] for t in confusion)
        actual = sum(confusion[c].values())
        rows[c] = {"n": actual, "precision": round(tp / predicted, 4) if predicted else None,
                   "recall": round(tp / actual, 4)}
    right = sum(v for t in confusion for p, v in confusion[t].items() if (t == "red") == (p == "red"))
    red_vs_not = right / len(images)
    print("truth \\ read  " + "  ".join(f"{s:>7s}" for s in STATES))
    for t in confusion:
        print(f"{t:12s}  " + "  ".join(f"{confusion[t][s]:7d}" for s in STATES))
    print()
    print("| class | crops | precision | recall |\n| --- | --- | --- | --- |")
    for c, r in rows.items():
        print(f"| {c} | {r['n']} | {100 * r['precision']:.1f}% | {100 * r['recall']:.1f}% |")
    print(f"\nred vs not-red: {100 * red_vs_not:.2f}% of {len(images)} crops; {per_crop_ms:.3f} ms per crop")
    if args.json:
        args.json.write_text(json.dumps({"confusion": confusion, "classes": rows, "red_vs_not_red": red_vs_not,
                                         "ms_per_crop": per_crop_ms}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
