"""``stopline eval``: score a run's ``violations.jsonl`` against a scene's ``truth.json``.

Matching: a found violation matches a true one when the camera is the same, the found
``video_time_s`` is within ``tolerance_s`` of the true crossing time, and the found box overlaps
the true vehicle's box at the found frame (IoU >= 0.3, or the found box's centre inside it).
Pairs are made one-to-one, greedily by time difference. Plates compare in normalised form
(A-Z0-9); character accuracy is 1 - edit distance / max(len) over matched pairs with a true
plate (an unread plate scores 0). Detection delay = ``decided_video_s`` - true crossing time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from stopline.shared.records import ViolationRecord

from .plates import normalise
from .truth import Truth


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_accuracy(truth: str, found: str | None) -> float:
    t, f = normalise(truth), normalise(found or "")
    if not t and not f:
        return 1.0
    return max(0.0, 1.0 - edit_distance(t, f) / max(len(t), len(f)))


def iou(a: tuple[float, ...] | list[float], b: tuple[float, ...] | list[float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Match:
    vehicle_id: int
    event_id: str
    true_time_s: float
    found_time_s: float
    delay_s: float
    true_plate: str
    found_plate: str | None
    plate_exact: bool
    char_accuracy: float


@dataclass
class EvalReport:
    camera: str
    true_violations: int
    found_violations: int
    true_positives: int
    false_positives: int
    false_negatives: int
    precision: float
    recall: float
    f1: float
    plate_exact_rate: float | None
    char_accuracy: float | None
    delay_p50_s: float | None
    delay_p95_s: float | None
    delay_max_s: float | None
    tolerance_s: float
    matches: list[Match] = field(default_factory=list)
    missed: list[int] = field(default_factory=list)  # vehicle ids of unmatched true violations
    spurious: list[str] = field(default_factory=list)  # event ids of unmatched found ones
    other_cameras: int = 0  # records for other cameras, ignored

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{100 * x:.1f}%"

        def sec(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.2f}s"

        lines = [
            f"camera {self.camera}: {self.true_violations} true, {self.found_violations} found violations",
            f"  precision {pct(self.precision)}  recall {pct(self.recall)}  F1 {pct(self.f1)}"
            f"  (TP {self.true_positives}, FP {self.false_positives}, FN {self.false_negatives})",
            f"  plates: exact {pct(self.plate_exact_rate)}  character accuracy {pct(self.char_accuracy)}",
            f"  detection delay: p50 {sec(self.delay_p50_s)}  p95 {sec(self.delay_p95_s)}  max {sec(self.delay_max_s)}",
        ]
        if self.missed:
            lines.append(f"  missed vehicles: {self.missed}")
        if self.spurious:
            lines.append(f"  spurious events: {self.spurious}")
        if self.other_cameras:
            lines.append(f"  ignored {self.other_cameras} record(s) for other cameras")
        return "\n".join(lines)


def _box_ok(found: tuple[float, float, float, float], true_box: tuple[float, float, float, float] | None,
            min_iou: float) -> bool:
    if true_box is None:
        return False
    if iou(found, true_box) >= min_iou:
        return True
    cx, cy = (found[0] + found[2]) / 2, (found[1] + found[3]) / 2
    return true_box[0] <= cx <= true_box[2] and true_box[1] <= cy <= true_box[3]


def score(truth: Truth, records: Iterable[ViolationRecord], tolerance_s: float = 1.0,
          min_iou: float = 0.3) -> EvalReport:
    """Match found violations to true ones and compute the figures ``stopline eval`` prints."""
    recs = list(records)
    mine = [r for r in recs if r.camera == truth.camera]
    vehicles = {v.id: v for v in truth.vehicles}
    pairs: list[tuple[float, int, int]] = []
    for ti, tv in enumerate(truth.violations):
        veh = vehicles.get(tv.vehicle_id)
        for ri, r in enumerate(mine):
            dt = abs(r.video_time_s - tv.time_s)
            if dt > tolerance_s:
                continue
            point = veh.at(r.frame_index) if veh is not None else None
            if _box_ok(r.box, point.box if point else None, min_iou):
                pairs.append((dt, ti, ri))
    pairs.sort()
    used_t: set[int] = set()
    used_r: set[int] = set()
    matches: list[Match] = []
    for dt, ti, ri in pairs:
        if ti in used_t or ri in used_r:
            continue
        used_t.add(ti)
        used_r.add(ri)
        tv, r = truth.violations[ti], mine[ri]
        found_plate = normalise(r.plate) if r.plate else None
        matches.append(Match(
            vehicle_id=tv.vehicle_id, event_id=r.event_id, true_time_s=tv.time_s, found_time_s=r.video_time_s,
            delay_s=round(r.decided_video_s - tv.time_s, 4), true_plate=tv.plate, found_plate=found_plate,
            plate_exact=found_plate == normalise(tv.plate), char_accuracy=round(char_accuracy(tv.plate, found_plate), 4),
        ))
    tp = len(matches)
    fp = len(mine) - tp
    fn = len(truth.violations) - tp
    precision = tp / len(mine) if mine else (1.0 if not truth.violations else 0.0)
    recall = tp / len(truth.violations) if truth.violations else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    plated = [m for m in matches if m.true_plate]
    delays = np.array([m.delay_s for m in matches], dtype=np.float64)
    return EvalReport(
        camera=truth.camera, true_violations=len(truth.violations), found_violations=len(mine),
        true_positives=tp, false_positives=fp, false_negatives=fn,
        precision=round(precision, 4), recall=round(recall, 4), f1=round(f1, 4),
        plate_exact_rate=round(sum(m.plate_exact for m in plated) / len(plated), 4) if plated else None,
        char_accuracy=round(float(np.mean([m.char_accuracy for m in plated])), 4) if plated else None,
        delay_p50_s=round(float(np.percentile(delays, 50)), 4) if len(delays) else None,
        delay_p95_s=round(float(np.percentile(delays, 95)), 4) if len(delays) else None,
        delay_max_s=round(float(delays.max()), 4) if len(delays) else None,
        tolerance_s=tolerance_s, matches=matches,
        missed=[tv.vehicle_id for i, tv in enumerate(truth.violations) if i not in used_t],
        spurious=[r.event_id for i, r in enumerate(mine) if i not in used_r],
        other_cameras=len(recs) - len(mine),
    )


def write_report(path: str | Path, report: EvalReport) -> None:
    Path(path).write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")


def perfect_records(truth: Truth, delay_s: float = 0.5) -> list[ViolationRecord]:
    """What a flawless pipeline would write for this truth (for tests and demos of eval)."""
    out = []
    for k, tv in enumerate(truth.violations):
        veh = truth.vehicle(tv.vehicle_id)
        pt = veh.at(tv.frame)
        if pt is None:
            raise ValueError(f"vehicle {tv.vehicle_id} has no track point at its crossing frame {tv.frame}")
        out.append(ViolationRecord(
            event_id=f"perfect-{k}", camera=truth.camera, track_id=tv.vehicle_id, vehicle_class=veh.class_,
            frame_index=tv.frame, video_time_s=tv.time_s, box=pt.box, decided_video_s=tv.time_s + delay_s,
            signal_phase=tv.phase, time_into_red_s=tv.time_into_red_s, plate=veh.plate_display,
            plate_confidence=1.0, plate_region=veh.region,
        ))
    return out
