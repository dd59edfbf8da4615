"""INT8 ONNX recogniser vs easyocr's own recogniser on real plate crops (train venv: easyocr).

    . .venv-train/bin/activate && python bench/models_ocr.py [--threads 1]

Crops are cut from the ground-truth boxes of ../shared/data/plates (openalpr EU + BR); easyocr
reads them with ``Reader.recognize`` (its CPU default: torch dynamic INT8) and the A-Z0-9
allow-list; the ONNX models with stopline's runtime. Both one crop at a time, same threads.
Targets: INT8 >= 3x faster per crop, exact match within 1 point of easyocr.
Appends to bench/results/models.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from stopline.training.ocr import evaluate_ocr, real_plate_crops

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plates", type=Path, default=REPO.parent / "shared" / "data" / "plates")
    ap.add_argument("--int8", type=Path, default=REPO / "models" / "easyocr-en-int8.onnx")
    ap.add_argument("--fp32", type=Path, default=REPO / "training-runs" / "easyocr-en-fp32.onnx")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "models.md")
    args = ap.parse_args()
    crops = real_plate_crops(args.plates)
    models = {"onnx fp32": args.fp32} if args.fp32.is_file() else {}
    models["onnx int8"] = args.int8
    rows = evaluate_ocr(crops, models, threads=args.threads)
    base, q = rows[0], rows[-1]
    speed = base["ms_per_crop"] / q["ms_per_crop"]
    drop = 100 * (base["exact_match"] - q["exact_match"])
    lines = [f"## OCR recogniser, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"`python bench/models_ocr.py --threads {args.threads}`: {len(crops)} real crops, one at a time.", "",
             "| recogniser | exact match | char accuracy | ms / crop | size MB |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['variant']} | {r['exact_match']:.3f} | {r['char_accuracy']:.3f} | {r['ms_per_crop']:.1f} | "
              f"{r['size_mb']:.2f} |" for r in rows]
    lines += ["", f"- INT8 speed-up vs easyocr {speed:.2f}x (target >= 3x): {'PASS' if speed >= 3 else 'FAIL'}",
              f"- exact match change {-drop:+.2f} points (target: drop <= 1): {'PASS' if drop <= 1 else 'FAIL'}",
              f"- size {q['size_mb']:.2f} MB (target < 5 MB): {'PASS' if q['size_mb'] < 5 else 'FAIL'}", ""]
    text = "\n".join(lines) + "\n"
    print(text)
    with args.out.open("a") as f:
        f.write("\n" + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
