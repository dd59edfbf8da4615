"""Server-rendered pages: login, queue, violation review, audit, cameras, admin, export."""

from __future__ import annotations

import io
import json
import time
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, Path, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import Integer, func, select
from sqlalchemy.orm import Session, selectinload

from .. import audit as audit_mod
from .. import export, metrics, queue, review
from ..cameras import CameraError, add_camera
from ..clips import clip_of
from ..desk import Desk
from ..models import MAX_ID, Camera, CameraKey, Evidence, Review, ServiceStatus, User, Violation
from ..registry import RegistryError, import_registry
from ..users import UserError, add_user, authenticate, set_active
from .evidence_routes import candidate_of
from .security import check_csrf, client_address, csrf_token, log_in, log_out, session_user

router = APIRouter(include_in_schema=False)

# ids beyond what the database holds are refused as invalid (422), never sent to it
ViolationId = Annotated[int, Path(ge=1, le=MAX_ID)]
EvidenceId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _desk(request: Request) -> Desk:
    return request.app.state.desk


def render(request: Request, template: str, user: User | None, status_code: int = 200, **ctx: Any) -> HTMLResponse:
    flashes = request.session.pop("flash", [])
    return request.app.state.templates.TemplateResponse(
        request, template, {"user": user, "csrf": csrf_token(request), "flashes": flashes, **ctx},
        status_code=status_code)


def flash(request: Request, message: str, kind: str = "info") -> None:
    request.session.setdefault("flash", [])
    request.session["flash"] = request.session["flash"][-4:] + [[kind, message]]


def _safe_next(target: str | None) -> str:
    # only same-site paths: no open redirect through ?next=
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/queue"


# ---------------------------------------------------------------------------------------- login


@router.get("/", response_class=HTMLResponse)
def home() -> RedirectResponse:
    return RedirectResponse("/queue", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, next: str = "/queue") -> HTMLResponse:
    return render(request, "login.html", None, next=_safe_next(next), error=None)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, username: str = Form(""), password: str = Form(""), next: str = Form("/queue"),
          csrf_token: str = Form("")) -> Response:
    check_csrf(request, csrf_token)
    limiter = request.app.state.limiter
    address = client_address(request)
    wait = limiter.retry_after(username, address)
    if wait > 0:
        metrics.LOGIN_FAILURES.labels("rate_limited").inc()
        resp = render(request, "login.html", None, status_code=429, next=_safe_next(next),
                      error=f"Too many failed attempts. Try again in {int(wait) + 1} s.")
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    with _desk(request).session() as s, s.begin():
        user = authenticate(s, username, password)
        if user is None:
            limiter.failed(username, address)
            metrics.LOGIN_FAILURES.labels("bad_credentials").inc()
            audit_mod.record(s, None, "login.failed", "user", username[:64], None,
                             {"username": username[:200], "address": address}, who=username[:64] or "?")
            return render(request, "login.html", None, status_code=401, next=_safe_next(next),
                          error="Wrong username or password.")
        limiter.succeeded(username, address)
        log_in(request, s, user, request.app.state.session_max_age_s)
        audit_mod.record(s, user, "login", "user", user.username, None, {"address": address})
    return RedirectResponse(_safe_next(next), status_code=303)


@router.post("/logout")
def logout(request: Request, csrf_token: str = Form("")) -> RedirectResponse:
    check_csrf(request, csrf_token)
    with _desk(request).session() as s, s.begin():
        log_out(request, s)
    return RedirectResponse("/login", status_code=303)


# ---------------------------------------------------------------------------------------- queue


def _filters_from(params: dict[str, str]) -> queue.Filters:
    return queue.Filters.parse(params.get("status", "queued"), params.get("camera"), params.get("from"),
                               params.get("to"), params.get("plate"), params.get("order"))


@router.get("/queue", response_class=HTMLResponse)
def queue_page(request: Request) -> HTMLResponse:
    params = dict(request.query_params)
    with _desk(request).session() as s, s.begin():
        user = session_user(request, s)
        try:
            filters = _filters_from(params)
            rows, cursor = queue.page(s, filters, params.get("after"))
            error = None
        except queue.QueryError as e:
            filters, rows, cursor, error = queue.Filters(), [], None, str(e)
        cameras = list(s.scalars(select(Camera.id).order_by(Camera.id)))
        filter_query = queue.clean_filter_query(request.url.query)
        next_url = f"/queue?{filter_query + '&' if filter_query else ''}{urlencode({'after': cursor})}" \
            if cursor else None
        return render(request, "queue.html", user, 422 if error else 200, rows=rows, filters=params,
                      cameras=cameras, next_url=next_url,
                      error=error, now=time.time(), filter_query=filter_query, first_page=not params.get("after"))


def _review_filters(user: User, filter_query: str) -> queue.Filters:
    try:
        filters = _filters_from(dict(parse_qsl(filter_query)))
    except queue.QueryError:
        filters = queue.Filters()
    if filters.status not in ("queued", "escalated") or (user.role == "reviewer" and filters.status != "queued"):
        filters = queue.Filters(status="queued", camera=filters.camera, plate=filters.plate)
    return filters


def _with_query(path: str, filter_query: str) -> str:
    return f"{path}?{filter_query}" if filter_query else path


@router.post("/review/next")
def review_next(request: Request, csrf_token: str = Form(""),
                after: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
                filter_query: str = Form("")) -> RedirectResponse:
    """Release ``after`` (when given) and claim the next item nobody else holds, and open it."""
    check_csrf(request, csrf_token)
    filter_query = queue.clean_filter_query(filter_query)
    with _desk(request).session() as s, s.begin():
        user = session_user(request, s)
        current = s.get(Violation, after) if after else None
        if current is not None:
            review.release(s, current.id, user)
        nxt = review.claim_next(s, user, current, _review_filters(user, filter_query))
        if nxt is not None:
            return RedirectResponse(_with_query(f"/violations/{nxt.id}", filter_query), status_code=303)
    flash(request, "Nothing left to review with these filters.")
    return RedirectResponse(_with_query("/queue", filter_query), status_code=303)


# ---------------------------------------------------------------------------------------- violation


def _load_violation(s: Session, violation_id: int) -> Violation | None:
    return s.scalar(select(Violation).where(Violation.id == violation_id).options(
        selectinload(Violation.evidence), selectinload(Violation.candidates), selectinload(Violation.vehicle)))


@router.get("/violations/{violation_id}", response_class=HTMLResponse)
def violation_page(request: Request, violation_id: ViolationId) -> HTMLResponse:
    with _desk(request).session() as s, s.begin():
        user = session_user(request, s)
        return _violation_view(request, s, user, violation_id)


def _violation_view(request: Request, s: Session, user: User, violation_id: int,
                    status_code: int = 200) -> HTMLResponse:
    v = _load_violation(s, violation_id)
    if v is None:
        return render(request, "error.html", user, status_code=404, code=404, message="No such violation.")
    holder_id = review.claim_holder(v)
    holder = s.get(User, holder_id) if holder_id else None
    history = list(s.scalars(select(Review).where(Review.violation_id == v.id)
                             .options(selectinload(Review.user)).order_by(Review.id)))
    escalation = next((r for r in reversed(history) if r.action == "escalate"), None)
    entries = audit_mod.entries(s, object_type="violation", object_id=str(v.id), limit=50)
    try:
        message = json.loads(v.message_json or "{}")
    except ValueError:
        message = {}
    allowed = v.status in ("queued", "escalated") and review.role_at_least(user.role, review.needed_role(v))
    return render(request, "violation.html", user, status_code=status_code, v=v, holder=holder, history=history,
                  escalation=escalation if v.status == "escalated" else None, audit=entries,
                  reads=message.get("reads", []), can_act=allowed and holder_id == user.id,
                  can_claim=allowed and holder_id in (None, user.id),
                  filter_query=queue.clean_filter_query(request.url.query),
                  clip=clip_of(s, v), candidate=candidate_of(v),
                  burst=[e for e in v.evidence if e.kind == "evidence"],
                  crops=[e for e in v.evidence if e.kind in ("plate", "crop")],
                  others=[e for e in v.evidence if e.kind == "attachment"])


def _action(request: Request, violation_id: int, csrf: str, fn, *args, next_after: bool = False,
            filter_query: str = "") -> Response:
    """Run one review action. Refused (someone else holds the item, a plate that is not one, no
    owner...): the violation page again, with the reason, under the action's HTTP status."""
    check_csrf(request, csrf)
    desk = _desk(request)
    filter_query = queue.clean_filter_query(filter_query)
    with desk.session() as s:
        try:
            with s.begin():
                user = session_user(request, s)
                result = fn(s, violation_id, user, *args)
        except review.ActionError as e:
            s.rollback()
            flash(request, e.message, "error")
            with s.begin():
                return _violation_view(request, s, session_user(request, s), violation_id, e.code)
    metrics.REVIEW_ACTIONS.labels(fn.__name__).inc()
    if isinstance(result, review.ActionResult):
        if result.message:
            flash(request, result.message)
        if result.changed_status:
            desk.notify(result.event_id, result.camera, result.status)
            flash(request, f"Violation {violation_id} {result.status}.")
            if next_after:
                return _claim_next_redirect(request, violation_id, filter_query)
    return RedirectResponse(_with_query(f"/violations/{violation_id}", filter_query), status_code=303)


def _claim_next_redirect(request: Request, after_id: int, filter_query: str) -> RedirectResponse:
    """After a decision, go straight to the next item (the keyboard review loop)."""
    with _desk(request).session() as s, s.begin():
        user = session_user(request, s)
        nxt = review.claim_next(s, user, s.get(Violation, after_id), _review_filters(user, filter_query))
        if nxt is not None:
            return RedirectResponse(_with_query(f"/violations/{nxt.id}", filter_query), status_code=303)
    flash(request, "Queue done: nothing left to review with these filters.")
    return RedirectResponse(_with_query("/queue", filter_query), status_code=303)


@router.post("/violations/{violation_id}/claim")
def claim_action(request: Request, violation_id: ViolationId, csrf_token: str = Form(""),
                 filter_query: str = Form("")) -> Response:
    return _action(request, violation_id, csrf_token, review.claim, filter_query=filter_query)


@router.post("/violations/{violation_id}/release")
def release_action(request: Request, violation_id: ViolationId, csrf_token: str = Form("")) -> Response:
    response = _action(request, violation_id, csrf_token, review.release)
    return response if response.status_code >= 400 else RedirectResponse("/queue", status_code=303)


@router.post("/violations/{violation_id}/approve")
def approve_action(request: Request, violation_id: ViolationId, csrf_token: str = Form(""),
                   no_registration: str = Form(""), filter_query: str = Form("")) -> Response:
    return _action(request, violation_id, csrf_token, review.approve, no_registration == "1", next_after=True,
                   filter_query=filter_query)


@router.post("/violations/{violation_id}/reject")
def reject_action(request: Request, violation_id: ViolationId, csrf_token: str = Form(""), reason: str = Form(""),
                  filter_query: str = Form("")) -> Response:
    return _action(request, violation_id, csrf_token, review.reject, reason, next_after=True,
                   filter_query=filter_query)


@router.post("/violations/{violation_id}/escalate")
def escalate_action(request: Request, violation_id: ViolationId, csrf_token: str = Form(""),
                    reason: str = Form(""), filter_query: str = Form("")) -> Response:
    return _action(request, violation_id, csrf_token, review.escalate, reason, next_after=True,
                   filter_query=filter_query)


@router.post("/violations/{violation_id}/correct")
def correct_action(request: Request, violation_id: ViolationId, csrf_token: str = Form(""), plate: str = Form(""),
                   filter_query: str = Form("")) -> Response:
    return _action(request, violation_id, csrf_token, review.correct_plate, plate, filter_query=filter_query)


@router.post("/violations/{violation_id}/assign")
def assign_action(request: Request, violation_id: ViolationId, csrf_token: str = Form(""),
                  vehicle_id: Annotated[int, Form(ge=1, le=MAX_ID)] = ..., filter_query: str = Form("")) -> Response:
    return _action(request, violation_id, csrf_token, review.assign_owner, vehicle_id, filter_query=filter_query)


# ---------------------------------------------------------------------------------------- evidence


@router.get("/evidence/{evidence_id}")
def evidence_file(request: Request, evidence_id: EvidenceId) -> Response:
    """Evidence bytes by database id: the file and byte range come from the row, never the client."""
    desk = _desk(request)
    with desk.session() as s:
        session_user(request, s)
        ev = s.get(Evidence, evidence_id)
        if ev is None or not desk.store.exists(ev.file_sha256):
            return Response("no such evidence", status_code=404, media_type="text/plain")
        media = ev.content_type if ev.content_type in ("image/jpeg", "image/png") else "application/octet-stream"
        return Response(desk.store.read(ev.file_sha256, ev.file_offset, ev.size), media_type=media,
                        headers={"Cache-Control": "private, max-age=86400", "ETag": ev.sha256})


# ---------------------------------------------------------------------------------------- audit, cameras


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, object_id: str = "",
               before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None) -> HTMLResponse:
    with _desk(request).session() as s:
        user = session_user(request, s, "supervisor")
        rows = audit_mod.entries(s, object_id=object_id or None, before_id=before, limit=100)
        older = f"/audit?{urlencode({'object_id': object_id, 'before': rows[-1].id})}" if len(rows) == 100 else None
        return render(request, "audit.html", user, rows=rows, object_id=object_id, older=older)


def _hourly(s: Session, camera: str, hours: int, now: float) -> list[tuple[float, int]]:
    start = (now // 3600 - hours + 1) * 3600
    dialect = s.get_bind().dialect.name
    bucket = func.floor(Violation.crossed_at / 3600) if dialect == "postgresql" else \
        func.cast(Violation.crossed_at / 3600, type_=Integer)  # truncation = floor for positive times
    counts = {int(h): n for h, n in s.execute(
        select(bucket, func.count()).where(Violation.camera_id == camera, Violation.crossed_at >= start)
        .group_by(bucket))}
    first = int(start // 3600)
    return [(float((first + i) * 3600), counts.get(first + i, 0)) for i in range(hours)]


@router.get("/cameras", response_class=HTMLResponse)
def cameras_page(request: Request) -> HTMLResponse:
    with _desk(request).session() as s:
        user = session_user(request, s)
        cams = list(s.scalars(select(Camera).options(selectinload(Camera.keys)).order_by(Camera.id)))
        since = time.time() - 86400
        per_day = dict(s.execute(select(Violation.camera_id, func.count()).where(Violation.crossed_at >= since)
                                 .group_by(Violation.camera_id)).all())
        services = list(s.scalars(select(ServiceStatus).order_by(ServiceStatus.service, ServiceStatus.instance)))
        return render(request, "cameras.html", user, cameras=cams, per_day=per_day, services=services)


@router.get("/cameras/{camera_id}", response_class=HTMLResponse)
def camera_page(request: Request, camera_id: str, hours: int = 48) -> HTMLResponse:
    hours = max(6, min(hours, 24 * 14))
    with _desk(request).session() as s:
        user = session_user(request, s)
        cam = s.get(Camera, camera_id)
        if cam is None:
            return render(request, "error.html", user, status_code=404, code=404, message="No such camera.")
        now = time.time()
        series = _hourly(s, camera_id, hours, now)
        services = list(s.scalars(select(ServiceStatus).order_by(ServiceStatus.service, ServiceStatus.instance)))
        by_status = dict(s.execute(select(Violation.status, func.count()).where(Violation.camera_id == camera_id)
                                   .group_by(Violation.status)).all())
        return render(request, "camera.html", user, camera=cam, series=series, peak=max([n for _, n in series] + [1]),
                      services=services, by_status=by_status, hours=hours, keys=cam.keys)


# ---------------------------------------------------------------------------------------- export


@router.get("/export/approved.{fmt}")
def export_approved(request: Request, fmt: str) -> Response:
    if fmt not in ("csv", "json"):
        return Response("format must be csv or json", status_code=404, media_type="text/plain")
    desk = _desk(request)
    with desk.session() as s:
        user = session_user(request, s, "supervisor")
        audit_mod.record(s, user, "export", "violation", "approved", None, {"format": fmt})
        s.commit()

    def stream():
        with desk.session() as s2:
            chunks = export.to_csv(export.approved(s2)) if fmt == "csv" else export.to_json(export.approved(s2))
            yield from chunks

    media = "text/csv" if fmt == "csv" else "application/json"
    return StreamingResponse(stream(), media_type=media, headers={
        "Content-Disposition": f'attachment; filename="approved-violations.{fmt}"'})


# ---------------------------------------------------------------------------------------- admin


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request) -> HTMLResponse:
    with _desk(request).session() as s:
        user = session_user(request, s, "admin")
        users = list(s.scalars(select(User).order_by(User.username)))
        return render(request, "users.html", user, users=users)


@router.post("/admin/users")
def users_add(request: Request, csrf_token: str = Form(""), username: str = Form(""), password: str = Form(""),
              role: str = Form("reviewer")) -> RedirectResponse:
    check_csrf(request, csrf_token)
    with _desk(request).session() as s:
        try:
            with s.begin():
                admin = session_user(request, s, "admin")
                add_user(s, username, password, role, actor=admin)
            flash(request, f"User {username} added as {role}.")
        except UserError as e:
            flash(request, str(e), "error")
    return RedirectResponse("/admin/users", status_code=303)


@router.post("/admin/users/{username}/active")
def users_active(request: Request, username: str, csrf_token: str = Form(""), active: str = Form("0")) -> RedirectResponse:
    check_csrf(request, csrf_token)
    with _desk(request).session() as s, s.begin():
        admin = session_user(request, s, "admin")
        target = s.scalar(select(User).where(User.username == username))
        if target is None:
            flash(request, "no such user", "error")
        elif target.id == admin.id:
            flash(request, "you cannot deactivate yourself", "error")
        else:
            set_active(s, target, active == "1", admin)
            flash(request, f"User {username} {'activated' if active == '1' else 'deactivated'}.")
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request) -> HTMLResponse:
    with _desk(request).session() as s:
        user = session_user(request, s, "admin")
        keys = list(s.scalars(select(CameraKey).order_by(CameraKey.camera_id)))
        return render(request, "admin.html", user, keys=keys, report=request.session.pop("import_report", None))


@router.post("/admin/cameras")
def admin_add_camera(request: Request, csrf_token: str = Form(""), camera_id: str = Form(""),
                     name: str = Form(""), public_key: str = Form("")) -> RedirectResponse:
    check_csrf(request, csrf_token)
    with _desk(request).session() as s:
        try:
            with s.begin():
                admin = session_user(request, s, "admin")
                key_id = add_camera(s, camera_id.strip(), public_key.strip() or None, name.strip(), actor=admin)
            flash(request, f"Camera {camera_id} registered" + (f" with key {key_id}." if key_id else "."))
        except CameraError as e:
            flash(request, str(e), "error")
    return RedirectResponse("/admin", status_code=303)


@router.post("/admin/registry")
async def admin_import_registry(request: Request) -> RedirectResponse:
    form = await request.form()
    check_csrf(request, str(form.get("csrf_token", "")))
    upload = form.get("file")
    if not isinstance(upload, UploadFile) and not hasattr(upload, "read"):
        flash(request, "choose a CSV file", "error")
        return RedirectResponse("/admin", status_code=303)
    data = await upload.read()  # type: ignore[union-attr]
    from starlette.concurrency import run_in_threadpool

    def do() -> None:
        with _desk(request).session() as s:
            try:
                with s.begin():
                    admin = session_user(request, s, "admin")
                    text = data.decode("utf-8-sig")
                    stream = io.StringIO(text)
                    stream.name = (getattr(upload, "filename", None) or "upload.csv")[:64]
                    report = import_registry(s, stream, actor=admin)
                request.session["import_report"] = {
                    "summary": report.summary(), "rejected": [list(r) for r in report.rejected[:20]],
                    "more": max(0, len(report.rejected) - 20)}  # the session is a cookie: keep it small
            except (RegistryError, UnicodeDecodeError) as e:
                flash(request, f"registry not imported: {e}", "error")

    await run_in_threadpool(do)
    return RedirectResponse("/admin", status_code=303)
