"""``stopline models ...``: datasets, training, export, pruning, quantisation, evaluation, cards.

Everything but ``evaluate``/``quantize`` of existing ONNX files needs the train extra
(``pip install 'stopline[train]'``); imports happen inside the handlers, so ``stopline --help``
and the services never load PyTorch.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from stopline.shared.config import ConfigError

from .env import ToolchainError

log = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="model toolchain: dataset, train, export, prune, quantize, "
                                             "evaluate, ocr, build (train extra)")
    sub = p.add_subparsers(dest="models_command", metavar="STEP")

    d = sub.add_parser("dataset", help="YOLO datasets (vehicles, plates, plate crops) from the simulator")
    d.add_argument("--out", type=Path, default=Path("datasets/sim"))
    d.add_argument("--frames", type=int, default=1800, help="frames in all (about 10%% val, 10%% test)")
    d.add_argument("--seed", type=int, default=2, help="scene seeds (2: the data of the shipped models)")
    d.add_argument("--size", default="1280x720", help="frame size WIDTHxHEIGHT")
    d.set_defaults(func=cmd_dataset)

    r = sub.add_parser("real-data", help="YOLO datasets from real labelled photos, and data specs that mix "
                                          "them with the synthetic ones")
    r.add_argument("--shared", type=Path, default=Path("../shared/data"),
                   help="folder with plates/REGION/ and vehicles/NAME/ (see its README)")
    r.add_argument("--sim", type=Path, default=Path("datasets/sim"), help="synthetic root from `models dataset`")
    r.add_argument("--out", type=Path, default=Path("datasets"), help="writes OUT/real/ and OUT/mixed/")
    r.add_argument("--regions", default="openalpr-eu,openalpr-br,caltech-us",
                   help="plate folders to train on (comma-separated): leave one out to score on it unseen")
    r.add_argument("--vehicles", default="intersection-cctv-vn", help="real vehicle YOLO export under vehicles/")
    r.add_argument("--repeat", type=int, default=2, help="times the real training images are listed")
    r.set_defaults(func=cmd_real_data)

    w = sub.add_parser("warmstart", help="trainable .pt from a shipped ONNX model (to fine-tune without the "
                                         "original weights)")
    w.add_argument("kind", choices=["vehicle", "plate"])
    w.add_argument("--onnx", type=Path, help="default: the shipped models/KIND-int8.onnx")
    w.add_argument("--data", type=Path, default=Path("datasets/sim"), help="dataset root or data YAML: a few "
                                                                          "training images set BatchNorm statistics")
    w.add_argument("--out", type=Path, required=True, help="the .pt to write")
    w.set_defaults(func=cmd_warmstart)

    t = sub.add_parser("train", help="train a YOLO nano detector (from scratch, or --weights to fine-tune)")
    t.add_argument("kind", choices=["vehicle", "plate"])
    t.add_argument("--data", type=Path, default=Path("datasets/sim"),
                   help="dataset root from `models dataset`, or a data YAML (e.g. datasets/mixed/vehicle.yaml)")
    t.add_argument("--out", type=Path, default=Path("training-runs"))
    t.add_argument("--weights", type=Path, help="ultralytics .pt to fine-tune from")
    t.add_argument("--epochs", type=int)
    t.add_argument("--imgsz", type=int)
    t.add_argument("--threads", type=int, help="torch threads on CPU")
    t.add_argument("--hours", type=float, help="wall-clock budget (ultralytics fits epochs and LR schedule to it)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("export", help="ONNX export: fixed input size, batch 1, simplified")
    e.add_argument("weights", type=Path)
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--imgsz", default="256", help="input SIZE or WIDTHxHEIGHT (multiples of 32), e.g. 320x192 "
                                                   "for 16:9 cameras")
    e.set_defaults(func=cmd_export)

    pr = sub.add_parser("prune", help="activation-guided structured pruning + fine-tuning")
    pr.add_argument("kind", choices=["vehicle", "plate"])
    pr.add_argument("--weights", type=Path, required=True)
    pr.add_argument("--data", type=Path, default=Path("datasets/sim"))
    pr.add_argument("--out", type=Path, default=Path("training-runs"))
    pr.add_argument("--ratio", type=float, default=0.3, help="share of channels removed per prunable layer")
    pr.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs")
    pr.add_argument("--imgsz", type=int, help="statistics and fine-tuning size (default: the kind's training size)")
    pr.add_argument("--frames", type=int, default=300, help="frames for the activation statistics")
    pr.add_argument("--hours", type=float, help="wall-clock budget for the fine-tuning (overrides --epochs)")
    pr.add_argument("--fraction", type=float, default=1.0, help="share of the training images per epoch")
    pr.set_defaults(func=cmd_prune)

    q = sub.add_parser("quantize", help="onnxruntime INT8: static QDQ per-channel (default) or --dynamic")
    q.add_argument("model", type=Path)
    q.add_argument("--out", type=Path, required=True)
    q.add_argument("--data", type=Path, help="YOLO dataset folder (e.g. datasets/sim/vehicles) for calibration")
    q.add_argument("--frames", type=int, default=200, help="calibration frames")
    q.add_argument("--method", choices=["minmax", "entropy", "percentile"], default="minmax")
    q.add_argument("--dynamic", action="store_true", help="dynamic INT8 (no calibration)")
    q.set_defaults(func=cmd_quantize)

    ev = sub.add_parser("evaluate", help="mAP, P, R, latency, size of ONNX variants -> card, metrics.json, plot")
    ev.add_argument("kind", choices=["vehicle", "plate"])
    ev.add_argument("--data", type=Path, default=Path("datasets/sim"))
    ev.add_argument("--variant", action="append", required=True, metavar="NAME=FILE.onnx",
                    help="repeat: fp32=..., pruned=..., int8=...")
    ev.add_argument("--split", default="test")
    ev.add_argument("--threads", type=int, default=2, help="onnxruntime threads (an edge box's)")
    ev.add_argument("--runs", type=int, default=50, help="timed runs per variant")
    ev.add_argument("--card-dir", type=Path, default=MODELS_DIR, help="where NAME.md/.metrics.json/.png go")
    ev.add_argument("--runs-dir", type=Path, default=Path("training-runs"),
                    help="where train/prune wrote KIND.train.json and KIND-pruned.json (for the card)")
    ev.add_argument("--no-card", action="store_true", help="print the table only")
    ev.set_defaults(func=cmd_evaluate)

    o = sub.add_parser("ocr", help="easyocr English recogniser -> ONNX -> INT8; evaluate on real plate crops")
    o.add_argument("--out", type=Path, default=MODELS_DIR)
    o.add_argument("--plates", type=Path, help="plate photos with NAME.txt ground truth "
                                                "(e.g. ../shared/data/plates); no evaluation without")
    o.add_argument("--threads", type=int, default=1)
    o.add_argument("--keep-fp32", action="store_true", help="keep the FP32 ONNX next to the INT8 one")
    o.set_defaults(func=cmd_ocr)

    f = sub.add_parser("ocr-finetune", help="fine-tune the recogniser on real plate crops + synthetic plates, "
                                            "export FP32 ONNX and INT8")
    f.add_argument("--plates", type=Path, default=Path("../shared/data/plates"),
                   help="folder of plate regions (REGION/NAME.txt ground truth)")
    f.add_argument("--regions", default="openalpr-eu,openalpr-br,caltech-us",
                   help="regions whose training photos are used (comma-separated)")
    f.add_argument("--out", type=Path, default=Path("training-runs/ocr"))
    f.add_argument("--steps", type=int, default=1500)
    f.add_argument("--batch", type=int, default=24)
    f.add_argument("--hours", type=float, help="wall-clock budget (stops early)")
    f.add_argument("--threads", type=int, default=1)
    f.add_argument("--lr", type=float, default=1e-4, help="starting learning rate")
    f.add_argument("--lr-floor", type=float, default=0.1,
                   help="the learning rate decays (cosine) to LR x this by the end of --steps or --hours")
    f.add_argument("--init", type=Path, metavar="STATE.pt",
                   help="start from this fine-tuned state dict (e.g. a previous run's recognizer.pt) "
                        "instead of easyocr's english_g2")
    f.add_argument("--reader-crops", action="store_true",
                   help="also train (and choose the checkpoint) on the real plates as the plate reader crops "
                        "them for its recogniser: the text line found inside the plate, normal and wide margin")
    f.add_argument("--eval-every", type=int, default=50, help="steps between checks on the real val crops")
    f.set_defaults(func=cmd_ocr_finetune)

    b = sub.add_parser("build", help="(re)build the INT8 OCR recogniser from the installed easyocr weights")
    b.add_argument("--out", type=Path, default=MODELS_DIR)
    b.set_defaults(func=cmd_build)

    p.set_defaults(func=lambda args: (p.print_help(), 1)[1])


def _fail(e: Exception) -> int:
    raise ConfigError(str(e))


def cmd_dataset(args: argparse.Namespace) -> int:
    from stopline.sim.spec import parse_size

    from .dataset import build_datasets

    try:
        s = build_datasets(args.out, args.frames, seed=args.seed, size=parse_size(args.size))
    except (ToolchainError, ValueError) as e:
        return _fail(e)
    for task, counts in s.images.items():
        print(f"{task}: {counts} images, {s.labels[task]} labels")
    print(f"data: {args.out}/vehicles/data.yaml, {args.out}/plate-crops/data.yaml")
    return 0


def cmd_real_data(args: argparse.Namespace) -> int:
    from .dataset import data_yaml
    from .real_data import VEHICLE_NAMES, build_plate_dataset, build_vehicle_dataset, mixed_spec

    try:
        regions = [r for r in args.regions.split(",") if r]
        real = args.out / "real"
        vehicles = build_vehicle_dataset(args.shared / "vehicles" / args.vehicles, real / "vehicles")
        plates = build_plate_dataset(args.shared / "plates", real / "plates", regions)
        sim_vehicles, sim_plates = data_yaml(args.sim, "vehicle").parent, data_yaml(args.sim, "plate").parent
        v = mixed_spec(args.out / "mixed" / "vehicle.yaml", VEHICLE_NAMES,
                       [(sim_vehicles, 1), (real / "vehicles", args.repeat)], real / "vehicles", real / "vehicles")
        p = mixed_spec(args.out / "mixed" / "plate.yaml", ["plate"],
                       [(sim_plates, 1), (real / "plates", args.repeat)], real / "plates", real / "plates")
    except (ToolchainError, OSError) as e:
        return _fail(e)
    print(f"real vehicles: {vehicles}; real plates ({', '.join(regions)}): {plates} (train incl. augmented copies)")
    print(f"data: {v}, {p}")
    return 0


def cmd_warmstart(args: argparse.Namespace) -> int:
    import yaml

    from .dataset import class_names, data_yaml
    from .train import RECIPES
    from .warmstart import warm_start

    try:
        spec = data_yaml(args.data, args.kind)
        data = yaml.safe_load(spec.read_text())
        train_dirs = data["train"] if isinstance(data["train"], list) else [data["train"]]
        root = Path(data.get("path") or spec.parent)
        images = sorted(p for d in train_dirs for p in (root / d).glob("*.jpg"))[::25][:48]
        onnx_path = args.onnx or MODELS_DIR / f"{args.kind}-int8.onnx"
        recipe = RECIPES[args.kind]
        out = warm_start(onnx_path, args.out, arch=recipe.arch, names=class_names(spec), images=images,
                         imgsz=recipe.imgsz)
    except (ToolchainError, OSError, KeyError) as e:
        return _fail(e)
    print(f"weights: {out}")
    return 0


def cmd_ocr_finetune(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from .ocr import quantize_recognizer
    from .ocr_finetune import export_fine_tuned, fine_tune

    if not 0 < args.lr_floor <= 1:
        raise ConfigError(f"--lr-floor {args.lr_floor}: must be in (0, 1] (a share of --lr)")
    if args.init is not None and not args.init.is_file():
        raise ConfigError(f"--init {args.init}: no such state dict")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
        regions = [r for r in args.regions.split(",") if r]
        report = fine_tune(args.plates, regions, args.out / "recognizer.pt", steps=args.steps, batch=args.batch,
                           threads=args.threads, hours=args.hours, lr=args.lr, lr_floor=args.lr_floor,
                           eval_every=args.eval_every, init=args.init, reader_crops=args.reader_crops)
        fp32 = export_fine_tuned(args.out / "recognizer.pt", args.out / "recognizer-fp32.onnx")
        int8 = quantize_recognizer(fp32, args.out / "recognizer-int8.onnx")
    except (ToolchainError, OSError) as e:
        return _fail(e)
    command = ["stopline models ocr-finetune", f"--regions {args.regions}", f"--steps {args.steps}",
               f"--batch {args.batch}", f"--lr {args.lr}", f"--lr-floor {args.lr_floor}",
               f"--eval-every {args.eval_every}"]
    if args.hours:
        command.append(f"--hours {args.hours}")
    if args.init is not None:
        command.append(f"--init {args.init}")
    if args.reader_crops:
        command.append("--reader-crops")
    info = {**asdict(report), "regions": regions, "command": " ".join(command)}
    (args.out / "recognizer.train.json").write_text(json.dumps(info, indent=2))
    print(f"real val exact {report.val_exact_before:.3f} -> {report.val_exact_after:.3f} (step {report.best_step}); "
          f"onnx: {fp32}, {int8}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from .dataset import data_yaml
    from .train import RECIPES, train

    try:
        recipe = RECIPES[args.kind]
        if args.epochs:
            recipe = replace(recipe, epochs=args.epochs)
        if args.imgsz:
            recipe = replace(recipe, imgsz=args.imgsz)
        if args.hours:
            recipe = replace(recipe, hours=args.hours)
        out = train(args.kind, data_yaml(args.data, args.kind), args.out, weights=args.weights,
                    recipe=recipe, threads=args.threads)
    except ToolchainError as e:
        return _fail(e)
    print(f"weights: {out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .export import export_onnx, parse_imgsz

    try:
        out = export_onnx(args.weights, args.out, imgsz=parse_imgsz(args.imgsz))
    except ToolchainError as e:
        return _fail(e)
    print(f"onnx: {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from .dataset import data_yaml
    from .prune import fine_tune, prune_model, write_report
    from .quantize import list_images
    from .train import RECIPES

    imgsz = args.imgsz or RECIPES[args.kind].imgsz
    try:
        yaml_path = data_yaml(args.data, args.kind)
        root = yaml_path.parent
        frames = list_images(root / "images" / "train") + list_images(root / "images" / "val")
        yolo, report = prune_model(args.weights, frames, args.ratio, imgsz=imgsz, n_frames=args.frames)
        started = time.time()
        name = f"{args.kind}-pruned"
        out, epochs = fine_tune(yolo, yaml_path, args.out, args.epochs, imgsz, name=name, hours=args.hours,
                                fraction=args.fraction)
        report["fine_tune_epochs"] = epochs
        report["fine_tune_fraction"] = args.fraction
        report["fine_tune_minutes"] = round((time.time() - started) / 60, 1)
        write_report(report, args.out / f"{name}.json")
    except ToolchainError as e:
        return _fail(e)
    print(f"pruned: params {report['params_before']} -> {report['params_after']}; weights {out}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from .quantize import list_images, quantize_detector, quantize_dynamic_int8

    try:
        if args.dynamic:
            out = quantize_dynamic_int8(args.model, args.out)
        else:
            if args.data is None:
                raise ToolchainError("static quantisation needs --data (a YOLO dataset folder) for calibration")
            frames = list_images(args.data / "images" / "train") + list_images(args.data / "images" / "val")
            out = quantize_detector(args.model, args.out, frames, n_frames=args.frames, method=args.method)
    except ToolchainError as e:
        return _fail(e)
    print(f"int8: {out} ({out.stat().st_size / 1e6:.2f} MB)")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .card import write_detector_card
    from .dataset import class_names, data_yaml
    from .evaluate import evaluate_variants, split_images

    try:
        yaml_path = data_yaml(args.data, args.kind)
        names = class_names(yaml_path)
        images = split_images(yaml_path.parent, args.split)
        variants = {}
        for spec in args.variant:
            if "=" not in spec:
                raise ToolchainError(f"--variant {spec!r}: expected NAME=FILE.onnx")
            name, path = spec.split("=", 1)
            variants[name] = Path(path)
        rows = [r.as_dict() for r in evaluate_variants(variants, images, names, threads=args.threads,
                                                        runs=args.runs)]
        for r in rows:
            print(json.dumps(r))
    except ToolchainError as e:
        return _fail(e)
    if not args.no_card:
        card = write_detector_card(args.kind, rows, args.card_dir, data_root=args.data, split=args.split,
                                   runs_dir=args.runs_dir)
        print(f"card: {card}")
    return 0


def cmd_ocr(args: argparse.Namespace) -> int:
    from .card import write_ocr_card
    from .ocr import evaluate_ocr, export_recognizer, quantize_recognizer, real_plate_crops

    try:
        fp32 = args.out / "easyocr-en-fp32.onnx"
        int8 = args.out / "easyocr-en-int8.onnx"
        export_recognizer(fp32)
        quantize_recognizer(fp32, int8)
        print(f"int8: {int8} ({int8.stat().st_size / 1e6:.2f} MB)")
        if args.plates:
            crops = real_plate_crops(args.plates)
            rows = evaluate_ocr(crops, {"onnx fp32": fp32, "onnx int8": int8}, threads=args.threads)
            for r in rows:
                print(json.dumps(r))
            print(f"card: {write_ocr_card(rows, args.out, str(args.plates))}")
        if not args.keep_fp32:
            fp32.unlink(missing_ok=True)
    except ToolchainError as e:
        return _fail(e)
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from .ocr import export_recognizer, quantize_recognizer

    try:
        fp32 = args.out / "easyocr-en-fp32.onnx"
        export_recognizer(fp32)
        int8 = quantize_recognizer(fp32, args.out / "easyocr-en-int8.onnx")
        fp32.unlink(missing_ok=True)
    except ToolchainError as e:
        return _fail(e)
    print(f"built {int8}")
    return 0
