"""Plate reading on the simulator's output (``stopline sim --out DIR``): for each vehicle, the
frames where its plate is largest, the way the edge would send them (find_plates inside the
vehicle box, crop with margin), read and voted at the gateway.

    stopline sim --seed 3 --duration 20 --out /tmp/sim3
    python bench/plates_sim.py /tmp/sim3 [--frames 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from stopline.shared.plates import PlateReader, find_plates, crop_plate, vote


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sim_dir", type=Path)
    ap.add_argument("--frames", type=int, default=3, help="images per vehicle (largest plates)")
    ap.add_argument("--min-width", type=float, default=40.0, help="skip plates narrower than this (px)")
    args = ap.parse_args(argv)
    truth = json.loads((args.sim_dir / "truth.json").read_text())
    cap = cv2.VideoCapture(str(args.sim_dir / truth.get("video", "video.mp4")))
    frames: dict[int, np.ndarray] = {}
    wanted: dict[int, list[tuple[int, dict]]] = {}
    for v in truth["vehicles"]:
        seen = [t for t in v["track"] if t.get("plate") and (t.get("plate_vis") or 0) > 0.9]
        seen.sort(key=lambda t: -(np.ptp([p[0] for p in t["plate"]])))
        if seen and np.ptp([p[0] for p in seen[0]["plate"]]) >= args.min_width:
            wanted[v["id"]] = [(t["f"], t) for t in seen[: args.frames]]
    need = {f for lst in wanted.values() for f, _ in lst}
    i = 0
    while need and (ok := cap.read())[0]:
        if i in need:
            frames[i] = ok[1]
        i += 1
    reader = PlateReader()
    rows = []
    for v in truth["vehicles"]:
        if v["id"] not in wanted:
            continue
        reads, t0 = [], time.perf_counter()
        for f, t in wanted[v["id"]]:
            img = frames.get(f)
            if img is None:
                continue
            plates = find_plates(img, vehicle_box=tuple(t["box"]), max_plates=1)
            if not plates:
                continue
            crop, _ = crop_plate(img, plates[0])
            r = reader.read(crop, region=v["region"])
            if r:
                reads.append(r)
        voted = vote(reads)
        width = float(np.ptp([p[0] for p in wanted[v["id"]][0][1]["plate"]]))
        rows.append((v["plate"], voted.text if voted else "", [r.text for r in reads], v["region"], width,
                     (time.perf_counter() - t0) * 1000))
    n = len(rows)
    exact = sum(t == p for t, p, *_ in rows)
    for t, p, per, region, w, ms in rows:
        print(f"{'ok ' if t == p else 'BAD'} {region} {t:9s} read {p or '-':9s} per-image {per} plate {w:.0f}px {ms:.0f} ms")
    print(f"\n{exact}/{n} vehicles exact ({exact / max(1, n):.0%}), plates >= {args.min_width:.0f} px wide, "
          f"{args.frames} images each, voted")
    return 0 if n else 1


if __name__ == "__main__":
    sys.exit(main())
