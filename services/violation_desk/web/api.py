"""REST API (``/api/v1``, bearer-token authenticated, described at ``/api/openapi.json``): the
same operations as the pages. Tokens come from ``stopline desk add-token``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .. import audit as audit_mod
from .. import export, metrics, queue, review
from ..desk import Desk
from ..models import MAX_ID, Evidence, Review, User, Violation
from ..users import role_at_least, user_for_token

router = APIRouter(prefix="/api/v1", tags=["violations"])
bearer = HTTPBearer(auto_error=False, description="token from `stopline desk add-token USER`")
DbId = Annotated[int, Path(ge=1, le=MAX_ID, description="database id")]


class Principal:
    def __init__(self, desk: Desk, user_id: int, role: str):
        self.desk, self.user_id, self.role = desk, user_id, role

    def user(self, s: Session) -> User:
        user = s.get(User, self.user_id)
        assert user is not None
        return user


def principal(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    if creds is None or creds.scheme.lower() != "bearer":
        raise HTTPException(401, "bearer token required", headers={"WWW-Authenticate": "Bearer"})
    desk: Desk = request.app.state.desk
    with desk.session() as s:
        user = user_for_token(s, creds.credentials)
        if user is None:
            raise HTTPException(401, "invalid or revoked token", headers={"WWW-Authenticate": "Bearer"})
        return Principal(desk, user.id, user.role)


def supervisor(p: Principal = Depends(principal)) -> Principal:
    if not role_at_least(p.role, "supervisor"):
        raise HTTPException(403, "needs the supervisor role")
    return p


class Owner(BaseModel):
    vehicle_id: int
    plate: str
    region: str
    make: str
    model: str
    colour: str
    vehicle_class: str
    owner_name: str
    owner_address: str


class CandidateOut(BaseModel):
    kind: str
    score: float
    owner: Owner


class EvidenceOut(BaseModel):
    id: int
    kind: str
    name: str
    role: str | None
    sha256: str
    intact: bool
    url: str


class ViolationOut(BaseModel):
    id: int
    event_id: str
    camera: str
    crossed_at: float
    signal_phase: str
    time_into_red_s: float
    vehicle_class: str
    vehicle_colour: str | None
    plate_read: str | None
    plate: str | None
    plate_confidence: float | None
    plate_region: str | None
    plate_corrected: bool
    match_kind: str
    owner: Owner | None
    clone_flag: bool
    clone_reason: str | None
    integrity: str
    integrity_detail: str
    status: str
    reject_reason: str | None
    claimed_by: int | None
    decided_at: float | None


class ReviewOut(BaseModel):
    at: float
    username: str
    action: str
    from_status: str
    to_status: str
    reason: str | None = Field(description="rejection reason or escalation note")


class ViolationDetail(ViolationOut):
    candidates: list[CandidateOut]
    evidence: list[EvidenceOut]
    history: list[ReviewOut] = Field(description="every review action, oldest first, with its reason or note")


class Page(BaseModel):
    items: list[ViolationOut]
    next_cursor: str | None = Field(description="pass as `after` for the next page")


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=2000)


class EscalateBody(BaseModel):
    reason: str | None = Field(default=None, max_length=2000)


class CorrectBody(BaseModel):
    plate: str = Field(min_length=1, max_length=32)


class AssignBody(BaseModel):
    vehicle_id: int = Field(ge=1, le=MAX_ID)


class ApproveBody(BaseModel):
    no_registration: bool = Field(default=False, description=(
        "approve although no registration is assigned: the reviewer found none (the export marks it)"))


class ActionOut(BaseModel):
    id: int
    event_id: str
    status: str


class AuditOut(BaseModel):
    id: int
    at: float
    username: str
    action: str
    object_type: str
    object_id: str
    before: str | None
    after: str | None


def _owner(v) -> Owner | None:
    if v is None:
        return None
    return Owner(vehicle_id=v.id, plate=v.plate, region=v.region, make=v.make, model=v.model, colour=v.colour,
                 vehicle_class=v.vehicle_class, owner_name=v.owner_name, owner_address=v.owner_address)


def _out(v: Violation) -> dict:
    return dict(id=v.id, event_id=v.event_id, camera=v.camera_id, crossed_at=v.crossed_at,
                signal_phase=v.signal_phase, time_into_red_s=v.time_into_red_s, vehicle_class=v.vehicle_class,
                vehicle_colour=v.vehicle_colour, plate_read=v.plate_read, plate=v.plate_norm,
                plate_confidence=v.plate_confidence, plate_region=v.plate_region, plate_corrected=v.plate_corrected,
                match_kind=v.match_kind, owner=_owner(v.vehicle), clone_flag=v.clone_flag,
                clone_reason=v.clone_reason, integrity=v.integrity, integrity_detail=v.integrity_detail,
                status=v.status, reject_reason=v.reject_reason, claimed_by=review.claim_holder(v),
                decided_at=v.decided_at)


@router.get("/violations", response_model=Page)
def list_violations(p: Principal = Depends(principal),
                    status: str = Query("queued", description="queued|approved|rejected|escalated|all"),
                    camera: str | None = None, date_from: str | None = Query(None, alias="from"),
                    date_to: str | None = Query(None, alias="to"), plate: str | None = None,
                    order: Literal["oldest", "newest"] = "oldest", after: str | None = None,
                    limit: int = Query(50, ge=1, le=500)) -> Page:
    try:
        filters = queue.Filters.parse(status, camera, date_from, date_to, plate, order)
        with p.desk.session() as s:
            rows, cursor = queue.page(s, filters, after, limit)
            return Page(items=[ViolationOut(**_out(v)) for v in rows], next_cursor=cursor)
    except queue.QueryError as e:
        raise HTTPException(422, str(e)) from None


@router.get("/violations/{violation_id}", response_model=ViolationDetail)
def get_violation(violation_id: DbId, p: Principal = Depends(principal)) -> ViolationDetail:
    with p.desk.session() as s:
        v = s.scalar(select(Violation).where(Violation.id == violation_id).options(
            selectinload(Violation.evidence), selectinload(Violation.candidates), selectinload(Violation.vehicle)))
        if v is None:
            raise HTTPException(404, "no such violation")
        history = s.scalars(select(Review).where(Review.violation_id == v.id)
                            .options(selectinload(Review.user)).order_by(Review.id))
        return ViolationDetail(
            **_out(v),
            candidates=[CandidateOut(kind=c.kind, score=c.score, owner=_owner(c.vehicle)) for c in v.candidates],
            evidence=[EvidenceOut(id=e.id, kind=e.kind, name=e.name, role=e.role, sha256=e.sha256, intact=e.intact,
                                  url=f"/api/v1/evidence/{e.id}") for e in v.evidence],
            history=[ReviewOut(at=r.at, username=r.user.username, action=r.action, from_status=r.from_status,
                               to_status=r.to_status, reason=r.reason) for r in history])


def _act(p: Principal, violation_id: int, fn, *args) -> ActionOut:
    with p.desk.session() as s:
        try:
            with s.begin():
                out = fn(s, violation_id, p.user(s), *args)
        except review.ActionError as e:
            raise HTTPException(e.code, e.message) from None
    metrics.REVIEW_ACTIONS.labels(fn.__name__).inc()
    if isinstance(out, review.ActionResult):
        if out.changed_status:
            p.desk.notify(out.event_id, out.camera, out.status)
        return ActionOut(id=out.violation_id, event_id=out.event_id, status=out.status)
    return ActionOut(id=out.id, event_id=out.event_id, status=out.status)


@router.post("/violations/{violation_id}/claim", response_model=ActionOut)
def claim(violation_id: DbId, p: Principal = Depends(principal)) -> ActionOut:
    return _act(p, violation_id, review.claim)


@router.post("/violations/{violation_id}/release", status_code=204)
def release(violation_id: DbId, p: Principal = Depends(principal)) -> Response:
    with p.desk.session() as s:
        try:
            with s.begin():
                review.release(s, violation_id, p.user(s))
        except review.ActionError as e:
            raise HTTPException(e.code, e.message) from None
    return Response(status_code=204)


@router.post("/violations/{violation_id}/approve", response_model=ActionOut)
def approve(violation_id: DbId, body: Annotated[ApproveBody | None, Body()] = None,
            p: Principal = Depends(principal)) -> ActionOut:
    return _act(p, violation_id, review.approve, bool(body and body.no_registration))


@router.post("/violations/{violation_id}/reject", response_model=ActionOut)
def reject(violation_id: DbId, body: RejectBody, p: Principal = Depends(principal)) -> ActionOut:
    return _act(p, violation_id, review.reject, body.reason)


@router.post("/violations/{violation_id}/escalate", response_model=ActionOut)
def escalate(violation_id: DbId, body: EscalateBody, p: Principal = Depends(principal)) -> ActionOut:
    return _act(p, violation_id, review.escalate, body.reason)


@router.post("/violations/{violation_id}/correct-plate", response_model=ActionOut)
def correct_plate(violation_id: DbId, body: CorrectBody, p: Principal = Depends(principal)) -> ActionOut:
    return _act(p, violation_id, review.correct_plate, body.plate)


@router.post("/violations/{violation_id}/assign-owner", response_model=ActionOut)
def assign_owner(violation_id: DbId, body: AssignBody, p: Principal = Depends(principal)) -> ActionOut:
    return _act(p, violation_id, review.assign_owner, body.vehicle_id)


@router.get("/evidence/{evidence_id}", responses={200: {"content": {"image/jpeg": {}}}})
def evidence(evidence_id: DbId, p: Principal = Depends(principal)) -> Response:
    with p.desk.session() as s:
        ev = s.get(Evidence, evidence_id)
        if ev is None or not p.desk.store.exists(ev.file_sha256):
            raise HTTPException(404, "no such evidence")
        media = ev.content_type if ev.content_type in ("image/jpeg", "image/png") else "application/octet-stream"
        return Response(p.desk.store.read(ev.file_sha256, ev.file_offset, ev.size), media_type=media,
                        headers={"ETag": ev.sha256})


@router.get("/export/approved", responses={200: {"content": {"text/csv": {}, "application/json": {}}}})
def export_approved(format: Literal["csv", "json"] = "json", p: Principal = Depends(supervisor)) -> Response:
    with p.desk.session() as s, s.begin():
        audit_mod.record(s, p.user(s), "export", "violation", "approved", None, {"format": format, "via": "api"})

    def stream():
        with p.desk.session() as s2:
            yield from (export.to_csv if format == "csv" else export.to_json)(export.approved(s2))

    return StreamingResponse(stream(), media_type="text/csv" if format == "csv" else "application/json")


@router.get("/audit", response_model=list[AuditOut])
def audit(object_id: str | None = None, before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None, limit: int = Query(100, ge=1, le=1000),
          p: Principal = Depends(supervisor)) -> list[AuditOut]:
    with p.desk.session() as s:
        return [AuditOut(id=e.id, at=e.at, username=e.username, action=e.action, object_type=e.object_type,
                         object_id=e.object_id, before=e.before_json, after=e.after_json)
                for e in audit_mod.entries(s, object_id=object_id, before_id=before, limit=limit)]
