"""What the desk queued, as ``violations.jsonl`` records, scored against a scene's truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import create_engine, func, select

from stopline.shared.config import load_site
from stopline.shared.messages import PlateResult
from stopline.shared.records import ViolationRecord


def _engine(site_path: str | Path):
    from stopline.services.violation_desk.db import normalise_url

    return create_engine(normalise_url(load_site(site_path).database.url))


def count_violations(site_path: str | Path) -> int:
    from stopline.services.violation_desk.models import Violation

    engine = _engine(site_path)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Violation)).scalar_one())
    except Exception:  # table not there yet while the desk starts
        return 0
    finally:
        engine.dispose()


def record_from_message(message: PlateResult) -> ViolationRecord:
    cand = message.candidate
    crossing = next((e for e in cand.evidence if e.role == "crossing"), cand.evidence[0])
    video_t = cand.video_time_s if cand.video_time_s is not None else 0.0
    read = message.read
    return ViolationRecord(
        event_id=cand.event_id, camera=cand.camera, track_id=cand.track_id,
        vehicle_class=cand.vehicle_class, frame_index=cand.frame_index, video_time_s=video_t,
        box=crossing.vehicle_box or (0.0, 0.0, 0.0, 0.0),
        decided_video_s=video_t + max(0.0, cand.detected_at - cand.crossed_at),
        signal_phase=cand.signal_phase, time_into_red_s=cand.time_into_red_s,
        plate=read.text if read else None, plate_confidence=read.confidence if read else None,
        plate_region=read.region if read else None, evidence=[e.name for e in cand.evidence],
    )


def desk_records(site_path: str | Path) -> tuple[list[ViolationRecord], list[float]]:
    """Records of everything queued, and each one's latency from crossing to queued (s)."""
    from stopline.services.violation_desk.models import Violation

    engine = _engine(site_path)
    records, latencies = [], []
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Violation.message_json, Violation.received_at, Violation.crossed_at))
            for message_json, received_at, crossed_at in rows:
                message = PlateResult.model_validate(json.loads(message_json))
                records.append(record_from_message(message))
                latencies.append(received_at - crossed_at)
    finally:
        engine.dispose()
    return records, latencies


def compare_with_truth(site_path: str | Path, truth_path: str | Path) -> dict[str, Any]:
    from stopline.sim.evaluate import score
    from stopline.sim.truth import load_truth

    records, latencies = desk_records(site_path)
    report = score(load_truth(truth_path), records)
    out = report.to_dict()
    out["summary"] = report.summary()
    lat = np.array(latencies) if latencies else np.array([np.nan])
    out["end_to_end_latency_s"] = {"p50": float(np.percentile(lat, 50)), "p95": float(np.percentile(lat, 95)),
                                   "n": len(latencies)}
    return out
