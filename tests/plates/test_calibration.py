"""Confidence that means what it says: isotonic maps, short reads apart, and the shipped map
fitted without the held-out photos."""

import json

import pytest

from stopline.shared.plates.calibration import CALIBRATION_FILE, Calibration, fit, isotonic, read_group


def test_isotonic_is_monotone_and_humble():
    x, y = isotonic([0.1, 0.2, 0.3, 0.9, 0.95], [False, True, False, True, True])
    assert all(a <= b for a, b in zip(y, y[1:]))
    assert max(y) < 1.0  # one pseudo-observation: never certain


def test_short_reads_of_a_specific_layout_have_their_own_map():
    # full-length reads at raw 0.95 are right; short reads fitting a layout at the same raw score
    # are mostly a plate missing a character; a short vanity read ("any characters") is not
    assert read_group("RSV066", specific=True) == "short"
    assert read_group("2RSV066", specific=True) is None and read_group("GWAGEN", specific=False) is None
    raws = [0.95] * 30
    groups = [None] * 20 + ["short"] * 10
    right = [True] * 20 + [True] * 2 + [False] * 8
    cal = fit("rapidocr", raws, groups, right)
    assert cal("rapidocr", 0.95) > 0.9
    assert cal("rapidocr", 0.95, "short") < 0.5
    # an engine without a map for the group uses its overall map
    only = Calibration({"onnx": ([0.0, 1.0], [0.1, 0.9])})
    assert only("onnx", 0.5, "short") == pytest.approx(0.5)
    assert Calibration()("other", 0.42, "short") == pytest.approx(0.42)


def test_shipped_calibration_is_fitted_on_the_dev_photos_only():
    data = json.loads(CALIBRATION_FILE.read_text())
    assert "held-out" in data["note"] and "caltech-us" in data["note"]
    assert {"rapidocr", "rapidocr:short"} <= set(data["engines"])
