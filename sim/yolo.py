"""YOLO detection datasets from synthetic scenes, for the model toolchain.

``DIR/vehicles/`` (classes car, truck, bus, motorcycle; vans/SUVs are labelled car) and ``DIR/plates/`` (class plate),
each with ``images/{train,val,test}``, ``labels/{train,val,test}`` and an ultralytics
``data.yaml``. Frames come from many short scenes (seeds, lighting, lane counts, plate regions
vary); a scene's frames all go to one split, so near-duplicate frames never straddle splits.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from .frames import FrameRenderer
from .scene import build_scene
from .spec import SceneSpec, SignalTimings
from .vehicles import CLASSES

# Detection classes: a van/SUV is a car to enforcement (the runtime maps it so anyway), and merging
# them spares a nano model a fine distinction it cannot make at 256 px.
DETECT_CLASSES = ("car", "truck", "bus", "motorcycle")
DETECT_CLASS_OF = {c: DETECT_CLASSES.index("car" if c == "van" else c) for c in CLASSES}

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
MIN_VEHICLE_VIS = 0.25
MIN_PLATE_VIS = 0.8
MIN_PLATE_W = 12.0
# Many short scenes rather than a few long ones: consecutive samples of a scene are near-duplicates,
# and the val/test splits (10 % of the scenes each) must span lighting, lanes and regions to be a
# stable measure (60 frames a scene left 3 test scenes).
STRIDE = 10  # frames between samples within a scene
PER_SCENE = 20


@dataclass
class ExportStats:
    images: dict[str, int]
    vehicle_labels: int
    plate_labels: int
    scenes: int


def scene_specs(frames: int, seed: int, size: tuple[int, int]) -> list[tuple[SceneSpec, str, int]]:
    """(spec, split, frames to take) for every scene of an export, deterministic in ``seed``."""
    k = max(1, math.ceil(frames / PER_SCENE))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2024]))
    order = rng.permutation(k)
    n_val = n_test = max(1, round(0.1 * k)) if k >= 3 else 0
    split_of = {}
    for rank, i in enumerate(order):
        split_of[int(i)] = "val" if rank < n_val else ("test" if rank < n_val + n_test else "train")
    out = []
    left = frames
    for i in range(k):
        take = min(PER_SCENE, left)
        left -= take
        lighting = str(rng.choice(["day", "dusk", "night"], p=[0.5, 0.2, 0.3]))
        timings = SignalTimings(offset_s=float(rng.uniform(0.0, SignalTimings().cycle_s)))  # any phase at frame 0
        spec = SceneSpec(
            seed=seed * 100_000 + i, duration_s=(take * STRIDE + 1) / 25.0, size=size, fps=25.0,
            lighting=lighting,  # type: ignore[arg-type]
            lanes=int(rng.integers(2, 5)), region=str(rng.choice(["us", "eu", "mixed"])),  # type: ignore[arg-type]
            arrivals_per_lane_h=float(rng.uniform(600, 1100)), red_runner_share=0.2,
            warmup_s=float(rng.uniform(10, 40)), signal=timings,
        )
        out.append((spec, split_of[i], take))
    return out


def _yolo_line(cls: int, box: tuple[float, float, float, float], w: int, h: int) -> str:
    x1, y1, x2, y2 = box
    return f"{cls} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} {(y2 - y1) / h:.6f}"


def _write_data_yaml(root: Path, names: list[str]) -> None:
    data = {"path": str(root.resolve()), "train": "images/train", "val": "images/val", "test": "images/test",
            "names": {i: n for i, n in enumerate(names)}}
    (root / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def export_yolo(out_dir: str | Path, frames: int, seed: int = 0, size: tuple[int, int] = (1280, 720),
                progress: Callable[[int, int], None] | None = None) -> ExportStats:
    if frames <= 0:
        raise ValueError("--frames must be > 0")
    root = Path(out_dir)
    for task in ("vehicles", "plates"):
        for sub in ("images", "labels"):
            for split in SPLITS:
                (root / task / sub / split).mkdir(parents=True, exist_ok=True)
    _write_data_yaml(root / "vehicles", list(DETECT_CLASSES))
    _write_data_yaml(root / "plates", ["plate"])
    jpeg_rng = np.random.default_rng(np.random.SeedSequence([seed, 99]))
    images = {s: 0 for s in SPLITS}
    n_veh = n_plate = done = 0
    plans = scene_specs(frames, seed, size)
    backgrounds: dict = {}
    for si, (spec, split, take) in enumerate(plans):
        scene = build_scene(spec)
        renderer = FrameRenderer(scene, backgrounds)
        cls_of = {t.agent.vid: DETECT_CLASS_OF[t.agent.vclass] for t in scene.tracks}
        w, h = spec.size
        for k in range(take):
            f = k * STRIDE
            img, entries = renderer.render(f)
            name = f"s{spec.seed:08d}_f{f:05d}"
            q = int(jpeg_rng.integers(60, 96))  # compression varies like real cameras' settings
            ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
            if not ok:
                raise RuntimeError("JPEG encoding failed")
            veh_lines, plate_lines = [], []
            for e in entries:
                x1, y1, x2, y2 = e["box"]
                if e["vis"] >= MIN_VEHICLE_VIS and x2 - x1 >= 4 and y2 - y1 >= 4:
                    veh_lines.append(_yolo_line(cls_of[e["id"]], (x1, y1, x2, y2), w, h))
                pq = e.get("plate")
                if pq is not None and (e.get("plate_vis") or 0) >= MIN_PLATE_VIS:
                    pa = np.array(pq)
                    px1, py1 = np.clip(pa.min(axis=0), 0, [w, h])
                    px2, py2 = np.clip(pa.max(axis=0), 0, [w, h])
                    if px2 - px1 >= MIN_PLATE_W:
                        plate_lines.append(_yolo_line(0, (px1, py1, px2, py2), w, h))
            veh_img = root / "vehicles" / "images" / split / f"{name}.jpg"
            veh_img.write_bytes(jpg.tobytes())
            plate_img = root / "plates" / "images" / split / f"{name}.jpg"
            plate_img.unlink(missing_ok=True)
            try:
                os.link(veh_img, plate_img)  # same picture, second dataset: no second copy on disk
            except OSError:
                shutil.copyfile(veh_img, plate_img)
            for task, lines in (("vehicles", veh_lines), ("plates", plate_lines)):
                (root / task / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            images[split] += 1
            n_veh += len(veh_lines)
            n_plate += len(plate_lines)
            done += 1
            if progress:
                progress(done, frames)
        log.info("scene %d/%d (%s, %s): %d frames", si + 1, len(plans), spec.lighting, split, take)
    return ExportStats(images, n_veh, n_plate, len(plans))
