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
# COCO's object sizes by box area in image pixels (its APs/APm/APl); a 1280x720 frame's vehicles
# at the stop line are large, the far end of the approach small
SIZES = {"small": (0.0, 32.0 ** 2), "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, float("inf"))}


@dataclass
class ImageResult:
    """One image: predicted boxes (xyxy, scores, classes) and the truth (xyxy, classes)."""

    pred_xyxy: np.ndarray
    pred_scores: np.ndarray
    pred_classes: np.ndarray
    true_xyxy: np.ndarray
    true_classes: np.ndarray


@dataclass
class SizeMetrics:
    map50: float
    instances: int


@dataclass
class DetectionMetrics:
    map50: float
    map50_95: float
    precision: float
    recall: float
    per_class_ap50: dict[str, float] = field(default_factory=dict)
    n_images: int = 0
    n_instances: int = 0
    by_size: dict[str, SizeMetrics] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"mAP50": round(self.map50, 4), "mAP50-95": round(self.map50_95, 4),
                "precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "per_class_AP50": {k: round(v, 4) for k, v in self.per_class_ap50.items()},
                "images": self.n_images, "instances": self.n_instances,
                "by_size": {k: {"mAP50": round(v.map50, 4), "instances": v.instances} for k, v in self.by_size.items()}}


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


def match_image(r: ImageResult, true_ignored: np.ndarray | None = None,
                thresholds: np.ndarray = IOU_THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """(tp, hit_ignored), each (n_pred, len(thresholds)) bool: is each prediction a true positive at
    each IoU threshold, or did it instead match a ground truth marked in ``true_ignored`` (such a
    prediction counts neither as a true nor as a false positive, as in COCO)."""
    n = len(r.pred_scores)
    tp = np.zeros((n, len(thresholds)), bool)
    hit_ignored = np.zeros_like(tp)
    if n == 0 or len(r.true_classes) == 0:
        return tp, hit_ignored
    ignored = np.zeros(len(r.true_classes), bool) if true_ignored is None else true_ignored
    iou = box_iou(r.pred_xyxy, r.true_xyxy)
    iou[r.pred_classes[:, None] != r.true_classes[None, :]] = 0.0
    order = np.argsort(-r.pred_scores, kind="stable")
    for t, thr in enumerate(thresholds):
        taken = np.zeros(len(r.true_classes), bool)
        for i in order:
            over = iou[i] >= thr
            cand = np.where(over & ~taken & ~ignored)[0]
            if cand.size:
                j = cand[np.argmax(iou[i, cand])]
                taken[j] = True
                tp[i, t] = True
            elif (over & ignored).any():
                hit_ignored[i, t] = True
    return tp, hit_ignored


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Area under the interpolated P/R curve (101 points, as COCO)."""
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([1.0], precision, [0.0]))
    mpre = np.flip(np.maximum.accumulate(np.flip(mpre)))
    x = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(x, mrec, mpre), x) if hasattr(np, "trapezoid")
                 else np.trapz(np.interp(x, mrec, mpre), x))


def _in_size(xyxy: np.ndarray, size: tuple[float, float]) -> np.ndarray:
    area = (xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1])
    return (area >= size[0]) & (area < size[1])


def _pool(results: list[ImageResult], n_classes: int, size: tuple[float, float] | None = None,
          thresholds: np.ndarray = IOU_THRESHOLDS):
    """All images' predictions sorted by score: tp and ignored (n, len(thresholds)), scores, classes;
    and the counted ground truth per class. With ``size`` (min, max box area in pixels) ground
    truth outside it is ignored, and so are unmatched predictions outside it (COCO's rule)."""
    tps, igns, scores, classes = [], [], [], []
    n_true = np.zeros(n_classes, np.int64)
    for r in results:
        t_ign = None if size is None else ~_in_size(r.true_xyxy, size)
        tp, ign = match_image(r, t_ign, thresholds)
        if size is not None:
            ign |= ~tp & ~_in_size(r.pred_xyxy, size)[:, None]
        counted = r.true_classes if t_ign is None else r.true_classes[~t_ign]
        n_true += np.bincount(counted.astype(np.int64), minlength=n_classes)[:n_classes]
        tps.append(tp)
        igns.append(ign)
        scores.append(r.pred_scores)
        classes.append(r.pred_classes)
    k = len(thresholds)
    tp = np.concatenate(tps) if tps else np.zeros((0, k), bool)
    ign = np.concatenate(igns) if igns else np.zeros((0, k), bool)
    sc = np.concatenate(scores) if scores else np.zeros(0)
    cl = np.concatenate(classes) if classes else np.zeros(0, np.int64)
    order = np.argsort(-sc, kind="stable")
    return tp[order], ign[order], sc[order], cl[order], n_true


def _pr(tp: np.ndarray, n_true: int) -> tuple[np.ndarray, np.ndarray]:
    """Recall and precision after each prediction (sorted by score) of one class at one threshold."""
    tpc = np.cumsum(tp)
    fpc = np.cumsum(~tp)
    return tpc / n_true, tpc / (tpc + fpc)


def evaluate(results: list[ImageResult], class_names: list[str],
             sizes: dict[str, tuple[float, float]] | None = None) -> DetectionMetrics:
    """mAP50, mAP50-95, P and R over all images; classes absent from the truth are skipped.
    ``sizes`` (default: COCO's small/medium/large areas) adds mAP50 per object size."""
    n = len(class_names)
    tp, _, sc, cl, n_true = _pool(results, n)
    grid = np.linspace(0, 1, 1000)
    ap = np.zeros((n, len(IOU_THRESHOLDS)))
    p_curve = np.zeros((n, grid.size))
    r_curve = np.zeros((n, grid.size))
    present = n_true > 0
    for c in range(n):
        m = cl == c
        if not present[c] or not m.any():
            continue
        for t in range(len(IOU_THRESHOLDS)):
            recall, precision = _pr(tp[m, t], n_true[c])
            ap[c, t] = average_precision(recall, precision)
            if t == 0:  # P and R at IoU 0.5 as functions of the score threshold (scores descend, so negate)
                r_curve[c] = np.interp(-grid, -sc[m], recall, left=0)
                p_curve[c] = np.interp(-grid, -sc[m], precision, left=1)
    if not present.any():
        return DetectionMetrics(0.0, 0.0, 0.0, 0.0, {}, len(results), 0)
    f1 = 2 * p_curve * r_curve / np.maximum(p_curve + r_curve, 1e-16)
    best = int(f1[present].mean(axis=0).argmax())
    return DetectionMetrics(
        map50=float(ap[present, 0].mean()),
        map50_95=float(ap[present].mean()),
        precision=float(p_curve[present, best].mean()),
        recall=float(r_curve[present, best].mean()),
        per_class_ap50={class_names[c]: float(ap[c, 0]) for c in range(n) if present[c]},
        n_images=len(results),
        n_instances=int(n_true.sum()),
        by_size={name: s for name, rng in (SIZES if sizes is None else sizes).items()
                 if (s := map50_for_size(results, n, rng)) is not None},
    )


def map50_for_size(results: list[ImageResult], n_classes: int, size: tuple[float, float]) -> SizeMetrics | None:
    """mAP50 over the objects whose box area is in ``size`` (COCO's APs/APm/APl method); None if
    the truth has no such object."""
    tp, ign, _, cl, n_true = _pool(results, n_classes, size, IOU_THRESHOLDS[:1])
    present = np.flatnonzero(n_true > 0)
    if not present.size:
        return None
    aps = []
    for c in present:
        keep = (cl == c) & ~ign[:, 0]
        aps.append(average_precision(*_pr(tp[keep, 0], n_true[c])) if keep.any() else 0.0)
    return SizeMetrics(map50=float(np.mean(aps)), instances=int(n_true.sum()))
