"""Train a YOLO nano detector (vehicles or plates) with ultralytics, from scratch or fine-tuned.

The recipe is sized for a 2-core CPU box (finishes well under an hour there) and uses the GPU
when one is present. From scratch means the model YAML with random weights: nothing downloads.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from .env import ToolchainError, device, torch_threads, ultralytics
from .jsonfile import read_json

log = logging.getLogger(__name__)


@dataclass
class Recipe:
    """Everything that decides a training run; written next to the weights and into the card."""

    # nano with ReLU (training/yolov8n-relu.yaml: faster on CPU, more INT8 gain); ultralytics'
    # own names (yolov8n.yaml, yolo11n.yaml) also work
    arch: str = "yolov8n-relu.yaml"
    imgsz: int = 256
    epochs: int = 30
    batch: int = 8  # more optimiser steps for the same compute: steps are what a short run lacks
    fraction: float = 1.0  # share of the training images used
    # wall-clock budget: ultralytics fits the epochs (and LR schedule) to it. The shipped models were
    # trained side by side, one thread each, for 1.1 h: the same CPU as 0.55 h each on both cores.
    hours: float | None = 0.55
    # augmentation: mosaic helps small objects; no vertical flips (cameras are upright)
    mosaic: float = 1.0
    close_mosaic: int = 2
    fliplr: float = 0.5
    hsv_h: float = 0.015
    hsv_s: float = 0.5
    hsv_v: float = 0.4
    scale: float = 0.4
    translate: float = 0.1
    # tilt: a plate seen from a pole is rotated and sheared a little
    degrees: float = 0.0
    shear: float = 0.0
    perspective: float = 0.0
    # validate every epoch and keep the best: worth it where the val split is real data
    val: bool = False
    # AdamW without warm-up: a CPU run has only a few hundred steps, and ultralytics' warm-up
    # takes at least 100 of them at a tiny learning rate
    lr0: float = 0.002
    optimizer: str = "AdamW"
    warmup_epochs: float = 0.0
    seed: int = 0
    workers: int = 1


RECIPES: dict[str, Recipe] = {
    # square 320 in training (mosaic); exported 320x192 (`--imgsz 320x192`) for 16:9 frames: 1.25x
    # the pixels per vehicle of a 256x256 input at 0.94x its compute
    "vehicle": Recipe(imgsz=320, val=True),
    # vehicle boxes grown 10 % / 15 % (~180 px): at 256 a typical plate is ~27 x 9 px
    "plate": Recipe(imgsz=256, scale=0.3, degrees=5.0, shear=2.0, perspective=0.0005, val=True),
}


def arch_path(arch: str) -> str:
    """A model YAML shipped beside this module (by file name), else ultralytics' own name."""
    local = Path(__file__).with_name(arch)
    return str(local) if local.is_file() else arch


def add_progress_log(model, label: str, every: int = 10) -> None:
    """One log line every ``every`` batches and per epoch (ultralytics' own bar is off).
    ``model``: an ultralytics YOLO or trainer (both have ``add_callback``)."""
    t0 = time.time()

    def on_batch(trainer) -> None:
        i = getattr(trainer, "_sl_batches", 0) + 1
        trainer._sl_batches = i
        if i % every == 0:
            loss_txt = _fmt_loss(getattr(trainer, "tloss", None))
            log.info("%s: epoch %d/%d, batch %d, %.0fs, loss %s", label, trainer.epoch + 1, trainer.epochs,
                     i, time.time() - t0, loss_txt)

    def on_epoch(trainer) -> None:
        log.info("%s: epoch %d/%d done at %.0fs", label, trainer.epoch + 1, trainer.epochs, time.time() - t0)

    model.add_callback("on_train_batch_end", on_batch)
    model.add_callback("on_train_epoch_end", on_epoch)


def _fmt_loss(loss: object) -> str:
    try:
        if isinstance(loss, dict):
            return ", ".join(f"{k} {float(v):.3f}" for k, v in loss.items())
        return ", ".join(f"{float(v):.3f}" for v in loss)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return str(loss)


def train(kind: str, data_yaml: Path, out_dir: Path, *, weights: Path | None = None,
          recipe: Recipe | None = None, threads: int | None = None) -> Path:
    """Train and return the path of the final ``.pt`` (copied to ``out_dir/KIND.pt``)."""
    if kind not in RECIPES:
        raise ToolchainError(f"unknown model kind {kind!r} (vehicle, plate)")
    if not data_yaml.is_file():
        raise ToolchainError(f"{data_yaml}: dataset YAML not found (run `stopline models dataset` first)")
    if weights is not None and (not weights.is_file() or weights.suffix != ".pt"):
        raise ToolchainError(f"{weights}: expected an ultralytics YOLO detection .pt to fine-tune from")
    r = recipe or RECIPES[kind]
    ul = ultralytics()
    dev = device()
    if dev == "cpu":
        torch_threads(threads)
    model = ul.YOLO(str(weights) if weights else arch_path(r.arch))
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    add_progress_log(model, kind)
    model.train(
        data=str(data_yaml.resolve()), imgsz=r.imgsz, epochs=r.epochs, batch=r.batch, device=dev,
        workers=r.workers, pretrained=weights is not None, amp=dev != "cpu", plots=False, val=r.val,
        cache="ram", seed=r.seed, fraction=r.fraction, time=r.hours, deterministic=False, optimizer=r.optimizer, lr0=r.lr0,
        warmup_epochs=r.warmup_epochs, mosaic=r.mosaic, close_mosaic=r.close_mosaic, fliplr=r.fliplr,
        flipud=0.0, hsv_h=r.hsv_h, hsv_s=r.hsv_s, hsv_v=r.hsv_v, scale=r.scale, translate=r.translate,
        degrees=r.degrees, shear=r.shear, perspective=r.perspective,
        project=str(out_dir.resolve() / "runs"), name=kind, exist_ok=True, verbose=False,
    )
    minutes = (time.time() - started) / 60
    last = Path(model.trainer.save_dir) / "weights" / "last.pt"
    best = Path(model.trainer.save_dir) / "weights" / "best.pt"
    src = best if best.is_file() else last
    if not src.is_file():
        raise ToolchainError(f"training finished without weights in {src.parent}")
    dst = out_dir / f"{kind}.pt"
    shutil.copy2(src, dst)
    info = {"recipe": asdict(r), "device": dev, "train_minutes": round(minutes, 1),
            "fine_tuned_from": str(weights) if weights else None, "data": str(data_yaml),
            # the record beside the weights fine-tuned from: the card tells the whole lineage
            "parent": read_json(weights.with_suffix(".train.json")) if weights else None}
    (out_dir / f"{kind}.train.json").write_text(json.dumps(info, indent=2))
    return dst


def training_stages(info: dict | None) -> list[dict]:
    """A training record and its parents, oldest first."""
    stages: list[dict] = []
    while info:
        stages.insert(0, info)
        info = info.get("parent")
    return stages
