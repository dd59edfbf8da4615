"""Plate reading on the simulator's output (``stopline sim --out DIR``): for each vehicle, the
frames where its plate is largest, the way the edge would send them (find_plates inside the
vehicle box, crop with margin), read and voted at the gateway.

    stopline sim --seed 3 --duration 20 --out /tmp/sim3
    python bench/plates_sim.py /tmp/sim3 [--frames 3]
    python bench/plates_sim.py --rendered      # the simulator's plate images at 60-120 px, no video
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


def rendered(per_size: int = 12) -> int:
    """Read the simulator's own plate images (sim/plates.py), scaled to 60-120 px wide and pasted
    on a grey background: the reader's accuracy on the sim's plate style without video blur."""
    from stopline.sim.plates import PlatePyramid, random_plate, render_plate

    reader = PlateReader()
    rng = np.random.default_rng(0)
    print("| region | plate width px | plates | exact |\n| --- | --- | --- | --- |")
    for region in ("us", "eu"):
        for w in (60, 80, 100, 120):
            ok = 0
            for _ in range(per_size):
                p = random_plate(rng, region)
                img = render_plate(p)
                small = cv2.resize(PlatePyramid(img).level_for(w), (w, int(img.shape[0] * w / img.shape[1])),
                                   interpolation=cv2.INTER_AREA)[..., :3]
                h = small.shape[0]
                canvas = np.full((h * 3, w * 2, 3), 90, np.uint8)
                canvas[h:2 * h, w // 2:w // 2 + w] = small
                r = reader.read(canvas, region=region)
                ok += bool(r and r.text == p.text)
            print(f"| {region} | {w} | {per_size} | {ok / per_size:.0%} |")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sim_dir", type=Path, nargs="?", help="output folder of stopline sim")
    ap.add_argument("--rendered", action="store_true", help="read the sim's plate images instead of a video")
    ap.add_argument("--frames", type=int, default=3, help="images per vehicle (largest plates)")
    ap.add_argument("--min-width", type=float, default=40.0, help="skip plates narrower than this (px)")
    args = ap.parse_args(argv)
    if args.rendered:
        return rendered()
    if args.sim_dir is None:
        ap.error("give the sim output folder, or --rendered")
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
