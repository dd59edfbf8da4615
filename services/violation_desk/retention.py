"""Retention: purge rejected violations (and evidence files no longer referenced) after N days."""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import audit
from .desk import Desk
from .models import Clip, Evidence, Violation

BATCH = 500


@dataclass
class PurgeReport:
    violations: int = 0
    files: int = 0


def purge_rejected(desk: Desk, days: int, now: float | None = None) -> PurgeReport:
    """Delete rejected violations decided more than ``days`` ago, in batches of ``BATCH``."""
    if days < 1:
        raise ValueError("retention needs at least 1 day")
    cutoff = (time.time() if now is None else now) - days * 86400
    report = PurgeReport()
    while True:
        with desk.session() as s, s.begin():
            rows = s.execute(select(Violation.id, Violation.event_id).where(
                Violation.status == "rejected", Violation.decided_at < cutoff).limit(BATCH)).all()
            if not rows:
                break
            ids = [r.id for r in rows]
            files = set(s.scalars(select(Evidence.file_sha256).where(Evidence.violation_id.in_(ids))))
            events = [r.event_id for r in rows]  # their clips go with them
            files |= set(s.scalars(select(Clip.sha256).where(Clip.event_id.in_(events))))
            s.execute(delete(Clip).where(Clip.event_id.in_(events)))
            s.execute(delete(Violation).where(Violation.id.in_(ids)))  # evidence rows cascade
            still_used = _referenced(s, files)
            orphaned = files - still_used
            for r in rows:
                audit.record(s, None, "violation.purge", "violation", r.id, {"event_id": r.event_id}, None)
            report.violations += len(ids)
        # files go only after the rows that named them are gone for good, and only if no
        # violation ingested meanwhile names the same bytes
        with desk.session() as s:
            still = _referenced(s, orphaned)
        for h in orphaned - still:
            if desk.store.exists(h):
                desk.store.delete(h)
                report.files += 1
    return report


def _referenced(session: Session, files: set[str]) -> set[str]:
    """Those of ``files`` that some evidence row still names."""
    if not files:
        return set()
    return set(session.scalars(select(Evidence.file_sha256).where(Evidence.file_sha256.in_(files)))) | \
        set(session.scalars(select(Clip.sha256).where(Clip.sha256.in_(files))))
