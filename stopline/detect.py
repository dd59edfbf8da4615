"""``stopline detect``: the edge pipeline in one process, no broker, on a video, folder or stream.

Finds the red-light violations in a source with the vehicle detector's pipeline and writes what
the edge would send (``violations.jsonl``, evidence, candidates, ``summary.json``). With
``--read-plates`` each violation's plate is also read in the same process, by the same steps the
plate-finder and plate-reader services run on the bus (``stopline.shared.plates.choose`` and
``.reading``). This module is the app layer that puts them together: the services never import
one another.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2

from stopline.shared.config import CameraConfig, ConfigError, PlateFinderConfig, VehicleDetectorConfig, load_camera
from stopline.shared.messages import ViolationCandidate, to_json
from stopline.shared.records import ViolationRecord

# what --read-plates adds to each record: (record, candidate, evidence blobs) -> record
PlateStep = Callable[[ViolationRecord, ViolationCandidate, dict[str, bytes]], ViolationRecord]


def add_commands(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("detect", help="find red-light violations in a video (no broker)")
    d.add_argument("video", help="video file, folder of images, rtsp:// or http:// URL, or camera index")
    d.add_argument("--camera", required=True, help="camera YAML (stop line, signal, rules)")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--backend", choices=["onnx", "motion"], default="onnx",
                   help="onnx (default): the YOLO model gated by motion; motion: background subtraction only")
    d.add_argument("--model", help="YOLO .onnx model (INT8 or FP32); default: the shipped INT8 vehicle model")
    d.add_argument("--confidence", type=float, default=VehicleDetectorConfig.model_fields["confidence"].default,
                   help="score a detection needs to start a track (lower: more sensitive, more false tracks)")
    d.add_argument("--sign-key", help="Ed25519 private key (PEM) to sign candidates with")
    d.add_argument("--read-plates", action="store_true",
                   help="also read each violation's plate, as the plate finder and reader services do")
    d.add_argument("--realtime", action="store_true", help="pace a file at its frame rate (drops frames when behind)")
    d.add_argument("--max-frames", type=int, default=None)
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=run_detect)


def plate_step(camera: CameraConfig) -> PlateStep:
    """Choose the plate crops of a candidate (edge) and read them (gateway), in this process."""
    try:
        from stopline.shared.plates import PlateReader
        from stopline.shared.plates.choose import choose_plates
        from stopline.shared.plates.reading import read_plates
    except ImportError as e:
        raise ConfigError(f"--read-plates: the plate reader is not available here: {e}") from None
    reader = PlateReader(region=camera.region)
    finder_config = PlateFinderConfig()

    def step(record: ViolationRecord, vc: ViolationCandidate, blobs: dict[str, bytes]) -> ViolationRecord:
        found, found_blobs = choose_plates(vc, blobs, finder_config, camera=camera)
        result, _ = read_plates(found, found_blobs, reader, region=camera.region)
        if result.read is None:
            return record
        return record.model_copy(update={"plate": result.read.text, "plate_confidence": result.read.confidence,
                                         "plate_region": result.read.region})

    return step


def _open(spec: str, **kwargs):
    from stopline.shared.vision.sources import SourceError, open_source

    try:
        return open_source(spec, **kwargs)
    except SourceError as e:
        raise ConfigError(str(e)) from None


def _frame_count(spec: str) -> int:
    if "://" in spec or spec.isdigit() or Path(spec).is_dir():
        return 0
    cap = cv2.VideoCapture(spec)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return max(0, n)


def run_detect(args: argparse.Namespace) -> int:
    from stopline.services.vehicle_detector.pipeline import DetectorPipeline
    from stopline.shared.records import append_record
    from stopline.shared.signing import SigningError, load_private_key, sign_candidate
    from stopline.shared.vision.sources import ThreadedSource
    from stopline.shared.vision.yolo import ModelError

    camera = load_camera(args.camera)
    backend = args.backend
    try:
        det_cfg = VehicleDetectorConfig(backend=backend, model=args.model, confidence=args.confidence,
                                        realtime=args.realtime)
    except ValueError as e:
        raise ConfigError(f"detector options: {e}") from None
    signer = None
    if args.sign_key:
        try:
            key = load_private_key(args.sign_key)
        except SigningError as e:
            raise ConfigError(str(e)) from None
        signer = lambda cand: sign_candidate(cand, key)  # noqa: E731
    read_plate = plate_step(camera) if args.read_plates else None

    out = Path(args.out)
    (out / "evidence").mkdir(parents=True, exist_ok=True)
    (out / "candidates").mkdir(exist_ok=True)
    jsonl = out / "violations.jsonl"
    jsonl.write_text("")
    inner = _open(args.video, realtime=args.realtime, fps=camera.fps)
    try:
        pipeline = DetectorPipeline(camera, det_cfg, "local", signer, clock="video", fps=inner.fps or camera.fps)
    except ModelError as e:
        raise ConfigError(str(e)) from None
    source = ThreadedSource(inner, drop=args.realtime)
    total = _frame_count(args.video)
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(total=total or None, unit="frame", desc=camera.id, file=sys.stderr)
    found = 0
    t0 = time.perf_counter()

    def save(results) -> None:
        nonlocal found
        for vc, blobs in results:
            cand = vc.candidate
            names = []
            for name, data in blobs.items():
                fname = f"{cand.event_id}_{name}"
                (out / "evidence" / fname).write_bytes(data)
                names.append(fname)
            record = pipeline.record(cand.event_id).model_copy(update={"evidence": names})
            if read_plate is not None:
                record = read_plate(record, vc, blobs)
            (out / "candidates" / f"{cand.event_id}.json").write_text(json.dumps(to_json(vc), indent=1))
            append_record(jsonl, record)
            found += 1
            if bar is not None:
                bar.set_postfix(violations=found)

    try:
        for f in source:
            save(pipeline.process(f.image, f.index, f.timestamp, f.video_time_s))
            if bar is not None:
                bar.update(1)
            if args.max_frames is not None and pipeline.stats["frames"] >= args.max_frames:
                break
        save(pipeline.flush())
    finally:
        source.close()
        if bar is not None:
            bar.close()
    elapsed = time.perf_counter() - t0
    summary = {
        "video": args.video, "camera": camera.id, "backend": backend, "violations": found,
        "frames": pipeline.stats["frames"], "elapsed_s": round(elapsed, 3),
        "fps": round(pipeline.stats["frames"] / elapsed, 2) if elapsed > 0 else None,
        "pipeline": pipeline.stats, "source": inner.stats.as_dict(),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"{found} violation(s) in {pipeline.stats['frames']} frames ({summary['fps']} frames/s) -> {jsonl}")
    return 0
