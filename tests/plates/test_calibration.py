"""Confidence that means what it says: isotonic maps and the shipped map fitted without the
held-out photos."""

import json

import pytest

from stopline.shared.plates.calibration import CALIBRATION_FILE, Calibration, isotonic


def test_isotonic_is_monotone_and_humble():
    x, y = isotonic([0.1, 0.2, 0.3, 0.9, 0.95], [False, True, False, True, True])
    assert all(a <= b for a, b in zip(y, y[1:]))
    assert max(y) < 1.0  # one pseudo-observation: never certain


def test_engine_without_a_fit_reports_its_raw_score():
    assert Calibration()("other", 0.42) == pytest.approx(0.42)
    assert Calibration({"onnx": ([0.0, 1.0], [0.1, 0.9])})("onnx", 0.5) == pytest.approx(0.5)


def test_shipped_calibration_is_fitted_on_the_dev_photos_only():
    data = json.loads(CALIBRATION_FILE.read_text())
    assert "held-out" in data["note"] and "caltech-us" in data["note"]
    assert set(data["engines"]) == {"easyocr-onnx", "rapidocr"}  # the default engine and the fine-tuned recogniser
