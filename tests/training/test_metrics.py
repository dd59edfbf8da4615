"""The mAP/precision/recall that the model cards report: checked on cases with known answers."""

import numpy as np
import pytest

from stopline.training.metrics import ImageResult, box_iou, evaluate

NAMES = ["car", "bus"]
# the 101-point trapezoid of a perfect P/R curve (what ultralytics reports for a perfect model too)
PERFECT = 0.995


def img(pred, scores, pcls, true, tcls):
    return ImageResult(np.array(pred, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                       np.array(pcls, np.int64), np.array(true, np.float32).reshape(-1, 4), np.array(tcls, np.int64))


def test_perfect_detections_score_one():
    truth = [[10, 10, 50, 50], [60, 60, 120, 100]]
    m = evaluate([img(truth, [0.9, 0.8], [0, 1], truth, [0, 1])], NAMES)
    assert m.map50 == pytest.approx(PERFECT, abs=1e-3)
    assert m.map50_95 == pytest.approx(PERFECT, abs=1e-3)
    assert m.precision == pytest.approx(1.0) and m.recall == pytest.approx(1.0)


def test_loose_boxes_pass_at_iou_half_but_not_at_strict_thresholds():
    truth = [[0, 0, 100, 100]]
    pred = [[0, 0, 100, 140]]  # IoU 0.714
    m = evaluate([img(pred, [0.9], [0], truth, [0])], NAMES)
    assert m.map50 == pytest.approx(PERFECT, abs=1e-3)
    # matched at 0.50 .. 0.70 (5 of 10 thresholds)
    assert m.map50_95 == pytest.approx(0.5 * PERFECT, abs=0.02)


def test_wrong_class_is_a_miss_and_a_false_positive():
    truth = [[0, 0, 100, 100]]
    m = evaluate([img(truth, [0.9], [1], truth, [0])], NAMES)
    assert m.map50 == 0.0
    assert m.recall == 0.0


def test_missed_object_halves_recall_and_ap():
    truth = [[0, 0, 10, 10], [50, 50, 60, 60]]
    m = evaluate([img([[0, 0, 10, 10]], [0.9], [0], truth, [0, 0])], NAMES)
    assert m.recall == pytest.approx(0.5, abs=0.01)
    # ultralytics' interpolation: precision falls linearly from the last recall to (1, 0)
    assert m.map50 == pytest.approx(0.75, abs=0.02)
    assert m.precision == pytest.approx(1.0)


def test_false_positive_ranked_above_true_positive_lowers_ap_not_recall():
    truth = [[0, 0, 10, 10]]
    pred = [[100, 100, 110, 110], [0, 0, 10, 10]]
    m = evaluate([img(pred, [0.95, 0.5], [0, 0], truth, [0])], NAMES)
    assert m.recall == pytest.approx(1.0)
    assert m.map50 == pytest.approx(0.5, abs=0.02)


def test_duplicate_detection_counts_once():
    truth = [[0, 0, 10, 10]]
    pred = [[0, 0, 10, 10], [0, 0, 10, 10]]
    m = evaluate([img(pred, [0.9, 0.8], [0, 0], truth, [0])], NAMES)
    assert m.map50 == pytest.approx(PERFECT, abs=1e-3)  # the duplicate ranks below the only true positive
    assert m.n_instances == 1


def test_class_absent_from_truth_is_not_averaged_in():
    truth = [[0, 0, 10, 10]]
    m = evaluate([img(truth, [0.9], [0], truth, [0])], NAMES)
    assert list(m.per_class_ap50) == ["car"]


def test_box_iou():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float32)
    assert box_iou(a, b)[0] == pytest.approx([1.0, 1 / 3, 0.0])


def test_by_size_scores_each_object_size_on_its_own():
    large, small = [0, 0, 200, 100], [300, 300, 310, 310]  # areas 20000 and 100 px
    m = evaluate([img([large], [0.9], [0], [large, small], [0, 0])], NAMES)
    assert m.map50 == pytest.approx(0.75, abs=0.02)  # the missed small car costs the whole
    assert m.by_size["large"].map50 == pytest.approx(PERFECT, abs=1e-3)  # ... not the large objects
    assert m.by_size["small"].map50 == 0.0
    assert (m.by_size["large"].instances, m.by_size["small"].instances) == (1, 1)
    assert "medium" not in m.by_size  # no such object: no figure rather than a made-up 0


def test_by_size_ignores_detections_of_other_sizes_but_not_false_ones_of_its_own():
    large = [0, 0, 200, 100]
    tiny_fp, large_fp = [300, 300, 305, 305], [300, 300, 500, 400]
    m = evaluate([img([tiny_fp, large], [0.95, 0.9], [0, 0], [large], [0])], NAMES)
    assert m.by_size["large"].map50 == pytest.approx(PERFECT, abs=1e-3)
    m = evaluate([img([large_fp, large], [0.95, 0.9], [0, 0], [large], [0])], NAMES)
    assert m.by_size["large"].map50 == pytest.approx(0.5, abs=0.02)
