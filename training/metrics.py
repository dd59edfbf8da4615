"""Detection metrics (COCO-style mAP50 and mAP50-95, precision, recall) in plain numpy.

Same method as ultralytics' ``val``: per class, detections sorted by score are matched greedily to
unmatched ground truth of the same class at each IoU threshold; AP is the area under the
101-point interpolated precision/recall envelope. Precision and recall are read at the score
threshold that maximises the mean F1 over classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


@dataclass
class ImageResult:
    """One image: predicted boxes (xyxy, scores, classes) and the truth (xyxy, classes)."""

    pred_xyxy: np.ndarray
    pred_scores: np.ndarray
    pred_classes: np.ndarray
    true_xyxy: np.ndarray
    true_classes: np.ndarray


@dataclass
class DetectionMetrics:
    map50: float
    map50_95: float
    precision: float
    recall: float
    per_class_ap50: dict[str, float] = field(default_factory=dict)
    n_images: int = 0
    n_instances: int = 0

    def as_dict(self) -> dict[str, object]:
        return {"mAP50": round(self.map50, 4), "mAP50-95": round(self.map50_95, 4),
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "per_class_AP50": {k: round(v, 4) for k, v in self.per_class_ap50.items()},
                "images": self.n_images, "instances": self.n_instances}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float64)
    a = a.astype(np.float64)[:, None, :]
    b = b.astype(np.float64)[None, :, :]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / np.maximum(area_a + area_b - inter, 1e-12)


def match_image(r: ImageResult) -> np.ndarray:
    """(n_pred, 10) bool: is each prediction a true positive at each IoU threshold."""
    n = len(r.pred_scores)
    tp = np.zeros((n, len(IOU_THRESHOLDS)), bool)
    if n == 0 or len(r.true_classes) == 0:
        return tp
    iou = box_iou(r.pred_xyxy, r.true_xyxy)
    iou[r.pred_classes[:, None] != r.true_classes[None, :]] = 0.0
    order = np.argsort(-r.pred_scores, kind="stable")
    for t, thr in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(r.true_classes), bool)
        for i in order:
            cand = np.where((iou[i] >= thr) & ~taken)[0]
            if cand.size:
                j = cand[np.argmax(iou[i, cand])]
                taken[j] = True
                tp[i, t] = True
    return tp


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the interpolated P/R curve (101 points, as COCO)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, mrec, mpre), x) if hasattr(np, "trapezoid")
                 else np.trapz(np.interp(x, mrec, mpre), x))


def evaluate(results: list[ImageResult], class_names: list[str]) -> DetectionMetrics:
    """mAP50, mAP50-95, P and R over all images; classes absent from the truth are skipped."""
    tps, scores, classes = [], [], []
    n_true = np.zeros(len(class_names), np.int64)
    for r in results:
        tps.append(match_image(r))
        scores.append(r.pred_scores)
        classes.append(r.pred_classes)
        n_true += np.bincount(r.true_classes.astype(np.int64), minlength=len(class_names))[:len(class_names)]
    tp = np.concatenate(tps) if tps else np.zeros((0, 10), bool)
    sc = np.concatenate(scores) if scores else np.zeros(0)
    cl = np.concatenate(classes) if classes else np.zeros(0, np.int64)
    order = np.argsort(-sc, kind="stable")
    tp, sc, cl = tp[order], sc[order], cl[order]

    grid = np.linspace(0, 1, 1000)
    ap = np.zeros((len(class_names), len(IOU_THRESHOLDS)))
    p_curve = np.zeros((len(class_names), grid.size))
    r_curve = np.zeros((len(class_names), grid.size))
    present = n_true > 0
    for c in range(len(class_names)):
        if not present[c]:
            continue
        m = cl == c
        if not m.any():
            continue
        tpc = np.cumsum(tp[m], axis=0)
        fpc = np.cumsum(~tp[m], axis=0)
        recall = tpc / n_true[c]
        precision = tpc / (tpc + fpc)
        for t in range(len(IOU_THRESHOLDS)):
            ap[c, t] = average_precision(recall[:, t], precision[:, t])
        # P and R at IoU 0.5 as functions of the score threshold (scores descend, so negate)
        r_curve[c] = np.interp(-grid, -sc[m], recall[:, 0], left=0)
        p_curve[c] = np.interp(-grid, -sc[m], precision[:, 0], left=1)
    if not present.any():
        return DetectionMetrics(0.0, 0.0, 0.0, 0.0, {}, len(results), 0)
    f1 = 2 * p_curve * r_curve / np.maximum(p_curve + r_curve, 1e-16)
    best = int(f1[present].mean(axis=0).argmax())
    return DetectionMetrics(
        map50=float(ap[present, 0].mean()),
        map50_95=float(ap[present].mean()),
        precision=float(p_curve[present, best].mean()),
        recall=float(r_curve[present, best].mean()),
        per_class_ap50={class_names[c]: float(ap[c, 0]) for c in range(len(class_names)) if present[c]},
        n_images=len(results),
        n_instances=int(n_true.sum()),
    )
