"""``stopline detect`` (the edge pipeline in one process, no broker) and ``stopline camera``
(snapshot, check, keygen: help for the person setting a camera up)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from stopline.shared.config import CameraConfig, ConfigError, VehicleDetectorConfig, load_camera
from stopline.shared.messages import to_json

log = logging.getLogger(__name__)


def add_commands(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("detect", help="find red-light violations in a video (no broker)")
    d.add_argument("video", help="video file, folder of images, rtsp:// or http:// URL, or camera index")
    d.add_argument("--camera", required=True, help="camera YAML (stop line, signal, rules)")
    d.add_argument("--out", required=True, help="output folder")
    d.add_argument("--backend", choices=["onnx", "motion"], default="onnx",
                   help="onnx (default): the YOLO model gated by motion; motion: background subtraction only")
    d.add_argument("--model", help="YOLO .onnx model (INT8 or FP32); default: the shipped INT8 vehicle model")
    d.add_argument("--confidence", type=float, default=0.35)
    d.add_argument("--sign-key", help="Ed25519 private key (PEM) to sign candidates with")
    d.add_argument("--read-plates", action="store_true", help="also read plates (stopline.shared.plates)")
    d.add_argument("--realtime", action="store_true", help="pace a file at its frame rate (drops frames when behind)")
    d.add_argument("--max-frames", type=int, default=None)
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=_detect)

    c = sub.add_parser("camera", help="camera set-up helpers")
    csub = c.add_subparsers(dest="camera_command", metavar="ACTION")
    s = csub.add_parser("snapshot", help="save one frame of a source as PNG")
    s.add_argument("source")
    s.add_argument("--out", required=True)
    s.add_argument("--frame", type=int, default=0, help="frame number to save (files)")
    s.set_defaults(func=_snapshot)
    k = csub.add_parser("check", help="draw the configured geometry on a frame and print the signal over time")
    k.add_argument("--camera", required=True)
    k.add_argument("--source", help="default: the camera's source")
    k.add_argument("--out", default=None, help="PNG to write (default: <camera id>-check.png)")
    k.add_argument("--seconds", type=float, default=10.0, help="how long to read the signal")
    k.set_defaults(func=_check)
    g = csub.add_parser("keygen", help="create the camera's Ed25519 signing key (and .pub.pem)")
    g.add_argument("--out", required=True)
    g.add_argument("--force", action="store_true", help="overwrite an existing key")
    g.set_defaults(func=_keygen)
    c.set_defaults(func=lambda a: (c.print_help(), 1)[1])


# ----------------------------------------------------------------------------- helpers


def _camera_source(camera: CameraConfig, camera_path: Path, override: str | None) -> str:
    src = override or camera.source
    if not src:
        raise ConfigError(f"{camera_path}: no source; pass one")
    if "://" not in src and not src.isdigit() and not Path(src).is_absolute() and override is None:
        src = str((camera_path.parent / src).resolve())
    return src


def _open(spec: str, **kwargs):
    from stopline.shared.vision.sources import SourceError, open_source

    try:
        return open_source(spec, **kwargs)
    except SourceError as e:
        raise ConfigError(str(e)) from None


# ----------------------------------------------------------------------------- detect


def _detect(args: argparse.Namespace) -> int:
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
    reader = _plate_reader(camera) if args.read_plates else None

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
            if reader is not None:
                record = _with_plate(record, vc, blobs, reader, camera)
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


def _frame_count(spec: str) -> int:
    if "://" in spec or spec.isdigit() or Path(spec).is_dir():
        return 0
    cap = cv2.VideoCapture(spec)
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    return max(0, n)


def _plate_reader(camera: CameraConfig):
    try:
        from stopline.shared.plates import PlateReader
    except ImportError as e:
        raise ConfigError(f"--read-plates: the plate reader is not available here: {e}") from None
    return PlateReader(region=camera.region)


def _with_plate(record, vc, blobs, reader, camera: CameraConfig):
    """Run the plate finder + reader on this candidate, as the gateway would."""
    from stopline.services.plate_finder.choose import choose_plates
    from stopline.services.plate_reader.reading import read_plates
    from stopline.shared.config import PlateFinderConfig

    found, fblobs = choose_plates(vc, blobs, PlateFinderConfig())
    result, _ = read_plates(found, fblobs, reader, region=camera.region)
    if result.read is None:
        return record
    return record.model_copy(update={"plate": result.read.text, "plate_confidence": result.read.confidence,
                                     "plate_region": result.read.region})


# ----------------------------------------------------------------------------- camera


def _snapshot(args: argparse.Namespace) -> int:
    src = _open(args.source)
    frame = None
    try:
        for f in src:
            frame = f.image
            if f.index >= args.frame:
                break
    finally:
        src.close()
    if frame is None:
        print(f"stopline: {args.source}: no frame could be read", file=sys.stderr)
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(args.out, frame):
        print(f"stopline: cannot write {args.out}", file=sys.stderr)
        return 1
    print(f"{args.out}: {frame.shape[1]}x{frame.shape[0]}")
    return 0


def draw_geometry(frame: np.ndarray, camera: CameraConfig) -> np.ndarray:
    """The camera's stop line (red, with travel arrow), lanes (blue), exempt zones (yellow) and
    signal heads (magenta, labelled) drawn on a copy of ``frame``."""
    img = frame.copy()
    geo = camera.frame_size
    sx, sy = (img.shape[1] / geo[0], img.shape[0] / geo[1]) if geo else (1.0, 1.0)

    def pts(poly):
        return np.int32([[x * sx, y * sy] for x, y in poly])

    for lane in camera.lanes:
        cv2.polylines(img, [pts(lane.polygon)], True, (255, 128, 0), 2)
        c = pts(lane.polygon).mean(axis=0).astype(int)
        cv2.putText(img, f"{lane.id} ({lane.signal_group})", tuple(c), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 128, 0), 1)
    for zone in camera.exempt_zones:
        overlay = img.copy()
        cv2.fillPoly(overlay, [pts(zone.polygon)], (0, 220, 255))
        img = cv2.addWeighted(overlay, 0.25, img, 0.75, 0)
        cv2.polylines(img, [pts(zone.polygon)], True, (0, 220, 255), 2)
        cv2.putText(img, zone.name, tuple(pts(zone.polygon)[0]), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 220, 255), 1)
    line = pts(camera.stop_line)
    cv2.polylines(img, [line], False, (0, 0, 255), 3)
    mid = line.mean(axis=0)
    d = np.asarray(camera.travel_direction, float)
    d = d / np.linalg.norm(d) * 40
    cv2.arrowedLine(img, tuple(mid.astype(int)), tuple((mid + d).astype(int)), (0, 0, 255), 2, tipLength=0.3)
    for head in camera.signal.heads:
        x1, y1, x2, y2 = head.roi.xyxy()
        p1, p2 = (int(x1 * sx), int(y1 * sy)), (int(x2 * sx), int(y2 * sy))
        cv2.rectangle(img, p1, p2, (255, 0, 255), 1)
        cv2.putText(img, head.id, (p1[0], max(10, p1[1] - 3)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 0, 255), 1)
    return img


def _check(args: argparse.Namespace) -> int:
    from stopline.services.vehicle_detector.signal import RoiSignal, make_signal

    path = Path(args.camera)
    camera = load_camera(path)
    spec = _camera_source(camera, path, args.source)
    src = _open(spec)
    signal = None
    counts: Counter[str] = Counter()
    first = None
    last_line = None
    try:
        for f in src:
            if first is None:
                first = f.image
                signal = make_signal(camera.signal, (f.image.shape[1], f.image.shape[0]), camera.frame_size)
            if f.video_time_s > args.seconds:
                break
            if camera.signal.mode == "mqtt":
                break  # phases come from the controller, nothing to read in the frame
            signal.update(f.image, f.video_time_s)
            phase = signal.phase("main")
            counts[phase] += 1
            heads = " ".join(f"{k}={v}" for k, v in signal.readings.items()) if isinstance(signal, RoiSignal) else ""
            line = f"{phase} {heads}".strip()
            if line != last_line:  # print changes only, with the time they happened
                print(f"t={f.video_time_s:7.2f}s frame {f.index:6d}: {line}")
                last_line = line
    finally:
        src.close()
    if first is None:
        print(f"stopline: {spec}: no frame could be read", file=sys.stderr)
        return 1
    out = args.out or f"{camera.id}-check.png"
    cv2.imwrite(out, draw_geometry(first, camera))
    total = sum(counts.values())
    if total:
        print("signal over the run: " + ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in counts.most_common()))
    print(f"geometry drawn on {out}")
    return 0


def _keygen(args: argparse.Namespace) -> int:
    from stopline.shared.signing import SigningError, generate_key, key_id, public_key_path

    try:
        key = generate_key(args.out, overwrite=args.force)
    except SigningError as e:
        print(f"stopline: {e}", file=sys.stderr)
        return 1
    print(f"private key {args.out} (keep it on the camera), public key {public_key_path(args.out)} "
          f"(register it at the desk), key id {key_id(key)}")
    return 0
