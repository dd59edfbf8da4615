"""Render speed of the synthetic intersection, on one core.

    python bench/sim_render.py [--frames 500] [--size 1280x720] [--lighting day night] [--arrivals 720]
                               [--out bench/results/sim_render.md]
    python bench/sim_render.py --plates-ocr DIR [DIR ...] [--out ...]   # legibility of rendered scenes

Reports frames/s for rendering alone (raw frames + truth) and with the video encoder, plus the
one-off scene setup (traffic simulation, background, plates). Wall time and process CPU time
are both shown: on a shared machine the CPU figure is the one to compare with the target
(60 frames/s at 1280x720 on one core).
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402

from stopline.sim.produce import open_writer  # noqa: E402
from stopline.sim.frames import FrameRenderer  # noqa: E402
from stopline.sim.scene import build_scene  # noqa: E402
from stopline.sim.spec import SceneSpec, parse_size  # noqa: E402


def measure(spec: SceneSpec, frames: int) -> dict[str, float]:
    c0, w0 = time.process_time(), time.perf_counter()
    scene = build_scene(spec)
    renderer = FrameRenderer(scene)
    setup_cpu, setup_wall = time.process_time() - c0, time.perf_counter() - w0
    vis = sum(len(renderer.render(f)[1]) for f in range(0, frames, 10)) / len(range(0, frames, 10))
    c0, w0 = time.process_time(), time.perf_counter()
    for f in range(frames):
        renderer.render(f)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    with tempfile.TemporaryDirectory() as d:
        writer, codec = open_writer(Path(d) / "v.mp4", spec.fps, spec.size)
        c0, w0 = time.process_time(), time.perf_counter()
        for f in range(frames):
            writer.write(renderer.render(f)[0])
        writer.release()
        ecpu, ewall = time.process_time() - c0, time.perf_counter() - w0
    return {"setup_cpu": setup_cpu, "setup_wall": setup_wall, "fps_cpu": frames / cpu, "fps_wall": frames / wall,
            "enc_fps_cpu": frames / ecpu, "enc_fps_wall": frames / ewall, "vehicles": vis, "codec": codec}  # type: ignore[dict-item]


def plates_ocr(dirs: list[Path], out: Path | None) -> None:
    from rapidocr_onnxruntime import RapidOCR

    from stopline.sim.legibility import joined_read, plate_crops

    ocr = RapidOCR()
    rows = []
    for d in dirs:
        stats: dict[str, list[int]] = {}
        widths: dict[str, list[float]] = {}
        for plate, region, width, crop in plate_crops(d):
            ok = joined_read(ocr(crop)[0]) == plate
            stats.setdefault(region, []).append(int(ok))
            widths.setdefault(region, []).append(width)
        for region in sorted(stats):
            s = stats[region]
            rows.append((str(d), region, sum(s), len(s), float(sum(widths[region]) / len(s))))
            print(f"{d} {region}: {sum(s)}/{len(s)} exact ({100 * sum(s) / len(s):.0f} %), plates ~{rows[-1][4]:.0f} px wide")
    if out:
        lines = [f"\n### Plate legibility, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (RapidOCR, crop x3, frame nearest the stop line)\n",
                 "| scene | region | exact reads | plate width px |", "|---|---|---|---|"]
        lines += [f"| {d} | {r} | {k}/{n} ({100 * k / n:.0f} %) | {w:.0f} |" for d, r, k, n, w in rows]
        with open(out, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--size", default="1280x720")
    ap.add_argument("--lighting", nargs="+", default=["day", "night"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--arrivals", type=float, default=720.0, help="vehicles per lane per hour (traffic density)")
    ap.add_argument("--out", type=Path, help="append a Markdown table here")
    ap.add_argument("--plates-ocr", type=Path, nargs="+", metavar="DIR",
                    help="instead: read the plates near the stop line of rendered scenes with RapidOCR")
    args = ap.parse_args()
    if args.plates_ocr:
        plates_ocr(args.plates_ocr, args.out)
        return
    cv2.setNumThreads(1)
    rows = []
    for lighting in args.lighting:
        spec = SceneSpec(seed=args.seed, duration_s=args.frames / 25.0 + 1, size=parse_size(args.size), lighting=lighting,
                         arrivals_per_lane_h=args.arrivals)
        r = measure(spec, args.frames)
        rows.append((lighting, r))
        print(f"{lighting:6s} {args.size}: render {r['fps_cpu']:.0f} frames/s CPU ({r['fps_wall']:.0f} wall), "
              f"with {r['codec']} encoder {r['enc_fps_cpu']:.0f} CPU ({r['enc_fps_wall']:.0f} wall), "
              f"setup {r['setup_cpu']:.1f} s CPU, {r['vehicles']:.1f} vehicles in view")
    if args.out:
        lines = [f"\n### {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} — {platform.processor() or platform.machine()}, "
                 f"OpenCV {cv2.__version__}, 1 thread, {args.frames} frames, seed {args.seed}, {args.arrivals:.0f} veh/lane/h\n",
                 "| lighting | size | render frames/s (CPU) | render (wall) | + encoder frames/s (CPU) | + encoder (wall) | setup s (CPU) | vehicles in view |",
                 "|---|---|---|---|---|---|---|---|"]
        for lighting, r in rows:
            lines.append(f"| {lighting} | {args.size} | {r['fps_cpu']:.0f} | {r['fps_wall']:.0f} | {r['enc_fps_cpu']:.0f} "
                         f"({r['codec']}) | {r['enc_fps_wall']:.0f} | {r['setup_cpu']:.1f} | {r['vehicles']:.1f} |")
        with open(args.out, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
