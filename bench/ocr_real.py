"""Recognisers on tight real plate crops that no tuning saw (the held-out `test` photos of
`stopline.training.real_data.plate_split`), per region.

    python bench/ocr_real.py                                  # shipped INT8 recogniser vs rapidocr
    python bench/ocr_real.py --model fine=training-runs/ocr/recognizer-int8.onnx --write

Crops (``--crops``): ``plate``, the photos' plate corners rectified to a flat plate where the
labels give corners (caltech-us), else the labelled box; ``line``, what the plate reader gives its
recogniser for that plate (the text line found inside it, at the normal and the wide margin:
``stopline.training.ocr_finetune.line_crops``). Exact match over A-Z0-9, the recogniser alone.
With --split val|train the same on the other splits (the fine-tuning chose its checkpoint on val).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from stopline.models import recognizer_model
from stopline.shared.plates.onnx_recognizer import EasyOcrOnnxRecognizer
from stopline.training.ocr import normalise
from stopline.training.ocr_finetune import line_crops, real_crops

REPO = Path(__file__).resolve().parents[1]
REGIONS = ["openalpr-eu", "openalpr-br", "caltech-us"]


def rapidocr_reader():
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR()

    def read(img) -> str:
        result, _ = engine(img, use_det=False, use_cls=False, use_rec=True)
        return "".join(r[0] for r in result or [])
    return read


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--plates", type=Path, default=REPO.parent / "shared" / "data" / "plates")
    ap.add_argument("--model", action="append", default=[], metavar="NAME=FILE.onnx")
    ap.add_argument("--split", default="test", choices=["test", "val", "train"])
    ap.add_argument("--crops", default="plate,line", help="plate, line or both (comma-separated)")
    ap.add_argument("--no-rapidocr", action="store_true")
    ap.add_argument("--write", action="store_true", help="append to bench/results/plates_real.md")
    args = ap.parse_args(argv)
    readers = {"shipped easyocr INT8": (lambda rec: lambda img: rec.read([img])[0][0])(
        EasyOcrOnnxRecognizer(recognizer_model()))}
    for spec in args.model:
        name, path = spec.split("=", 1)
        readers[name] = (lambda rec: lambda img: rec.read([img])[0][0])(EasyOcrOnnxRecognizer(Path(path)))
    if not args.no_rapidocr:
        readers["rapidocr (PP-OCRv4 rec)"] = rapidocr_reader()
    kinds = {"plate": real_crops, "line": line_crops}
    table: dict[str, dict[str, object]] = {}
    for kind in args.crops.split(","):
        if kind not in kinds:
            ap.error(f"--crops: {kind!r} is not one of {', '.join(kinds)}")
        for region in REGIONS:
            crops = kinds[kind](args.plates, [region], args.split)
            row: dict[str, object] = {"crops": len(crops)}
            for name, read in readers.items():
                row[name] = round(sum(normalise(read(c.image)) == c.text for c in crops) / max(1, len(crops)), 3)
            table[region if kind == "plate" else f"{region} ({kind})"] = row
    text = json.dumps(table, indent=2)
    print(text)
    if args.write:
        cmd = "python bench/ocr_real.py " + " ".join(sys.argv[1:] if argv is None else argv)
        with (REPO / "bench" / "results" / "plates_real.md").open("a") as f:
            f.write(f"\n## Recognisers on tight real crops, {args.split} split ({dt.date.today().isoformat()})\n\n"
                    f"    {cmd.strip()}\n\nExact match per region:\n\n```json\n{text}\n```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
