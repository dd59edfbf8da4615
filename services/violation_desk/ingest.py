"""Ingestion of plate results: idempotent by ``candidate.event_id``, one transaction per call,
batched for load (one registry query and one multi-row insert per table for a whole batch).

Each violation's images are written as one file (a bundle) to the content-addressed store and
flushed *before* the transaction commits; a crash in between leaves only an unreferenced file
(the retention purge removes those), never a row that names a missing file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from stopline.shared.bus import RetryLater
from stopline.shared.messages import PlateResult, sha256_hex

from . import audit
from .desk import Desk, desk_of
from .integrity import EvidenceError, RegisteredKey, Verdict, combine, undecodable, verify_signature
from .lookup import LookupQuery, clone_check, lookup_many
from .models import AuditEntry, Camera, CameraKey, Clip, Evidence, LookupCandidate, Violation
from .plates import normalise_plate
from .sql import insert_ignore, insert_rows


MISSING = "0" * 64  # the SHA-256 and file of an image that did not arrive
IMAGE_KINDS = ("evidence", "plate", "crop")  # other attachments (e.g. a clip) are not images


@dataclass(frozen=True)
class IngestOutcome:
    status: str  # created | duplicate
    event_id: str
    camera: str
    violation_id: int | None
    integrity: str | None = None
    queued_as: str = "queued"  # the new violation's status: queued, escalated or not_enforceable

    @property
    def created(self) -> bool:
        return self.status == "created"


@dataclass
class _Image:
    kind: str
    name: str
    role: str | None
    data: bytes | None
    declared: str | None
    meta: dict[str, Any]
    actual: str | None = None  # SHA-256 of the bytes received
    offset: int = 0  # in the violation's bundle

    def __post_init__(self) -> None:
        self.actual = sha256_hex(self.data) if self.data is not None else None

    @property
    def intact(self) -> bool:
        return self.data is not None and (self.declared is None or self.declared == self.actual)


def _images(result: PlateResult, blobs: dict[str, bytes]) -> list[_Image]:
    declared_att = {a.name: a.sha256 for a in result.attachments}
    images: list[_Image] = []
    for ev in result.candidate.evidence:
        images.append(_Image("evidence", ev.name, ev.role, blobs.get(ev.name), ev.sha256, ev.model_dump(
            mode="json", include={"frame_index", "captured_at", "vehicle_box", "signal_box", "signal_state"})))
    for p in result.plates:
        images.append(_Image("plate", p.name, None, blobs.get(p.name), p.sha256,
                             p.model_dump(mode="json", include={"source", "box", "score"})))
    named = {i.name for i in images}
    for r in [result.read, *result.reads]:
        if r is not None and r.crop and r.crop not in named:
            named.add(r.crop)
            images.append(_Image("crop", r.crop, None, blobs.get(r.crop), declared_att.get(r.crop),
                                 {"text": r.text, "source": r.source}))
    for name, data in blobs.items():  # keep every attachment: nothing received is dropped
        if name not in named:
            named.add(name)
            images.append(_Image("attachment", name, None, data, declared_att.get(name), {}))
    return images


def _bundle(images: list[_Image]) -> tuple[str, bytes]:
    """The violation's images as one file, their bytes one after the other (each image's
    ``offset`` is set), and the file's SHA-256; ``MISSING`` and no bytes when nothing arrived."""
    offset = 0
    for img in images:
        img.offset = offset
        offset += len(img.data or b"")
    data = b"".join(img.data for img in images if img.data)
    return (sha256_hex(data) if data else MISSING), data


def _content_type(name: str) -> str:
    return "image/png" if name.lower().endswith(".png") else "image/jpeg"


def ingest(target: Desk | Session, result: PlateResult, blobs: dict[str, bytes]) -> IngestOutcome:
    """Store one plate result; the same event id again is a ``duplicate`` and changes nothing."""
    return ingest_batch(target, [(result, blobs)])[0]


def ingest_batch(target: Desk | Session, items: Sequence[tuple[PlateResult, dict[str, bytes]]]) -> list[IngestOutcome]:
    """Store many results in one transaction. A database that is down raises ``RetryLater``."""
    if isinstance(target, Desk):
        desk = target
        try:
            with desk.session() as session, session.begin():
                outcomes = _ingest(desk, session, items)
        except (OperationalError, DBAPIError) as e:
            if isinstance(e, OperationalError) or e.connection_invalidated:
                raise RetryLater(f"database unavailable: {e.orig or e}") from e
            raise
    else:
        desk = desk_of(target)
        outcomes = _ingest(desk, target, items)
    return outcomes


def _ingest(desk: Desk, session: Session, items: Sequence[tuple[PlateResult, dict[str, bytes]]]) -> list[IngestOutcome]:
    received_at = time.time()
    # a batch may hold the same event twice (redelivery): the first one counts
    first_index: dict[str, int] = {}
    for i, (result, _) in enumerate(items):
        first_index.setdefault(result.candidate.event_id, i)
    unique = [i for i, (r, _) in enumerate(items) if first_index[r.candidate.event_id] == i]
    position = {i: k for k, i in enumerate(unique)}

    images = {i: _images(items[i][0], items[i][1]) for i in unique}
    for i in unique:  # evidence that cannot be shown is refused, never stored as intact
        bad = undecodable([(img.name, img.data) for img in images[i]
                           if img.kind in IMAGE_KINDS and img.data is not None])
        if bad:
            raise EvidenceError(f"event {items[i][0].candidate.event_id}: image(s) not decodable: {', '.join(bad)}")
    bundles = {i: _bundle(images[i]) for i in unique}
    desk.store.put_many([bundle for bundle in bundles.values() if bundle[1]])

    cameras = sorted({items[i][0].candidate.camera for i in unique})
    if cameras:
        session.execute(insert_ignore(session, Camera, [
            {"id": c, "name": "", "created_at": received_at} for c in cameras], ["id"]))
    keys: dict[str, list[RegisteredKey]] = {c: [] for c in cameras}
    for ck in session.scalars(select(CameraKey).where(CameraKey.camera_id.in_(cameras), CameraKey.revoked_at.is_(None))):
        keys[ck.camera_id].append(RegisteredKey(ck.key_id, ck.public_key_pem))

    # an evidence clip that came first and failed its check taints its violation too
    bad_clips = dict(session.execute(select(Clip.event_id, Clip.integrity_detail).where(
        Clip.event_id.in_([items[i][0].candidate.event_id for i in unique]), Clip.integrity == "tampered")).all())
    verdicts: dict[int, Verdict] = {}
    for i in unique:
        cand = items[i][0].candidate
        broken = [img.name + (" (missing)" if img.data is None else "") for img in images[i] if not img.intact]
        verdicts[i] = combine(verify_signature(cand, keys[cand.camera]), broken)
        if cand.event_id in bad_clips:
            verdicts[i] = Verdict("tampered", "; ".join(
                x for x in (verdicts[i].detail, f"clip: {bad_clips[cand.event_id]}") if x))

    queries = []
    for i in unique:
        read = items[i][0].read
        queries.append(LookupQuery(normalise_plate(read.text) or None if read else None,
                                   read.region if read else None, read.confidence if read else None))
    lookups = dict(zip(unique, lookup_many(session, queries, desk.auto_assign_confidence)))

    rows = []
    for i in unique:
        result = items[i][0]
        cand, read, found = result.candidate, result.read, lookups[i]
        verdict = verdicts[i]
        clone = clone_check(found.assigned, cand.vehicle_class, cand.vehicle_colour)
        rows.append(dict(
            event_id=cand.event_id, site=cand.site, camera_id=cand.camera, track_id=cand.track_id,
            vehicle_class=cand.vehicle_class, vehicle_colour=cand.vehicle_colour, lane=cand.lane,
            crossed_at=cand.crossed_at, detected_at=cand.detected_at, read_at=result.read_at,
            received_at=received_at, frame_index=cand.frame_index, video_time_s=cand.video_time_s,
            signal_phase=cand.signal_phase, time_into_red_s=cand.time_into_red_s, speed_px_s=cand.speed_px_s,
            plate_read=read.text[:32] if read else None, plate_confidence=read.confidence if read else None,
            plate_region=read.region[:16] if read else None, read_engine=read.engine[:32] if read else None,
            plate_norm=queries[position[i]].plate_norm, plate_corrected=False,
            vehicle_id=found.assigned.id if found.assigned else None, match_kind=found.match_kind,
            clone_flag=clone is not None, clone_reason=clone,
            integrity=verdict.integrity, integrity_detail=verdict.detail,
            # tampered evidence goes straight to a supervisor and can never be approved; the
            # camera marks a violation it cannot enforce (e.g. after a short amber): not queued
            status="escalated" if verdict.integrity == "tampered" else
            "not_enforceable" if cand.not_enforceable else "queued",
            message_json=result.model_dump_json(by_alias=True, exclude={"attachments"}),
        ))
    inserted: dict[str, int] = {}
    if rows:
        inserted = {eid: vid for vid, eid in insert_rows(
            session, Violation.__table__, rows, ["id", "event_id"], conflict=["event_id"])}

    evidence_rows, candidate_rows, audit_rows = [], [], []
    for i in unique:
        cand = items[i][0].candidate
        vid = inserted.get(cand.event_id)
        if vid is None:
            continue
        for pos, img in enumerate(images[i]):
            stored = img.data is not None and bundles[i][0] != MISSING
            evidence_rows.append(dict(
                violation_id=vid, position=pos, kind=img.kind, name=img.name[:200], role=img.role,
                sha256=img.actual or MISSING, declared_sha256=img.declared,
                file_sha256=bundles[i][0] if stored else MISSING, file_offset=img.offset if stored else 0,
                content_type=_content_type(img.name), size=len(img.data) if img.data is not None else 0,
                intact=img.intact, meta_json=json.dumps(img.meta)))
        for m in lookups[i].candidates:
            candidate_rows.append(dict(violation_id=vid, vehicle_id=m.vehicle.id, kind=m.kind, score=m.score))
        row = rows[position[i]]
        audit_rows.append(audit.row(None, "ingest", "violation", vid, None, {
            "event_id": cand.event_id, "camera": cand.camera, "integrity": verdicts[i].integrity,
            "plate": row["plate_norm"], "vehicle_id": row["vehicle_id"]}, at=received_at))
    insert_rows(session, Evidence.__table__, evidence_rows)
    insert_rows(session, LookupCandidate.__table__, candidate_rows)
    insert_rows(session, AuditEntry.__table__, audit_rows)

    outcomes = []
    for i, (result, _) in enumerate(items):
        cand = result.candidate
        vid = inserted.get(cand.event_id) if first_index[cand.event_id] == i else None
        if vid is not None:
            outcomes.append(IngestOutcome("created", cand.event_id, cand.camera, vid, verdicts[i].integrity,
                                          rows[position[i]]["status"]))
        else:
            outcomes.append(IngestOutcome("duplicate", cand.event_id, cand.camera, None))
    return outcomes
