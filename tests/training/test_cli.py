"""``stopline models``: bad input gets a clear error (exit 2) naming what is wrong."""

import importlib.util
import subprocess
import sys

import pytest

from stopline.models import HERE as MODELS


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stopline", "models", *args], capture_output=True, text=True,
                          timeout=300)


def test_help_lists_every_step():
    out = run("--help").stdout
    for step in ("dataset", "train", "export", "prune", "quantize", "evaluate", "ocr", "build"):
        assert step in out


def test_train_without_a_dataset_says_how_to_make_one(tmp_path):
    r = run("train", "vehicle", "--data", str(tmp_path / "nothing"))
    assert r.returncode == 2
    assert "stopline models dataset" in r.stderr


@pytest.mark.skipif(importlib.util.find_spec("ultralytics") is not None, reason="train extra installed here")
def test_train_without_the_train_extra_names_it(tmp_path):
    (tmp_path / "vehicles").mkdir()
    (tmp_path / "vehicles" / "data.yaml").write_text("names: {0: car}\n")
    r = run("train", "vehicle", "--data", str(tmp_path))
    assert r.returncode == 2
    assert "stopline[train]" in r.stderr


@pytest.mark.parametrize("size", ["300x192", "320x", "0"])
def test_export_rejects_an_input_size_the_network_cannot_take(tmp_path, size):
    (tmp_path / "v.pt").write_bytes(b"")
    r = run("export", str(tmp_path / "v.pt"), "--out", str(tmp_path / "v.onnx"), "--imgsz", size)
    assert r.returncode == 2 and "--imgsz" in r.stderr and size in r.stderr, r.stderr


def test_export_input_sizes():
    from stopline.training.export import parse_imgsz

    assert parse_imgsz("256") == (256, 256)
    assert parse_imgsz("320x192") == (320, 192)  # width x height, as frame sizes are written


def test_static_quantisation_needs_calibration_frames(tmp_path):
    r = run("quantize", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "q.onnx"))
    assert r.returncode == 2 and "--data" in r.stderr


def test_quantising_a_missing_model_names_it(tmp_path):
    (tmp_path / "images" / "train").mkdir(parents=True)
    r = run("quantize", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "q.onnx"), "--data", str(tmp_path))
    assert r.returncode == 2 and "m.onnx" in r.stderr


def test_evaluate_rejects_a_malformed_variant(tmp_path):
    (tmp_path / "vehicles" / "images" / "test").mkdir(parents=True)
    (tmp_path / "vehicles" / "data.yaml").write_text("names: {0: car}\n")
    (tmp_path / "vehicles" / "images" / "test" / "a.jpg").write_bytes(b"")
    r = run("evaluate", "vehicle", "--data", str(tmp_path), "--variant", "int8")
    assert r.returncode == 2 and "NAME=FILE.onnx" in r.stderr


def test_evaluate_writes_card_metrics_and_plot(tmp_path):
    """End to end on a freshly simulated scene with the shipped INT8 vehicle model."""
    model = MODELS / "vehicle-int8.onnx"
    if not model.is_file():
        pytest.skip("vehicle-int8.onnx not built")
    from stopline.sim import export_yolo

    data = tmp_path / "data"
    export_yolo(data, 20, seed=4242)  # one scene: its 20 frames land in train; use them as the test split
    (data / "vehicles" / "images" / "test").rmdir()
    (data / "vehicles" / "images" / "train").rename(data / "vehicles" / "images" / "test")
    (data / "vehicles" / "labels" / "test").rmdir()
    (data / "vehicles" / "labels" / "train").rename(data / "vehicles" / "labels" / "test")
    cards = tmp_path / "cards"
    r = run("evaluate", "vehicle", "--data", str(data), "--variant", f"int8={model}", "--runs", "3",
            "--threads", "1", "--card-dir", str(cards), "--runs-dir", str(tmp_path / "none"))
    assert r.returncode == 0, r.stderr[-2000:]
    import json

    m = json.loads((cards / "vehicle.metrics.json").read_text())
    row = m["variants"][0]
    assert row["variant"] == "int8" and row["images"] == 20 and 0.0 <= row["mAP50"] <= 1.0
    assert row["latency_ms"] > 0 and row["size_bytes"] == model.stat().st_size
    assert (cards / "vehicle.png").stat().st_size > 1000
    assert "| int8 |" in (cards / "vehicle.md").read_text()
