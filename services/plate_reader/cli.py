"""``stopline plates read IMAGE... [--region auto|us|eu|br] [--engine ...] [--json]``.

One line per image: text, confidence, box, engine, milliseconds; "no plate" when none is found,
"unreadable" when one is found but its read is below the confidence floor;
a clear per-file error for non-images, truncated files and enormous images. It never stops at a
bad file; the exit status is 1 when any file could not be read as an image, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys

from stopline.shared.config import ConfigError


def add_commands(sub: argparse._SubParsersAction) -> None:
    plates = sub.add_parser("plates", help="read licence plates in images")
    psub = plates.add_subparsers(dest="plates_command", metavar="SUBCOMMAND")
    read = psub.add_parser("read", help="read the plate in each image")
    read.add_argument("images", nargs="+", metavar="IMAGE")
    read.add_argument("--region", default="auto", choices=["auto", "us", "eu", "br"])
    read.add_argument("--engine", default="rapidocr", choices=["rapidocr", "onnx", "easyocr"])
    read.add_argument("--model", default=None,
                      help="recogniser ONNX for --engine onnx (default: the shipped INT8 recogniser)")
    read.add_argument("--localiser", default="auto", choices=["auto", "yolo", "textdet", "cascade"],
                      help="auto (default): the plate model, then the text detector where it finds no sure read")
    read.add_argument("--localiser-model", default=None,
                      help="plate detector ONNX for --localiser auto|yolo (default: the shipped INT8 plate model)")
    read.add_argument("--max-pixels", type=int, default=None, help="refuse bigger images (default 40 MP)")
    read.add_argument("--json", action="store_true", help="one JSON object per line")
    read.set_defaults(func=cmd_read)
    plates.set_defaults(func=lambda args: (plates.print_help(), 1)[1])


def cmd_read(args: argparse.Namespace) -> int:
    from stopline.shared.plates import EngineError, ImageError, PlateReader, load_image
    from stopline.shared.plates.io import MAX_PIXELS

    try:
        reader = PlateReader(engine=args.engine, model=args.model, localiser=args.localiser,
                             localiser_model=args.localiser_model, region=args.region)
    except (EngineError, ValueError, FileNotFoundError) as e:
        raise ConfigError(str(e)) from None
    failed = 0
    for path in args.images:
        out: dict = {"image": path}
        try:
            image = load_image(path, max_pixels=args.max_pixels or MAX_PIXELS)
            r = reader.read(image, region=args.region)
        except ImageError as e:
            failed += 1
            out["error"] = str(e)
        except Exception as e:  # one bad file must not stop the rest
            failed += 1
            out["error"] = f"{path}: {type(e).__name__}: {e}"
        else:
            if r is None:
                out.update(text=None, result="no plate", engine=reader.engine_name)
            elif r.unreadable:
                out.update(text=None, result="unreadable", confidence=round(r.confidence, 3), guess=r.guess,
                           box=[round(v, 1) for v in r.box] if r.box else None, engine=r.engine)
            else:
                out.update(text=r.text, confidence=round(r.confidence, 3), region=r.region,
                           box=[round(v, 1) for v in r.box] if r.box else None, engine=r.engine,
                           ms=round(r.ms, 1), char_confidences=[round(c, 3) for c in r.char_confidences])
        if args.json:
            print(json.dumps(out), flush=True)
        elif "error" in out:
            print(f"{path}\terror: {out['error']}", flush=True)
        elif out.get("text") is None:
            print(f"{path}\t{out['result']}", flush=True)
        else:
            box = ",".join(f"{v:.0f}" for v in out["box"]) if out["box"] else "-"
            print(f"{path}\t{out['text']}\t{out['confidence']:.2f}\t{box}\t{out['engine']}\t{out['ms']:.0f} ms",
                  flush=True)
    if failed:
        print(f"stopline plates read: {failed} of {len(args.images)} files could not be read", file=sys.stderr)
    return 1 if failed else 0
