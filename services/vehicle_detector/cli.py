"""``stopline camera`` (snapshot, check, keygen): help for the person setting a camera up.

``stopline detect``, the edge pipeline in one process, is composed above the services in
``stopline.detect``."""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

from stopline.shared.config import CameraConfig, ConfigError, load_camera

log = logging.getLogger(__name__)


def add_commands(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser("camera", help="camera set-up helpers")
    csub = c.add_subparsers(dest="camera_command", metavar="ACTION")
    s = csub.add_parser("snapshot", help="save one frame of a source as PNG")
    s.add_argument("source")
    s.add_argument("--out", required=True)
    s.add_argument("--frame", type=int, default=0, help="frame number to save (files)")
    s.set_defaults(func=_snapshot)
    k = csub.add_parser("check", help="draw the configured geometry on a frame, print the signal over time "
                        "and propose ignore_zones for overlay text")
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
    from stopline.shared.plates.overlays import OVERLAY_SAMPLES, draw_ignore_zones, propose_ignore_zones, zones_yaml

    path = Path(args.camera)
    camera = load_camera(path)
    spec = _camera_source(camera, path, args.source)
    src = _open(spec)
    signal = None
    counts: Counter[str] = Counter()
    first = None
    last_line = None
    samples: list[tuple[float, np.ndarray]] = []  # frames spread over the run: overlays stay put
    try:
        for f in src:
            if first is None:
                first = f.image
                signal = make_signal(camera.signal, (f.image.shape[1], f.image.shape[0]), camera.frame_size)
            if f.video_time_s > args.seconds:
                break
            if not samples or f.video_time_s - samples[-1][0] >= args.seconds / OVERLAY_SAMPLES:
                samples.append((f.video_time_s, f.image))
            if camera.signal.mode == "mqtt":
                continue  # phases come from the controller, nothing to read in the frame
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
    proposed = propose_ignore_zones([im for _, im in samples], camera.frame_size)
    cv2.imwrite(out, draw_ignore_zones(draw_geometry(first, camera), [z.polygon for z in camera.ignore_zones],
                                       proposed, camera.frame_size))
    if proposed:
        print(f"text that stays in place over {len(samples)} frames (overlay? the plate reader should never "
              f"look there); add to {path.name} after checking them on {out}:\n{zones_yaml(proposed)}")
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
