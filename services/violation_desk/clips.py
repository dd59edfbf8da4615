"""Evidence clips at the desk: filed by event id, idempotent, checked like the stills.

A clip's verdict is its own: ``verified`` (camera signature valid against a registered key and
the bytes match the signed SHA-256), ``unverified`` (unsigned or unknown key) or ``tampered``.
A tampered clip also marks its violation tampered (and sends a queued one to a supervisor), as
a tampered still does; a clip that arrives first is checked the same way and waits for its
violation.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from stopline.shared.messages import ViolationClip, sha256_hex

from . import audit
from .desk import Desk
from .integrity import RegisteredKey, combine, verify_signature
from .models import CameraKey, Clip, Violation
from .sql import insert_ignore


def ingest_clips(desk: Desk, items: Sequence[tuple[ViolationClip, dict[str, bytes]]]) -> list[str]:
    """File each clip (the same event id again changes nothing); returns the verdicts."""
    received_at = time.time()
    datas = [blobs.get(msg.clip.name) for msg, blobs in items]
    desk.store.put_many([d for d in datas if d])
    verdicts = []
    with desk.session() as s, s.begin():
        for (msg, _), data in zip(items, datas):
            clip = msg.clip
            keys = [RegisteredKey(k.key_id, k.public_key_pem) for k in s.scalars(select(CameraKey).where(
                CameraKey.camera_id == clip.camera, CameraKey.revoked_at.is_(None)))]
            actual = sha256_hex(data) if data is not None else "0" * 64
            broken = [] if data is not None and actual == clip.sha256 else \
                [clip.name + (" (missing)" if data is None else "")]
            verdict = combine(verify_signature(clip, keys), broken)  # type: ignore[arg-type]
            inserted = s.execute(insert_ignore(s, Clip, [dict(
                event_id=clip.event_id, camera_id=clip.camera, received_at=received_at, name=clip.name[:200],
                content_type=clip.content_type, sha256=actual, declared_sha256=clip.sha256,
                size=len(data or b""), integrity=verdict.integrity, integrity_detail=verdict.detail,
                meta_json=msg.model_dump_json(by_alias=True, exclude={"attachments"}))], ["event_id"]))
            verdicts.append(verdict.integrity)
            if inserted.rowcount and verdict.integrity == "tampered":
                _flag_violation(s, clip.event_id, verdict.detail)
    return verdicts


def _flag_violation(s: Session, event_id: str, detail: str) -> None:
    v = s.scalar(select(Violation).where(Violation.event_id == event_id))
    if v is None:
        return
    before = {"integrity": v.integrity, "status": v.status}
    v.integrity = "tampered"
    v.integrity_detail = "; ".join(x for x in (v.integrity_detail, f"clip: {detail}") if x)
    if v.status == "queued":
        v.status = "escalated"
    audit.record(s, None, "clip_tampered", "violation", v.id, before,
                 {"integrity": v.integrity, "status": v.status, "detail": detail})


def clip_of(s: Session, v: Violation) -> Clip | None:
    return s.scalar(select(Clip).where(Clip.event_id == v.event_id))


def clip_meta(clip: Clip) -> dict:
    try:
        return json.loads(clip.meta_json).get("clip", {})
    except ValueError:
        return {}
