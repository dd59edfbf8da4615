"""YOLO datasets from real labelled photos, and data specs that mix them with the synthetic ones.

* Vehicles: a YOLO export of real traffic-camera images (``train``/``valid``/``test`` folders,
  classes named in its ``data.yaml``) is mapped onto stopline's classes by name
  (``motobike`` -> ``motorcycle``; signal states and stop lines are dropped).
* Plates: photos with a ``NAME.txt`` line ``file x y w h text [corners]`` (the openalpr benchmark
  format) become one-class YOLO labels. Which photos are held out is decided by a hash of
  ``region/stem`` (:func:`plate_split`), so the split never depends on the order or number of
  files and the same photo is held out in every tool that scores plates.
* Real training photos get extra copies with what real cameras do to a plate (blur, low
  resolution, JPEG, night/IR, tilt, partial occlusion): :func:`camera_augment`.

Images are linked, not copied: the sources stay where their licences keep them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

from .env import ToolchainError

VEHICLE_NAMES = ["car", "truck", "bus", "motorcycle"]
VEHICLE_ALIASES = {"car": "car", "truck": "truck", "bus": "bus", "motorcycle": "motorcycle",
                   "motorbike": "motorcycle", "motobike": "motorcycle", "van": "car"}
SPLIT_DIRS = {"train": "train", "valid": "val", "val": "val", "test": "test"}


def plate_split(region: str, stem: str) -> str:
    """``"test"`` for a fixed 20 % of photos (never used for training or tuning), ``"val"`` for
    10 % (model selection), else ``"train"``; by a hash of ``region/stem``."""
    bucket = int(hashlib.sha256(f"{region}/{stem}".encode()).hexdigest(), 16) % 10
    return "test" if bucket < 2 else "val" if bucket == 2 else "train"


@dataclass(frozen=True)
class PlatePhoto:
    image: Path
    box: tuple[int, int, int, int] | None  # x, y, w, h; None where the plate is unreadable (N/A)
    text: str


def read_plate_photos(folder: Path) -> list[PlatePhoto]:
    """Every annotated photo in an openalpr-style folder (``NAME.txt`` names its image)."""
    photos = []
    for txt in sorted(folder.glob("*.txt")):
        if txt.name.upper().startswith(("LICENSE", "README")):
            continue
        fields = txt.read_text().strip().split("\t")
        if len(fields) < 6:
            raise ToolchainError(f"{txt}: expected 'file x y w h text', got {txt.read_text()[:80]!r}")
        x, y, w, h = (int(float(v)) for v in fields[1:5])
        text = fields[5].strip()
        unreadable = text.upper() == "N/A" or w <= 0 or h <= 0
        photos.append(PlatePhoto(folder / fields[0], None if unreadable else (x, y, w, h), text))
    return photos


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    os.symlink(src.resolve(), dst)


def camera_augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random mix of what a roadside camera does to a plate photo; boxes stay valid (no
    geometric change larger than a few pixels)."""
    out = img
    h, w = out.shape[:2]
    if rng.random() < 0.5:  # low resolution: down and up again
        f = rng.uniform(0.25, 0.6)
        small = cv2.resize(out, (max(8, int(w * f)), max(8, int(h * f))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:  # motion or focus blur
        k = int(rng.integers(2, 6)) * 2 + 1
        if rng.random() < 0.5:
            kernel = np.zeros((k, k), np.float32)
            kernel[k // 2, :] = 1.0 / k
            out = cv2.filter2D(out, -1, kernel)
        else:
            out = cv2.GaussianBlur(out, (k, k), 0)
    if rng.random() < 0.35:  # night / infrared: dark, grey, noisy, sometimes inverted contrast curve
        grey = cv2.cvtColor(out, cv2.COLOR_BGR2GRAY).astype(np.float32)
        grey = grey * rng.uniform(0.3, 0.7) + rng.normal(0, rng.uniform(3, 12), grey.shape)
        if rng.random() < 0.3:
            grey = 255 * (grey / 255).clip(0, 1) ** 0.5
        out = cv2.cvtColor(grey.clip(0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)
    if rng.random() < 0.3:  # partial occlusion: a bar across a part of the image
        y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
        cv2.rectangle(out if out is not img else (out := out.copy()), (x0, y0),
                      (x0 + int(w * rng.uniform(0.05, 0.2)), y0 + int(h * rng.uniform(0.05, 0.2))),
                      tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    q = int(rng.integers(15, 60))  # JPEG artefacts, always
    ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else out


def build_plate_dataset(plates_root: Path, out: Path, regions: list[str], *, copies: int = 2,
                        seed: int = 0) -> dict[str, int]:
    """One-class YOLO dataset in ``out`` from ``plates_root/REGION`` folders; each training photo
    also gets ``copies`` camera-augmented copies. Returns images per split."""
    rng = np.random.default_rng(seed)
    counts = {"train": 0, "val": 0, "test": 0}
    for region in regions:
        folder = plates_root / region
        if not folder.is_dir():
            raise ToolchainError(f"{folder}: plate folder not found")
        for p in read_plate_photos(folder):
            img = cv2.imread(str(p.image))
            if img is None:
                raise ToolchainError(f"{p.image}: cannot read image")
            h, w = img.shape[:2]
            split = plate_split(region, p.image.stem)
            label = ""
            if p.box is not None:
                x, y, bw, bh = p.box
                label = f"0 {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} {bw / w:.6f} {bh / h:.6f}\n"
            name = f"{region}_{p.image.stem}"
            _link(p.image, out / "images" / split / f"{name}{p.image.suffix.lower()}")
            (out / "labels" / split).mkdir(parents=True, exist_ok=True)
            (out / "labels" / split / f"{name}.txt").write_text(label)
            counts[split] += 1
            if split != "train":
                continue
            for c in range(copies):
                cv2.imwrite(str(out / "images" / split / f"{name}_aug{c}.jpg"), camera_augment(img, rng))
                (out / "labels" / split / f"{name}_aug{c}.txt").write_text(label)
                counts[split] += 1
    _write_yaml(out / "data.yaml", out, {"train": "images/train", "val": "images/val", "test": "images/test"},
                ["plate"])
    return counts


def build_vehicle_dataset(src: Path, out: Path, unstretch: float | None = 16 / 9) -> dict[str, int]:
    """Map a real YOLO vehicle export (``src/{train,valid,test}``, ``src/data.yaml``) onto
    stopline's classes. Returns images per split.

    Dataset exporters often stretch camera frames to squares; ``unstretch`` (width / height)
    gives square images their camera's shape back (normalised labels do not change), so the
    model sees vehicles as the edge's letterboxed 16:9 input shows them."""
    spec = yaml.safe_load((src / "data.yaml").read_text())
    names = spec["names"] if isinstance(spec["names"], list) else [spec["names"][k] for k in sorted(spec["names"])]
    mapping = {i: VEHICLE_NAMES.index(VEHICLE_ALIASES[n]) for i, n in enumerate(names) if n in VEHICLE_ALIASES}
    if not mapping:
        raise ToolchainError(f"{src}/data.yaml: no vehicle class among {names}")
    counts: dict[str, int] = {}
    for folder, split in SPLIT_DIRS.items():
        images = sorted((src / folder / "images").glob("*.jpg")) if (src / folder).is_dir() else []
        for img in images:
            label = src / folder / "labels" / f"{img.stem}.txt"
            rows = []
            for line in (label.read_text().splitlines() if label.is_file() else []):
                parts = line.split()
                if len(parts) >= 5 and int(parts[0]) in mapping:
                    rows.append(" ".join([str(mapping[int(parts[0])])] + parts[1:5]))
            dst = out / "images" / split / img.name
            frame = cv2.imread(str(img)) if unstretch else None
            if frame is not None and frame.shape[0] == frame.shape[1]:
                dst.parent.mkdir(parents=True, exist_ok=True)
                w = frame.shape[1]
                cv2.imwrite(str(dst), cv2.resize(frame, (w, round(w / unstretch)), interpolation=cv2.INTER_AREA),
                            [cv2.IMWRITE_JPEG_QUALITY, 95])
            else:
                _link(img, dst)
            (out / "labels" / split / f"{img.stem}.txt").parent.mkdir(parents=True, exist_ok=True)
            (out / "labels" / split / f"{img.stem}.txt").write_text("\n".join(rows) + ("\n" if rows else ""))
            counts[split] = counts.get(split, 0) + 1
    _write_yaml(out / "data.yaml", out, {"train": "images/train", "val": "images/val", "test": "images/test"},
                VEHICLE_NAMES)
    return counts


def mixed_spec(out: Path, names: list[str], train: list[tuple[Path, int]], val: Path, test: Path) -> Path:
    """A data YAML that trains on several datasets (``(root, repeats)``: a small real set is
    listed more than once so that it is not drowned by the synthetic one) and selects and tests
    on ``val`` / ``test`` (dataset roots; their ``images/val`` and ``images/test``)."""
    train_dirs = [str((root / "images" / "train").resolve()) for root, n in train for _ in range(n)]
    _write_yaml(out, None, {"train": train_dirs, "val": str((val / "images" / "val").resolve()),
                            "test": str((test / "images" / "test").resolve())}, names)
    return out


def _write_yaml(path: Path, root: Path | None, splits: dict[str, object], names: list[str]) -> None:
    data: dict[str, object] = {"path": str(root.resolve())} if root else {}
    data.update(splits)
    data["names"] = dict(enumerate(names))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
