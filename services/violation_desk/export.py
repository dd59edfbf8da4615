"""Export of approved violations for the citation system, as CSV or JSON (streamed in batches)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .models import Violation

FIELDS = ("event_id", "camera", "crossed_at", "signal_phase", "time_into_red_s", "plate", "plate_read",
          "plate_region", "plate_confidence", "plate_corrected", "vehicle_class", "vehicle_colour", "registration",
          "registered_make", "registered_model", "registered_colour", "owner_name", "owner_address", "integrity",
          "decided_at", "decided_by", "evidence_sha256")
# ``registration``: the owner fields come from an assigned registration, or the reviewer found none
ASSIGNED, NONE_FOUND, NOT_ASSIGNED = "assigned", "no registration found", "none assigned"
BATCH = 500


def _iso(t: float | None) -> str | None:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).isoformat() if t is not None else None


def _registration(v: Violation) -> str:
    if v.vehicle is not None:
        return ASSIGNED
    return NONE_FOUND if v.match_kind == "unregistered" else NOT_ASSIGNED  # approved before this rule


def record(v: Violation) -> dict[str, Any]:
    """One approved violation: the plate in force (a reviewer's correction) beside the plate the
    camera read, and where the owner fields come from."""
    veh = v.vehicle
    return {
        "event_id": v.event_id, "camera": v.camera_id, "crossed_at": _iso(v.crossed_at),
        "signal_phase": v.signal_phase, "time_into_red_s": round(v.time_into_red_s, 3),
        "plate": v.plate_norm, "plate_read": v.plate_read, "plate_region": v.plate_region,
        "plate_confidence": v.plate_confidence, "plate_corrected": v.plate_corrected,
        "vehicle_class": v.vehicle_class, "vehicle_colour": v.vehicle_colour, "registration": _registration(v),
        "registered_make": veh.make if veh else None, "registered_model": veh.model if veh else None,
        "registered_colour": veh.colour if veh else None, "owner_name": veh.owner_name if veh else None,
        "owner_address": veh.owner_address if veh else None, "integrity": v.integrity,
        "decided_at": _iso(v.decided_at), "decided_by": v.decider.username if v.decider else None,
        "evidence_sha256": [e.sha256 for e in v.evidence if e.kind == "evidence"],
    }


def approved(session: Session, since: float | None = None, until: float | None = None) -> Iterator[dict[str, Any]]:
    last_id = 0
    while True:
        q = (select(Violation).where(Violation.status == "approved", Violation.id > last_id)
             .options(selectinload(Violation.evidence), selectinload(Violation.vehicle),
                      selectinload(Violation.decider))
             .order_by(Violation.id).limit(BATCH))
        if since is not None:
            q = q.where(Violation.decided_at >= since)
        if until is not None:
            q = q.where(Violation.decided_at < until)
        rows = list(session.scalars(q))
        if not rows:
            return
        for v in rows:
            yield record(v)
        last_id = rows[-1].id


def to_csv(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=FIELDS)
    w.writeheader()
    for r in records:
        w.writerow(r | {"evidence_sha256": " ".join(r["evidence_sha256"])})
        if buf.tell() > 64_000:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def to_json(records: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    first = True
    for r in records:
        yield ("" if first else ",\n") + json.dumps(r)
        first = False
    yield "]\n"
