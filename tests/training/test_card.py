"""Model cards tell how a model was made: the dataset command and every training stage."""

import json
from pathlib import Path

import pytest

from stopline.training.card import write_detector_card
from stopline.training.dataset import build_datasets, summarise
from stopline.training.train import training_stages

pytest.importorskip("matplotlib")


def _row(variant: str, map50: float, ms: float, size: int) -> dict:
    return {"variant": variant, "file": f"vehicle-{variant}.onnx", "input": "320x192", "mAP50": map50, "mAP50-95": map50 / 2,
            "precision": 0.8, "recall": 0.7, "latency_ms": ms, "latency_p90_ms": ms, "threads": 2,
            "size_bytes": size, "size_mb": size / 1e6, "per_class_AP50": {"car": 0.9, "bus": 0.5},
            "by_size": {"small": {"mAP50": 0.3, "instances": 40}, "large": {"mAP50": 0.97, "instances": 60}}}


def test_card_lists_the_dataset_command_and_each_training_stage(tmp_path: Path):
    data = tmp_path / "data"
    (data / "vehicles" / "images" / "test").mkdir(parents=True)
    (data / "dataset.json").write_text(json.dumps({"command": "stopline models dataset --frames 1800 --seed 2"}))
    runs = tmp_path / "runs"
    runs.mkdir()
    scratch = {"recipe": {"arch": "yolov8n-relu.yaml", "hours": 1.1}, "device": "cpu", "train_minutes": 66.2,
               "fine_tuned_from": None, "data": "old/vehicles/data.yaml", "parent": None}
    tuned = {"recipe": {"arch": "yolov8n-relu.yaml", "hours": 1.15, "imgsz": 256}, "device": "cpu",
             "train_minutes": 69.0, "fine_tuned_from": "runs/vehicle.pt", "data": "new/vehicles/data.yaml",
             "parent": scratch}
    (runs / "vehicle.train.json").write_text(json.dumps(tuned))
    assert [s["train_minutes"] for s in training_stages(tuned)] == [66.2, 69.0]

    card = write_detector_card("vehicle", [_row("fp32", 0.80, 20.0, 12_000_000), _row("int8", 0.79, 14.0, 3_300_000)],
                               tmp_path / "cards", data_root=data, runs_dir=runs).read_text()
    assert "Built with `stopline models dataset --frames 1800 --seed 2`." in card
    assert "1. from scratch (`yolov8n-relu.yaml`" in card and "66.2 min" in card
    assert "2. fine-tuned from `runs/vehicle.pt`, 69.0 min" in card and "`new/vehicles/data.yaml`" in card
    assert "| int8 | 0.70x | 0.28x | 1.00 |" in card
    # the input the shipped file takes (a wide one here), not the square training size
    assert "letterboxed to 320x192" in card and "--imgsz 320x192" in card
    assert "int8: AP50 per class: car 0.90, bus 0.50;" in card
    assert "small 0.30 (40 objects), large 0.97 (60 objects)" in card
    metrics = json.loads((tmp_path / "cards" / "vehicle.metrics.json").read_text())
    assert metrics["training"]["parent"]["train_minutes"] == 66.2


def test_dataset_records_how_it_was_built(tmp_path: Path):
    s = build_datasets(tmp_path, 30, seed=5, size=(320, 180))
    assert s.spec == {"frames": 30, "seed": 5, "size": "320x180",
                      "command": "stopline models dataset --frames 30 --seed 5 --size 320x180"}
    assert summarise(tmp_path).spec == s.spec
