"""Detectors on real held-out photos beside the synthetic test split.

    python bench/models_real.py                                   # the shipped INT8 models
    python bench/models_real.py --vehicle training-runs/real/vehicle-int8.onnx --plate ...
    python bench/models_real.py --write                           # append to bench/results/models.md
    python bench/models_real.py --write --cards                   # and the "real data" part of models/KIND.md

Needs the datasets of `stopline models dataset` (synthetic, datasets/sim) and
`stopline models real-data` (datasets/real: built from ../shared/data; the plate photos held out
by `stopline.training.real_data.plate_split` are never trained or tuned on). Vehicles are scored
on the real test split (212 images) with trucks and buses counted as "car" (the real labels have
car and motorbike only), over all boxes and over boxes of at least 16x16 px (COCO's rule: smaller
truth and unmatched smaller predictions are ignored). Plates: the real held-out photos per region
and the synthetic plate-crop test split.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from stopline.training.card import update_card_section
from stopline.training.evaluate import accuracy, split_images
from stopline.training.real_data import VEHICLE_NAMES

REPO = Path(__file__).resolve().parents[1]
REAL_MERGE = {1: 0, 2: 0}  # truck, bus -> car
MIN_16PX = {"boxes >= 16 px": (16.0 * 16.0, float("inf"))}


def vehicle_figures(model: Path, real: Path, sim: Path, threads: int) -> dict[str, object]:
    r = accuracy(model, split_images(real, "test"), VEHICLE_NAMES, threads=threads, merge=REAL_MERGE,
                 sizes=MIN_16PX)
    s = accuracy(model, split_images(sim, "test"), VEHICLE_NAMES, threads=threads)
    return {"real_test_map50": round(r.map50, 3),
            "real_test_map50_16px": round(r.by_size["boxes >= 16 px"].map50, 3),
            "real_test_per_class": {k: round(v, 3) for k, v in r.per_class_ap50.items()},
            "real_test_images": r.n_images, "real_test_boxes": r.n_instances,
            "sim_test_map50": round(s.map50, 3), "sim_test_images": s.n_images}


def plate_figures(model: Path, real: Path, sim: Path, threads: int) -> dict[str, object]:
    out: dict[str, object] = {}
    images = split_images(real, "test")
    regions = sorted({p.name.split("_", 1)[0] for p in images})
    for region in regions + ["all"]:
        pick = [p for p in images if region == "all" or p.name.startswith(region + "_")]
        m = accuracy(model, pick, ["plate"], threads=threads)
        out[f"real_{region}"] = {"map50": round(m.map50, 3), "recall": round(m.recall, 3),
                                 "precision": round(m.precision, 3), "images": m.n_images}
    s = accuracy(model, split_images(sim, "test"), ["plate"], threads=threads)
    out["sim_test_map50"] = round(s.map50, 3)
    return out


def write_cards(figures: dict[str, dict[str, object]], models: Path) -> None:
    v, p = figures["vehicle"], figures["plate"]
    update_card_section(models / "vehicle.md", "real", f"""## Real frames (held out)

| split | images | mAP50 | mAP50, boxes >= 16 px | per class AP50 |
| --- | --- | --- | --- | --- |
| intersection-cctv-vn test (real) | {v['real_test_images']} | {v['real_test_map50']:.3f} | {v['real_test_map50_16px']:.3f} | {', '.join(f'{k} {a:.2f}' for k, a in v['real_test_per_class'].items())} |
| synthetic test | {v['sim_test_images']} | {v['sim_test_map50']:.3f} | | |

Trucks and buses count as `car` on the real split (its labels). `python bench/models_real.py --cards`.""")
    rows = "\n".join(f"| {k.removeprefix('real_')} (real, held out) | {r['images']} | {r['map50']:.3f} | "
                     f"{r['precision']:.2f} | {r['recall']:.2f} |"
                     for k, r in p.items() if k.startswith("real_"))
    update_card_section(models / "plate.md", "real", f"""## Real photos (held out)

| split | images | mAP50 | P | R |
| --- | --- | --- | --- | --- |
{rows}
| synthetic plate-crop test | | {p['sim_test_map50']:.3f} | | |

Whole photos (a car and its surroundings), letterboxed as the reader does. `python bench/models_real.py --cards`.""")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vehicle", type=Path, default=REPO / "models" / "vehicle-int8.onnx")
    ap.add_argument("--plate", type=Path, default=REPO / "models" / "plate-int8.onnx")
    ap.add_argument("--datasets", type=Path, default=REPO / "datasets")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="append the figures to bench/results/models.md")
    ap.add_argument("--label", default="", help="what the run measures (written with --write)")
    ap.add_argument("--cards", action="store_true", help="write the figures into models/vehicle.md and plate.md")
    args = ap.parse_args(argv)
    d = args.datasets
    figures = {
        "vehicle": {"model": str(args.vehicle), **vehicle_figures(args.vehicle, d / "real" / "vehicles",
                                                                   d / "sim" / "vehicles", args.threads)},
        "plate": {"model": str(args.plate), **plate_figures(args.plate, d / "real" / "plates",
                                                              d / "sim" / "plate-crops", args.threads)},
    }
    text = json.dumps(figures, indent=2)
    print(text)
    if args.cards:
        write_cards(figures, REPO / "models")
    if args.write:
        cmd = "python bench/models_real.py " + " ".join(sys.argv[1:] if argv is None else argv)
        with (REPO / "bench" / "results" / "models.md").open("a") as f:
            f.write(f"\n## Real held-out data ({dt.date.today().isoformat()}) {args.label}\n\n"
                    f"    {cmd.strip()}\n\n```json\n{text}\n```\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
