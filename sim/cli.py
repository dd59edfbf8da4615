"""``stopline sim`` (render a scene or export a YOLO dataset) and ``stopline eval``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stopline.shared.config import ConfigError


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sim", help="render a synthetic intersection (video, truth, camera.yaml) or a YOLO dataset",
                       description="Render a fixed camera's view of one signalised approach with known truth.")
    p.add_argument("--seed", type=int, default=0, help="scene seed (same seed, same output)")
    p.add_argument("--duration", type=float, default=60.0, metavar="SECONDS")
    p.add_argument("--out", type=Path, help="output folder for video.mp4, truth.json, camera.yaml, registry.csv")
    p.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT (default 1280x720)")
    p.add_argument("--fps", type=float, default=25.0)
    light = p.add_mutually_exclusive_group()
    light.add_argument("--night", action="store_true", help="night: headlights, lit signal, street lamps")
    light.add_argument("--dusk", action="store_true")
    p.add_argument("--preview", action="store_true", help="also write preview.png, frames with the truth drawn")
    p.add_argument("--lanes", type=int, default=2, help="approach lanes, 2-4 (more lanes: smaller plates)")
    p.add_argument("--region", choices=["us", "eu", "mixed"], default="mixed", help="plate styles")
    p.add_argument("--red-runners", type=float, default=0.4, metavar="SHARE",
                   help="share of drivers first to face amber/red who run it (default 0.4)")
    p.add_argument("--arrivals", type=float, default=720.0, metavar="VEH_PER_H", help="arrivals per lane per hour")
    p.add_argument("--no-rtor", action="store_true", help="no right turn on red at this approach")
    p.add_argument("--camera-id", default="sim")
    p.add_argument("--green", type=float, default=14.0, help="green time, s")
    p.add_argument("--amber", type=float, default=3.5, help="amber time, s")
    p.add_argument("--all-red", type=float, default=1.5, help="all-red clearance, s")
    p.add_argument("--cross-green", type=float, default=12.0, help="cross street's green, s")
    p.add_argument("--export-yolo", type=Path, metavar="DIR", help="write YOLO datasets instead of a video")
    p.add_argument("--frames", type=int, default=1000, help="images for --export-yolo")
    p.set_defaults(func=_sim)

    e = sub.add_parser("eval", help="score violations.jsonl against a synthetic scene's truth.json",
                       description="Precision, recall, plate exact-match rate, character accuracy, detection delay.")
    e.add_argument("--truth", type=Path, required=True)
    e.add_argument("--found", type=Path, required=True, help="violations.jsonl written by the pipeline")
    e.add_argument("--json", type=Path, metavar="OUT", help="also write every number as JSON")
    e.add_argument("--tolerance", type=float, default=1.0, help="max |found - true| crossing time, s")
    e.set_defaults(func=_eval)


def _progress(label: str):
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        return None, lambda: None
    bar = tqdm(total=0, desc=label, unit="frame", file=sys.stderr, disable=not sys.stderr.isatty())

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return update, bar.close


def _sim(args: argparse.Namespace) -> int:
    from .spec import SceneSpec, SignalTimings, parse_size

    try:
        size = parse_size(args.size)
        if args.export_yolo is not None:
            from .yolo import export_yolo

            update, close = _progress("export")
            try:
                stats = export_yolo(args.export_yolo, args.frames, seed=args.seed, size=size, progress=update)
            except OSError as e:
                raise ConfigError(f"sim: cannot write the dataset to {args.export_yolo}: {e}") from None
            finally:
                close()
            print(f"wrote {sum(stats.images.values())} images from {stats.scenes} scenes to {args.export_yolo} "
                  f"(train {stats.images['train']}, val {stats.images['val']}, test {stats.images['test']}; "
                  f"{stats.vehicle_labels} vehicle and {stats.plate_labels} plate labels)")
            return 0
        if args.out is None:
            raise ConfigError("sim: --out DIR is required (or --export-yolo DIR)")
        timings = SignalTimings(green_s=args.green, amber_s=args.amber, all_red_s=args.all_red,
                                cross_green_s=args.cross_green)
        spec = SceneSpec(
            seed=args.seed, duration_s=args.duration, size=size, fps=args.fps,
            lighting="night" if args.night else ("dusk" if args.dusk else "day"),
            camera_id=args.camera_id, lanes=args.lanes, region=args.region,
            arrivals_per_lane_h=args.arrivals, red_runner_share=args.red_runners,
            right_turn_on_red=not args.no_rtor, signal=timings,
        )
    except ValueError as e:
        raise ConfigError(f"sim: {e}") from None
    from .produce import render

    if args.out.exists() and not args.out.is_dir():
        raise ConfigError(f"sim: --out {args.out} exists and is not a folder")
    update, close = _progress("render")
    try:
        out = render(spec, args.out, preview=args.preview, progress=update)
    except OSError as e:
        raise ConfigError(f"sim: cannot write to {args.out}: {e}") from None
    finally:
        close()
    print(f"wrote {out.video} ({spec.n_frames} frames, {out.codec}), {out.truth.name}, {out.camera.name}, "
          f"{out.registry.name}{', ' + out.preview.name if out.preview else ''}: {out.n_violations} violations")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from stopline.shared.records import read_records

    from .evaluate import score, write_report
    from .truth import load_truth

    try:
        truth = load_truth(args.truth)
        if not args.found.is_file():
            raise ValueError(f"{args.found}: file not found")
        records = list(read_records(args.found))
    except ValueError as e:
        raise ConfigError(str(e)) from None
    report = score(truth, records, tolerance_s=args.tolerance)
    print(report.summary())
    if args.json:
        write_report(args.json, report)
    return 0
