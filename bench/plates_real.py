"""Plate localisation + reading on the real photos of ../shared/data/plates (eu, br, caltech-us).

    python bench/plates_real.py --out bench/results/plates_real.md   # all sets, default reader
    python bench/plates_real.py --crops                  # also tight plate crops, per engine
    python bench/plates_real.py --loro                   # also leave-one-region-out calibration
    python bench/plates_real.py --localisers             # also compare localisers (found rate, IoU)
    python bench/plates_real.py --baseline               # also easyocr readtext on whole photos
    python bench/plates_real.py --fit-calibration        # refit shared/plates/calibration.json

Splits: every photo in the held-out fifth (``stopline.training.real_data.plate_split``: a hash
of region and file name, the split the shipped plate detector and recogniser were trained
without) is never used to tune anything (calibration, thresholds, formats); the tables give the figures on the tuning ("dev") part and on the held-out part.
caltech-us photos labelled ``N/A`` (unreadable plate) expect no read; a ``?`` in a label matches
any character. Single-threaded (one core), so photos/s is per core. Nothing here runs in the
product.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from stopline.shared.plates.calibration import Calibration, isotonic  # noqa: E402
from stopline.shared.plates.io import load_image  # noqa: E402
from stopline.shared.plates.localise import make_localiser  # noqa: E402
from stopline.shared.plates.reader import UNREADABLE_BELOW, PlateReader  # noqa: E402
from stopline.shared.plates.rectify import expand_quad, warp  # noqa: E402
from stopline.training.real_data import plate_split  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "plates"
# set name -> (folder, plate region a deployment would configure)
SETS = {"eu": ("openalpr-eu", "eu"), "br": ("openalpr-br", "br"), "caltech-us": ("caltech-us", "us")}
HIGH = 0.9  # "confident" reads


@dataclass
class Sample:
    set: str
    path: Path
    box: tuple[float, float, float, float]
    text: str                      # normalised label, '?' = any character, "" = no read expected
    corners: np.ndarray | None = field(default=None, repr=False)

    @property
    def held_out(self) -> bool:
        # the same photos the plate detector and the recogniser were never trained on
        return plate_split(self.path.parent.name, self.path.stem) == "test"


def label_text(plate: str) -> str:
    if plate.strip().upper() == "N/A":
        return ""
    return "".join(c for c in plate.upper() if c.isascii() and (c.isalnum() or c == "?"))


def load_set(name: str, limit: int | None = None) -> list[Sample]:
    folder = DATA / SETS[name][0]
    out = []
    for txt in sorted(folder.glob("*.txt")):
        parts = txt.read_text().strip().split("\t")
        if len(parts) < 6:
            continue
        fname, x, y, w, h, plate = parts[:6]
        x, y, w, h = map(float, (x, y, w, h))
        corners = None
        if len(parts) >= 7:
            corners = np.array([[float(v) for v in p.split(",")] for p in parts[6].split()], np.float32)
        out.append(Sample(name, folder / fname, (x, y, x + w, y + h), label_text(plate), corners))
    return out[:limit] if limit else out


def matches(pred: str, truth: str) -> bool:
    return bool(truth) and len(pred) == len(truth) and all(t in ("?", p) for p, t in zip(pred, truth))


def fold(text: str) -> str:
    return text.replace("O", "0")


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _inside(box, gt) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return gt[0] <= cx <= gt[2] and gt[1] <= cy <= gt[3]


def run_reader(reader: PlateReader, samples: list[Sample]) -> list[dict]:
    """One row per photo: what was read, where, how sure (raw and calibrated), and its CPU time."""
    rows = []
    for s in samples:
        img = load_image(s.path)
        t0, c0 = time.perf_counter(), time.process_time()
        r = reader.read(img, region=SETS[s.set][1])
        ms = (time.perf_counter() - t0) * 1000
        cpu_ms = (time.process_time() - c0) * 1000
        rows.append({
            "set": s.set, "image": s.path.name, "held_out": s.held_out, "truth": s.text,
            "pred": r.guess if r else "", "found": r is not None,
            "conf": r.confidence if r else 0.0, "raw": r.raw_confidence if r else 0.0,
            "box_ok": bool(r and r.box and (iou(r.box, s.box) >= 0.3 or _inside(r.box, s.box))),
            "iou": iou(r.box, s.box) if r and r.box else 0.0, "raw_text": r.raw_text if r else "",
            "format": r.format_name if r else None, "ms": ms, "cpu_ms": cpu_ms,
        })
    return rows


def apply_floor(rows: list[dict], cal: Calibration | None, engine: str) -> list[dict]:
    """Calibrated confidence (``cal``; None keeps the reader's own) and the outcome of each row
    under the reader's floor: a read below it is 'unreadable' (no text given)."""
    out = []
    for r in rows:
        conf = cal(engine, r["raw"]) if cal is not None and r["found"] else r["conf"]
        given = r["pred"] if r["found"] and conf >= UNREADABLE_BELOW else ""
        if not r["truth"]:
            outcome = "no read expected: none given" if not given else "no read expected: read given"
        elif not r["found"]:
            outcome = "no plate"
        elif not given:
            outcome = "unreadable"
        elif not r["box_ok"]:
            outcome = "wrong box"
        elif matches(given, r["truth"]):
            outcome = "exact"
        else:
            outcome = "right box, wrong text"
        out.append(dict(r, conf=conf, given=given, outcome=outcome, right=matches(given, r["truth"])))
    return out


def summary(rows: list[dict]) -> dict:
    plates = [r for r in rows if r["truth"]]
    n = max(1, len(plates))
    share = {k: sum(r["outcome"] == k for r in plates) / n
             for k in ("exact", "no plate", "unreadable", "wrong box", "right box, wrong text")}
    hi = [r for r in rows if r["given"] and r["conf"] >= HIGH]
    na = [r for r in rows if not r["truth"]]
    cpu = np.array([r["cpu_ms"] for r in rows]) if rows else np.zeros(1)
    return {"photos": len(rows), "plates": len(plates), **share,
            "high": len(hi), "high_right": (sum(r["right"] for r in hi) / len(hi)) if hi else float("nan"),
            # letter O and digit 0 as one (some openalpr-eu labels write O where the plate has 0)
            "high_right_o0": (sum(matches(fold(r["given"]), fold(r["truth"])) for r in hi) / len(hi)) if hi else float("nan"),
            "na": len(na), "na_ok": sum(not r["given"] for r in na),
            "cpu_ms": float(cpu.mean()), "per_s": 1000.0 / max(1e-6, float(cpu.mean()))}


def buckets(rows: list[dict]) -> list[tuple[str, int, float]]:
    edges = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.01)]
    out = []
    for lo, hi in edges:
        sel = [r for r in rows if r["found"] and r["truth"] and lo <= r["conf"] < hi]
        out.append((f"{lo:.2f}-{min(hi, 1.0):.2f}", len(sel),
                    sum(matches(r["pred"], r["truth"]) for r in sel) / len(sel) if sel else float("nan")))
    return out


def pct(v: float) -> str:
    return "-" if v != v else f"{v:.1%}"


def results_table(rows_by_set: dict[str, list[dict]]) -> list[str]:
    lines = ["| set | split | plates | exact | no plate | unreadable | wrong box | right box, wrong text "
             "| reads >= 0.9 (right; O=0) | N/A photos without a read | CPU ms/photo | photos/s/core |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, rows in rows_by_set.items():
        for split, sel in (("all", rows), ("dev", [r for r in rows if not r["held_out"]]),
                           ("held-out", [r for r in rows if r["held_out"]])):
            s = summary(sel)
            na = f"{s['na_ok']} of {s['na']}" if s["na"] else "-"
            lines.append(f"| {name} | {split} | {s['plates']} | **{pct(s['exact'])}** | {pct(s['no plate'])} "
                         f"| {pct(s['unreadable'])} | {pct(s['wrong box'])} | {pct(s['right box, wrong text'])} "
                         f"| {s['high']} ({pct(s['high_right'])}; {pct(s['high_right_o0'])}) | {na} | {s['cpu_ms']:.0f} | {s['per_s']:.1f} |")
    return lines


def fit_calibration(rows: list[dict], engine: str) -> Calibration:
    sel = [r for r in rows if r["found"] and r["truth"]]
    return Calibration({engine: isotonic([r["raw"] for r in sel], [matches(r["pred"], r["truth"]) for r in sel])})


def loro(raw_rows: dict[str, list[dict]], engine: str) -> list[str]:
    """Calibration (and so the floor) fitted on the dev photos of the other regions, scored on
    region X; beside it the same fitted on all regions' dev photos ('tuned')."""
    lines = ["| set | fitted on | exact | unreadable | reads >= 0.9 (right) | exact, held-out | reads >= 0.9 held-out (right) |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    dev = {k: [r for r in v if not r["held_out"]] for k, v in raw_rows.items()}
    tuned = fit_calibration([r for v in dev.values() for r in v], engine)
    for name, rows in raw_rows.items():
        others = [r for k, v in dev.items() if k != name for r in v]
        for label, cal in (("dev of all sets (tuned)", tuned),
                           (f"dev of {', '.join(k for k in raw_rows if k != name)} only", fit_calibration(others, engine))):
            s = summary(apply_floor(rows, cal, engine))
            h = summary(apply_floor([r for r in rows if r["held_out"]], cal, engine))
            lines.append(f"| {name} | {label} | {pct(s['exact'])} | {pct(s['unreadable'])} | {s['high']} ({pct(s['high_right'])}) "
                         f"| {pct(h['exact'])} | {h['high']} ({pct(h['high_right'])}) |")
    return lines


def tight_crop(img: np.ndarray, s: Sample) -> np.ndarray:
    """The labelled plate, rectified (caltech's corners; the box elsewhere), with a small margin."""
    quad = s.corners if s.corners is not None and np.ptp(s.corners[:, 0]) > 4 else np.array(
        [[s.box[0], s.box[1]], [s.box[2], s.box[1]], [s.box[2], s.box[3]], [s.box[0], s.box[3]]], np.float32)
    return warp(img, expand_quad(quad, 0.04, 0.08))


def run_crops(samples: list[Sample], engines: list[tuple[str, str | None]]) -> list[str]:
    lines = ["| set | engine | plates | exact (all) | exact (held-out) | CPU ms/crop |", "| --- | --- | --- | --- | --- | --- |"]
    for engine, model in engines:
        reader = PlateReader(engine=engine, model=model)
        for name in dict.fromkeys(s.set for s in samples):
            sel = [s for s in samples if s.set == name and s.text]
            res, ms = [], []
            for s in sel:
                crop = tight_crop(load_image(s.path), s)
                c0 = time.process_time()
                r = reader.read(crop, region=SETS[name][1])
                ms.append((time.process_time() - c0) * 1000)
                res.append((s.held_out, bool(r) and r.confidence >= UNREADABLE_BELOW and matches(r.text, s.text)))
            held = [ok for h, ok in res if h]
            label = engine if model is None else f"{engine} ({Path(model).name})"
            lines.append(f"| {name} | {label} | {len(res)} | {pct(sum(ok for _, ok in res) / max(1, len(res)))} "
                         f"| {pct(sum(held) / max(1, len(held)))} | {np.mean(ms):.0f} |")
    return lines


def run_localisers(samples: list[Sample], kinds: list[str]) -> list[str]:
    lines = ["| localiser | found top-1 | found top-3 | mean best IoU | CPU ms/photo |", "| --- | --- | --- | --- | --- |"]
    sel = [s for s in samples if s.text]
    for kind in kinds:
        loc = make_localiser(kind)
        found1 = found3 = 0
        ious, ms = [], []
        for s in sel:
            img = load_image(s.path)
            c0 = time.process_time()
            plates = loc.locate(img, max_plates=3)
            ms.append((time.process_time() - c0) * 1000)
            best = [iou(p.box, s.box) for p in plates]
            found1 += bool(best and best[0] >= 0.3)
            found3 += bool(best and max(best) >= 0.3)
            ious.append(max(best) if best else 0.0)
        n = max(1, len(sel))
        lines.append(f"| {kind} | {found1 / n:.1%} | {found3 / n:.1%} | {np.mean(ious):.2f} | {np.mean(ms):.0f} |")
    return lines


def run_baseline(samples: list[Sample]) -> dict:
    """easyocr's own readtext on the whole photo; its guess = its most confident 4-8 character text."""
    import easyocr
    import torch

    from stopline.shared.plates.engines import easyocr_model_dir
    from stopline.shared.plates.formats import normalise

    torch.set_num_threads(1)
    reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=easyocr_model_dir(),
                            download_enabled=False, verbose=False)
    right, cpu = [], []
    for s in samples:
        c0 = time.process_time()
        res = reader.readtext(load_image(s.path))
        cpu.append((time.process_time() - c0) * 1000)
        texts = [(normalise(t), c) for _, t, c in res]
        plate_like = [t for t in texts if 4 <= len(t[0]) <= 8] or texts
        pred = max(plate_like, key=lambda t: t[1])[0] if plate_like else ""
        right.append(matches(pred, s.text))
    return {"n": len(samples), "exact": float(np.mean(right)) if right else float("nan"),
            "cpu_ms": float(np.mean(cpu)) if cpu else float("nan")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--engine", default="rapidocr")
    ap.add_argument("--model", default=None, help="recogniser ONNX for --engine onnx (default: the shipped one)")
    ap.add_argument("--localiser", default="auto")
    ap.add_argument("--localiser-model", default=None)
    ap.add_argument("--crops", action="store_true", help="tight plate crops (from the labels), per engine")
    ap.add_argument("--crop-engines", nargs="+", default=["rapidocr", "onnx"],
                    help="engines for --crops; ENGINE=MODEL.onnx for another recogniser file")
    ap.add_argument("--loro", action="store_true", help="leave-one-region-out calibration")
    ap.add_argument("--localisers", action="store_true")
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--baseline-every", type=int, default=4, metavar="K")
    ap.add_argument("--fit-calibration", action="store_true",
                    help="refit the engine's calibration on the dev photos of all sets and save it")
    ap.add_argument("--json", type=Path, default=None, help="write per-photo rows here")
    ap.add_argument("--out", type=Path, default=None, help="results markdown (default: print only)")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"no real data at {DATA}", file=sys.stderr)
        return 2
    cv2.setNumThreads(1)  # per-core figures: OpenCV would otherwise resize on every core

    reader = PlateReader(engine=args.engine, model=args.model, localiser=args.localiser,
                         localiser_model=args.localiser_model)
    load = os.getloadavg()[0]
    lines = [f"# `python bench/plates_real.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             f"engine `{reader.engine_name}`, localiser `{args.localiser}`, region per set (eu, br, us), one thread, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load:.1f}. "
             f"Reads below confidence {UNREADABLE_BELOW} answer 'unreadable'. *dev*: photos the reader and its "
             "calibration were tuned on; *held-out*: the fixed fifth by file-name hash, never tuned on.", ""]
    samples = [s for name in args.sets for s in load_set(name, args.limit)]
    raw_rows: dict[str, list[dict]] = {}
    for name in args.sets:
        raw_rows[name] = run_reader(reader, [s for s in samples if s.set == name])
    if args.fit_calibration:
        cal = fit_calibration([r for v in raw_rows.values() for r in v if not r["held_out"]], reader.engine_name)
        old = Calibration.load()
        old.knots = {k: v for k, v in old.knots.items() if k.split(":")[0].split("@")[0] != reader.engine_name}
        old.knots.update(cal.knots)
        old.save(note="isotonic fit of P(exact | raw score) on the dev photos (not the held-out fifth) of "
                      "openalpr-eu, openalpr-br and caltech-us; bench/plates_real.py --fit-calibration")
        reader.calibration = old
    cal_now = reader.calibration
    rows = {k: apply_floor(v, cal_now, reader.engine_name) for k, v in raw_rows.items()}
    lines += results_table(rows)
    lines += ["", "Confidence buckets (reads with a plate label; share exactly right per bucket, before the floor):", "",
              "| set | " + " | ".join(b for b, _, _ in buckets([])) + " |", "| --- |" + " --- |" * 6]
    for name, rs in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{n}: {pct(a)}" if n else "0" for _, n, a in buckets(rs)) + " |")
    for name, rs in rows.items():
        for r in rs:
            if r["outcome"] not in ("exact", "no read expected: none given"):
                print(f"  {name} {r['image']}: {r['outcome']}: truth {r['truth'] or 'N/A'} read {r['pred'] or '-'} "
                      f"({r['raw_text']}) conf {r['conf']:.2f} raw {r['raw']:.3f} iou {r['iou']:.2f}", file=sys.stderr)
    if args.loro:
        lines += ["", "Leave one region out: the calibration (and so the 'unreadable' floor and the >= 0.9 "
                  "reads) fitted without region X, scored on X, beside the one fitted on every region's dev photos:", ""]
        lines += loro(raw_rows, reader.engine_name)
    if args.crops:
        engines = [(e.split("=", 1)[0], e.split("=", 1)[1]) if "=" in e else (e, None) for e in args.crop_engines]
        lines += ["", "Tight plate crops (the labelled plate rectified from its corners or box, 4 % margin; "
                  "the reader's own localiser finds the character row inside):", ""]
        lines += run_crops(samples, engines)
    if args.localisers:
        lines += ["", "Localisers (labelled plates, top-3 candidates, found = IoU >= 0.3):", ""]
        lines += run_localisers(samples, ["textdet", "yolo", "cascade"])
    if args.baseline:
        k = args.baseline_every
        lines += ["", f"Baseline: easyocr `readtext` on every {k}th photo, whole photo, one thread:", "",
                  "| set | photos | exact | CPU ms/photo |", "| --- | --- | --- | --- |"]
        for name in args.sets:
            b = run_baseline([s for s in samples if s.set == name and s.text][::k])
            lines.append(f"| {name} | {b['n']} | {pct(b['exact'])} | {b['cpu_ms']:.0f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps([r for v in rows.values() for r in v], indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
