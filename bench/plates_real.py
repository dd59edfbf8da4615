"""Plate localisation + reading on the real openalpr photos (../shared/data/plates).

    python bench/plates_real.py                      # default reader, both sets, writes results md
    python bench/plates_real.py --localisers         # also compare localisers (found rate, IoU)
    python bench/plates_real.py --baseline           # also easyocr readtext on whole photos
    python bench/plates_real.py --fit-calibration    # refit shared/plates/calibration.json

Single-threaded (one core) so plates/s is per core. Nothing here is used at run time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from stopline.shared.plates.calibration import Calibration, isotonic  # noqa: E402
from stopline.shared.plates.formats import normalise  # noqa: E402
from stopline.shared.plates.io import load_image  # noqa: E402
from stopline.shared.plates.localise import make_localiser  # noqa: E402
from stopline.shared.plates.reader import PlateReader  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "plates"
SETS = {"eu": "openalpr-eu", "br": "openalpr-br"}


@dataclass
class Sample:
    path: Path
    box: tuple[float, float, float, float]
    text: str


def load_set(name: str, limit: int | None = None) -> list[Sample]:
    folder = DATA / SETS[name]
    out = []
    for txt in sorted(folder.glob("*.txt")):
        parts = txt.read_text().strip().split("\t")
        if len(parts) < 6:
            continue
        fname, x, y, w, h, plate = parts[:6]
        x, y, w, h = map(float, (x, y, w, h))
        out.append(Sample(folder / fname, (x, y, x + w, y + h), normalise(plate)))
    return out[:limit] if limit else out


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def char_accuracy(pred: str, truth: str) -> float:
    """1 - edit distance / len(truth), floored at 0."""
    d = list(range(len(truth) + 1))
    for i, p in enumerate(pred, 1):
        prev, d[0] = d[0], i
        for j, t in enumerate(truth, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (p != t))
    return max(0.0, 1 - d[len(truth)] / max(1, len(truth)))


def fold(text: str) -> str:
    """O and 0 as one character (some openalpr-eu labels write letter O where the plate has 0)."""
    return text.replace("O", "0")


def run_reader(reader: PlateReader, samples: list[Sample], region: str) -> list[dict]:
    rows = []
    for s in samples:
        img = load_image(s.path)
        t0, c0 = time.perf_counter(), time.process_time()
        r = reader.read(img, region=region)
        ms = (time.perf_counter() - t0) * 1000
        cpu_ms = (time.process_time() - c0) * 1000
        pred = r.text if r else ""
        rows.append({
            "image": s.path.name, "truth": s.text, "pred": pred, "ms": ms, "cpu_ms": cpu_ms,
            "conf": r.confidence if r else 0.0, "raw": r.raw_confidence if r else 0.0,
            "found": bool(r and r.box and (iou(r.box, s.box) >= 0.3 or _inside(r.box, s.box))),
            "iou": iou(r.box, s.box) if r and r.box else 0.0,
            "exact": pred == s.text, "exact_folded": fold(pred) == fold(s.text),
            "chars": char_accuracy(pred, s.text), "raw_text": r.raw_text if r else "",
            "format": r.format_name if r else None,
        })
    return rows


def _inside(box, gt) -> bool:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return gt[0] <= cx <= gt[2] and gt[1] <= cy <= gt[3]


def summary(rows: list[dict]) -> dict:
    n = len(rows)
    ms = np.array([r["ms"] for r in rows])
    cpu = np.array([r["cpu_ms"] for r in rows])
    return {
        "n": n,
        "found": sum(r["found"] for r in rows) / n,
        "exact": sum(r["exact"] for r in rows) / n,
        "exact_folded": sum(r["exact_folded"] for r in rows) / n,
        "chars": float(np.mean([r["chars"] for r in rows])),
        "ms_mean": float(ms.mean()), "ms_p95": float(np.percentile(ms, 95)),
        "cpu_ms": float(cpu.mean()),
        "per_s": 1000.0 / float(cpu.mean()),
    }


def run_localisers(samples: list[Sample], kinds: list[str]) -> dict[str, dict]:
    out = {}
    for kind in kinds:
        loc = make_localiser(kind)
        found1 = found3 = 0
        ious, ms = [], []
        for s in samples:
            img = load_image(s.path)
            c0 = time.process_time()
            plates = loc.locate(img, max_plates=3)
            ms.append((time.process_time() - c0) * 1000)
            best = [iou(p.box, s.box) for p in plates]
            found1 += bool(best and best[0] >= 0.3)
            found3 += bool(best and max(best) >= 0.3)
            ious.append(max(best) if best else 0.0)
        n = len(samples)
        out[kind] = {"top1": found1 / n, "top3": found3 / n, "iou": float(np.mean(ious)),
                     "ms": float(np.mean(ms))}
    return out


def run_baseline(samples: list[Sample]) -> dict:
    """easyocr's own readtext on the whole photo; its best guess = the detected text that is
    closest to a plate (4-8 characters after normalising, highest confidence)."""
    import easyocr
    import torch

    from stopline.shared.plates.engines import easyocr_model_dir

    torch.set_num_threads(1)
    reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=easyocr_model_dir(),
                            download_enabled=False, verbose=False)
    rows = []
    for s in samples:
        img = load_image(s.path)
        t0, c0 = time.perf_counter(), time.process_time()
        res = reader.readtext(img)
        ms = (time.perf_counter() - t0) * 1000
        cpu_ms = (time.process_time() - c0) * 1000
        texts = [(normalise(t), c) for _, t, c in res]
        plate_like = [t for t in texts if 4 <= len(t[0]) <= 8] or texts
        pred = max(plate_like, key=lambda t: t[1])[0] if plate_like else ""
        rows.append({"pred": pred, "truth": s.text, "ms": ms, "cpu_ms": cpu_ms, "exact": pred == s.text,
                     "exact_folded": fold(pred) == fold(s.text), "chars": char_accuracy(pred, s.text),
                     "found": any(s.text == t for t, _ in texts)})
    return summary(rows)


def calibration_table(rows: list[dict]) -> list[tuple[str, int, float]]:
    bins = [(0.0, 0.5), (0.5, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 0.95), (0.95, 1.01)]
    out = []
    for lo, hi in bins:
        sel = [r for r in rows if lo <= r["conf"] < hi and r["pred"]]
        acc = sum(r["exact"] for r in sel) / len(sel) if sel else float("nan")
        out.append((f"{lo:.2f}-{min(hi, 1):.2f}", len(sel), acc))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", nargs="+", default=["eu", "br"], choices=list(SETS))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--engine", default="rapidocr")
    ap.add_argument("--model", default=None, help="recogniser ONNX for --engine onnx")
    ap.add_argument("--localiser", default="textdet")
    ap.add_argument("--region", default="auto", help="auto, or per set (eu/br) with 'set'")
    ap.add_argument("--localisers", action="store_true")
    ap.add_argument("--baseline", action="store_true")
    ap.add_argument("--baseline-every", type=int, default=1, metavar="K",
                    help="baseline on every K-th photo only (it is ~20x slower than the reader)")
    ap.add_argument("--fit-calibration", action="store_true")
    ap.add_argument("--speed", type=int, default=0, metavar="REPEATS",
                    help="also time every 4th photo REPEATS times and report the best CPU time per photo "
                         "(filters out other processes on a shared machine)")
    ap.add_argument("--json", type=Path, default=None, help="write per-image rows here")
    ap.add_argument("--out", type=Path, default=None, help="results markdown (default: print only)")
    args = ap.parse_args(argv)
    if not DATA.is_dir():
        print(f"no real data at {DATA}", file=sys.stderr)
        return 2
    cv2.setNumThreads(1)  # per-core figures: OpenCV would otherwise resize on every core

    uncal = Calibration() if args.fit_calibration else None
    reader = PlateReader(engine=args.engine, model=args.model, localiser=args.localiser, calibration=uncal)
    lines = [f"# plates_real: `python bench/plates_real.py {' '.join(argv or sys.argv[1:])}`", "",
             f"engine `{args.engine}`, localiser `{args.localiser}`, region `{args.region}`, one thread, "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| set | photos | plate found | exact | exact (O=0) | char acc | wall ms/photo (mean, p95) | CPU ms/photo | photos/s/core (CPU) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    all_rows, per_set, set_rows = [], {}, {}
    for name in args.sets:
        samples = load_set(name, args.limit)
        region = name if args.region == "set" else args.region
        rows = run_reader(reader, samples, region)
        for r in rows:
            r["set"] = name
        all_rows += rows
        set_rows[name] = rows
        s = per_set[name] = summary(rows)
        lines.append(f"| {name} | {s['n']} | {s['found']:.1%} | {s['exact']:.1%} | {s['exact_folded']:.1%} "
                     f"| {s['chars']:.1%} | {s['ms_mean']:.0f}, {s['ms_p95']:.0f} | {s['cpu_ms']:.0f} | {s['per_s']:.1f} |")
        for r in rows:
            if not r["exact"]:
                print(f"  {name} {r['image']}: truth {r['truth']} read {r['pred'] or '-'} ({r['raw_text']}) "
                      f"conf {r['conf']:.2f} iou {r['iou']:.2f}", file=sys.stderr)

    if args.fit_calibration:
        xs = [r["raw"] for r in all_rows if r["pred"]]
        ys = [r["exact"] for r in all_rows if r["pred"]]
        cal = Calibration({args.engine: isotonic(xs, ys)})
        # held-out check: fit on one set, apply to the other
        for r in all_rows:
            r["conf"] = cal(args.engine, r["raw"])
        if len(args.sets) == 2:
            for a, b in (args.sets, args.sets[::-1]):
                fit = Calibration({args.engine: isotonic([r["raw"] for r in all_rows if r["set"] == a and r["pred"]],
                                                         [r["exact"] for r in all_rows if r["set"] == a and r["pred"]])})
                held = [dict(r, conf=fit(args.engine, r["raw"])) for r in all_rows if r["set"] == b]
                hi = [r for r in held if r["conf"] >= 0.9 and r["pred"]]
                lines.append("")
                lines.append(f"Calibration fitted on {a}, applied to {b}: {len(hi)} reads at >= 0.9, "
                             f"{(sum(r['exact'] for r in hi) / len(hi)) if hi else float('nan'):.1%} right.")
        old = Calibration.load()
        old.knots[args.engine] = cal.knots[args.engine]
        old.save(note="isotonic fit of P(exact | raw score) on openalpr-eu + openalpr-br; "
                      "bench/plates_real.py --fit-calibration")
    hi = [r for r in all_rows if r["conf"] >= 0.9 and r["pred"]]
    lines += ["", "Calibration (all sets): confidence bin -> reads, exact-match rate", "",
              "| confidence | reads | exact |", "| --- | --- | --- |"]
    for b, n, acc in calibration_table(all_rows):
        lines.append(f"| {b} | {n} | {acc:.1%} |" if n else f"| {b} | 0 | - |")
    lines.append("")
    lines.append(f"Reads at confidence >= 0.9: {len(hi)} of {len(all_rows)} photos, "
                 f"{(sum(r['exact'] for r in hi) / len(hi)) if hi else float('nan'):.1%} exactly right.")

    if args.speed:
        lines += ["", f"Speed, best of {args.speed} runs per photo (every 4th photo), CPU time of one thread", "",
                  "| set | photos | CPU ms/photo (mean of best) | median | photos/s/core |", "| --- | --- | --- | --- | --- |"]
        for name in args.sets:
            best = []
            for s_ in load_set(name, args.limit)[::4]:
                img = load_image(s_.path)
                region = name if args.region == "set" else args.region
                times = []
                for _ in range(args.speed):
                    c0 = time.process_time()
                    reader.read(img, region=region)
                    times.append((time.process_time() - c0) * 1000)
                best.append(min(times))
            b = np.array(best)
            lines.append(f"| {name} | {len(b)} | {b.mean():.0f} | {np.median(b):.0f} | {1000 / b.mean():.1f} |")

    if args.localisers:
        samples = [s for name in args.sets for s in load_set(name, args.limit)]
        lines += ["", "Localisers (both sets, top-3 candidates, found = IoU >= 0.3 with the labelled box)", "",
                  "| localiser | found top-1 | found top-3 | mean best IoU | CPU ms/photo |", "| --- | --- | --- | --- | --- |"]
        for kind, m in run_localisers(samples, ["textdet", "cascade"]).items():
            lines.append(f"| {kind} | {m['top1']:.1%} | {m['top3']:.1%} | {m['iou']:.2f} | {m['ms']:.0f} |")

    if args.baseline:
        k = args.baseline_every
        which = f"every {k}th photo of each set (photos 1, {1 + k}, {1 + 2 * k}, ... in name order)" if k > 1 \
            else "every photo"
        lines += ["", f"Baseline: easyocr `readtext` on the whole photo (best plate-like guess), one thread, {which}. "
                  "The speed-up divides its CPU time by ours on the same photos in the same run.", "",
                  "| set | photos | exact | exact (O=0) | char acc | plate text among its reads | wall ms/photo "
                  "| CPU ms/photo | ours on these photos: exact, CPU ms/photo | CPU speed-up of ours |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for name in args.sets:
            b = run_baseline(load_set(name, args.limit)[::k])
            ours = summary(set_rows[name][::k])
            lines.append(f"| {name} | {b['n']} | {b['exact']:.1%} | {b['exact_folded']:.1%} | {b['chars']:.1%} "
                         f"| {b['found']:.1%} | {b['ms_mean']:.0f} | {b['cpu_ms']:.0f} "
                         f"| {ours['exact']:.1%}, {ours['cpu_ms']:.0f} | {b['cpu_ms'] / ours['cpu_ms']:.1f}x |")

    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps(all_rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
