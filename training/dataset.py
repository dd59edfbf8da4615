"""YOLO datasets from the synthetic intersection.

``build_datasets`` runs the simulator's export (``DIR/vehicles`` and ``DIR/plates``: full frames,
split train/val/test by scene, day, dusk and night) and derives ``DIR/plate-crops``: the plate
detector runs on the region around one vehicle (its box widened by 10 % a side and 15 % up and
down), so it is trained on exactly those crops, where a plate is big enough to see, with the
plate boxes moved into crop coordinates. A tighter region than a whole-scene pass keeps plates
~9 px tall or more at 256 px input, which the stride-8 head needs.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from stopline.shared.imaging import plate_roi

from .env import ToolchainError
from .jsonfile import read_json

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
MIN_VEHICLE_W = 48  # px: smaller vehicles' plates are unreadable anyway


SPEC_FILE = "dataset.json"  # how the export was made (frames, seed, size): cited by the model cards


@dataclass
class DatasetSummary:
    root: Path
    images: dict[str, dict[str, int]]
    labels: dict[str, int]
    spec: dict[str, object] | None = None


def read_yolo(label: Path, w: int, h: int) -> np.ndarray:
    """(N, 5) class, x1, y1, x2, y2 in pixels."""
    if not label.is_file():
        return np.zeros((0, 5))
    rows = [list(map(float, ln.split()[:5])) for ln in label.read_text().splitlines() if ln.strip()]
    if not rows:
        return np.zeros((0, 5))
    a = np.array(rows)
    cx, cy, bw, bh = a[:, 1] * w, a[:, 2] * h, a[:, 3] * w, a[:, 4] * h
    return np.stack([a[:, 0], cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1)


CROP_LIMITS = {"train": 2000, "val": 300, "test": 600}  # crops per split (a CPU-sized set)


def _crop_candidates(export_root: Path, split: str) -> list[tuple[Path, tuple[int, int, int, int], list[str]]]:
    """(frame, ROI, YOLO label lines) for every vehicle ROI worth a training image."""
    out = []
    for img_path in sorted((export_root / "vehicles" / "images" / split).glob("*.jpg")):
        img = cv2.imread(str(img_path))
        if img is None:
            raise ToolchainError(f"{img_path}: cannot read image")
        h, w = img.shape[:2]
        vehicles = read_yolo(export_root / "vehicles" / "labels" / split / f"{img_path.stem}.txt", w, h)
        plates = read_yolo(export_root / "plates" / "labels" / split / f"{img_path.stem}.txt", w, h)
        for v, vb in enumerate(vehicles):
            if vb[3] - vb[1] < MIN_VEHICLE_W:
                continue
            rx1, ry1, rx2, ry2 = plate_roi(tuple(vb[1:]), (h, w))
            cw, ch = rx2 - rx1, ry2 - ry1
            lines = []
            for p in plates:  # every plate (mostly) inside the crop is labelled
                px1, py1 = max(p[1], rx1), max(p[2], ry1)
                px2, py2 = min(p[3], rx2), min(p[4], ry2)
                full = (p[3] - p[1]) * (p[4] - p[2])
                if px2 <= px1 or py2 <= py1 or (px2 - px1) * (py2 - py1) < 0.6 * full:
                    continue
                lines.append(f"0 {((px1 + px2) / 2 - rx1) / cw:.6f} {((py1 + py2) / 2 - ry1) / ch:.6f} "
                             f"{(px2 - px1) / cw:.6f} {(py2 - py1) / ch:.6f}")
            out.append((img_path, (rx1, ry1, rx2, ry2), lines))
    return out


def derive_plate_crops(export_root: Path, out: Path, limits: dict[str, int] | None = None,
                       seed: int = 0) -> dict[str, int]:
    """Vehicle-ROI crops with the plates inside them, at most ``limits[split]`` per split (a
    seeded sample: consecutive frames of a scene are near-duplicates anyway); returns counts.
    Vehicles whose plate is hidden stay in as negatives."""
    limits = limits or CROP_LIMITS
    rng = np.random.default_rng(seed)
    counts = {s: 0 for s in SPLITS}
    for split in SPLITS:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        cands = _crop_candidates(export_root, split)
        if len(cands) > limits.get(split, len(cands)):
            pick = np.sort(rng.choice(len(cands), limits[split], replace=False))
            cands = [cands[i] for i in pick]
        cache: dict[Path, np.ndarray] = {}
        for i, (img_path, (rx1, ry1, rx2, ry2), lines) in enumerate(cands):
            if img_path not in cache:
                cache.clear()
                cache[img_path] = cv2.imread(str(img_path))
            name = f"{img_path.stem}_r{i:05d}"
            cv2.imwrite(str(out / "images" / split / f"{name}.jpg"), cache[img_path][ry1:ry2, rx1:rx2],
                        [cv2.IMWRITE_JPEG_QUALITY, 92])
            (out / "labels" / split / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
            counts[split] += 1
    data = {"path": str(out.resolve()), "train": "images/train", "val": "images/val", "test": "images/test",
            "names": {0: "plate"}}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return counts


def build_datasets(root: Path, frames: int, seed: int = 0, size: tuple[int, int] = (1280, 720)) -> DatasetSummary:
    """Simulator export into ``root`` plus the derived plate-crop set."""
    from stopline.sim import export_yolo

    if frames < 30:
        raise ToolchainError("--frames must be at least 30 (train, val and test need whole scenes)")
    if not (root / "vehicles" / "data.yaml").is_file():
        export_yolo(root, frames, seed=seed, size=size)
        spec = {"frames": frames, "seed": seed, "size": f"{size[0]}x{size[1]}",
                "command": f"stopline models dataset --frames {frames} --seed {seed} --size {size[0]}x{size[1]}"}
        (root / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n")
    else:
        log.info("%s already holds an export; deriving only", root)
    crops = derive_plate_crops(root, root / "plate-crops")
    return summarise(root, crops)


def summarise(root: Path, crops: dict[str, int] | None = None) -> DatasetSummary:
    images, labels = {}, {}
    for task in ("vehicles", "plates", "plate-crops"):
        if not (root / task).is_dir():
            continue
        images[task] = {s: len(list((root / task / "images" / s).glob("*.jpg"))) for s in SPLITS}
        labels[task] = sum(len([ln for ln in f.read_text().splitlines() if ln.strip()])
                           for f in (root / task / "labels").rglob("*.txt"))
    return DatasetSummary(root, images, labels, read_json(root / SPEC_FILE))


DATA_YAML = {"vehicle": "vehicles/data.yaml", "plate": "plate-crops/data.yaml"}


def data_yaml(root: Path, kind: str) -> Path:
    """The data YAML of ``kind`` in a dataset root, or ``root`` itself where it is a YAML file
    (a mixed spec from ``stopline models real-data``)."""
    if root.suffix in (".yaml", ".yml"):
        if not root.is_file():
            raise ToolchainError(f"{root}: data YAML not found")
        return root
    p = root / DATA_YAML[kind]
    if not p.is_file():
        raise ToolchainError(f"{p}: not found; build the datasets first: stopline models dataset --out {root}")
    return p


def class_names(yaml_path: Path) -> list[str]:
    names = yaml.safe_load(yaml_path.read_text())["names"]
    return [names[k] for k in sorted(names)] if isinstance(names, dict) else list(names)
