"""Evidence views derived from the signed record: the annotated copy of each image, the clip
(with byte ranges, so the browser can seek) and the printable PDF record."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from stopline.shared.evidence_render import render_annotated

from ..clips import clip_of
from ..desk import Desk
from ..models import Evidence, Violation
from .security import session_user

router = APIRouter(include_in_schema=False)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
VIDEO_TYPES = ("video/mp4", "video/webm")


def _desk(request: Request) -> Desk:
    return request.app.state.desk


def candidate_of(v: Violation) -> dict[str, Any]:
    """The signed candidate header stored with the violation."""
    try:
        return json.loads(v.message_json or "{}").get("candidate", {})
    except ValueError:
        return {}


def image_label(v: Violation, ev: Evidence) -> str:
    frames = [e for e in v.evidence if e.kind == "evidence"]
    return f"{ev.role} {frames.index(ev) + 1}/{len(frames)}" if ev in frames else (ev.role or ev.kind)


def annotated_bytes(desk: Desk, v: Violation, ev: Evidence) -> bytes:
    """The annotated JPEG of one evidence image (rendered now from the signed metadata)."""
    meta = json.loads(ev.meta_json or "{}")
    meta["role"] = ev.role
    data = desk.store.read(ev.file_sha256, ev.file_offset, ev.size)
    return render_annotated(data, meta, candidate_of(v), image_label(v, ev))


@router.get("/evidence/{evidence_id}/annotated")
def annotated_image(request: Request, evidence_id: int) -> Response:
    desk = _desk(request)
    with desk.session() as s:
        session_user(request, s)
        ev = s.get(Evidence, evidence_id)
        if ev is None or ev.kind != "evidence" or not desk.store.exists(ev.file_sha256):
            return Response("no such evidence image", status_code=404, media_type="text/plain")
        try:
            data = annotated_bytes(desk, ev.violation, ev)
        except ValueError:  # bytes that are not an image (a tampered file): the original only
            return Response("this evidence file is not a decodable image", status_code=422, media_type="text/plain")
        return Response(data, media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=86400", "ETag": f"a-{ev.sha256}"})


def _clip_response(desk: Desk, s: Session, violation_id: int, range_header: str | None) -> Response:
    v = s.get(Violation, violation_id)
    clip = clip_of(s, v) if v is not None else None
    if clip is None or clip.size == 0 or not desk.store.exists(clip.sha256):
        return Response("no clip for this violation", status_code=404, media_type="text/plain")
    media = clip.content_type if clip.content_type in VIDEO_TYPES else "application/octet-stream"
    headers = {"Accept-Ranges": "bytes", "Cache-Control": "private, max-age=86400", "ETag": clip.sha256}
    m = _RANGE.match(range_header or "")
    if not m or (not m.group(1) and not m.group(2)):
        return Response(desk.store.get(clip.sha256), media_type=media, headers=headers)
    if m.group(1):
        start = int(m.group(1))
        end = min(int(m.group(2)) if m.group(2) else clip.size - 1, clip.size - 1)
    else:  # the last N bytes
        start, end = max(0, clip.size - int(m.group(2))), clip.size - 1
    if start > end or start >= clip.size:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{clip.size}"})
    data = desk.store.read(clip.sha256, start, end - start + 1)
    return Response(data, status_code=206, media_type=media,
                    headers={**headers, "Content-Range": f"bytes {start}-{end}/{clip.size}"})


@router.get("/violations/{violation_id}/clip")
def violation_clip(request: Request, violation_id: int) -> Response:
    desk = _desk(request)
    with desk.session() as s:
        session_user(request, s)
        return _clip_response(desk, s, violation_id, request.headers.get("range"))


@router.get("/violations/{violation_id}/evidence.pdf")
def violation_pdf(request: Request, violation_id: int) -> Response:
    from ..evidence_pdf import EvidencePdfError, evidence_pdf

    desk = _desk(request)
    with desk.session() as s:
        session_user(request, s)
    try:
        data = evidence_pdf(desk, violation_id)
    except EvidencePdfError as e:
        return Response(str(e), status_code=e.status, media_type="text/plain")
    return Response(data, media_type="application/pdf", headers={
        "Content-Disposition": f'attachment; filename="violation-{violation_id}.pdf"',
        "Cache-Control": "private, no-store"})
