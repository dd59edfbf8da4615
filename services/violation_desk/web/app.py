"""``create_app(desk, ...)``: the review web app, its REST API, evidence and metrics routes."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.middleware.sessions import SessionMiddleware

from .. import metrics
from ..desk import Desk
from ..models import STATUSES, Violation
from .security import (
    SESSION_COOKIE,
    CsrfError,
    Forbidden,
    LoginLimiter,
    LoginRequired,
    SecureCookies,
    csrf_token,
    normalise_origins,
    origin_refusal,
)

HERE = Path(__file__).resolve().parent.parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"


def _ts(t: float | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    if t is None:
        return ""
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime(fmt)


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES))  # autoescape on for .html
    templates.env.filters["ts"] = _ts
    templates.env.filters["pct"] = lambda x: "" if x is None else f"{100 * x:.0f}%"
    templates.env.globals["STATUSES"] = STATUSES
    return templates


def create_app(desk: Desk, secret_key: str | None = None, *, cookie_secure: bool = False,
               trusted_origins: tuple[str, ...] = (), session_max_age_s: int = 8 * 3600,
               limiter: LoginLimiter | None = None) -> FastAPI:
    """The app for one desk. Without ``secret_key`` a random one is used (sessions end on restart).

    The session cookie is ``Secure`` on HTTPS requests (also behind a proxy sending
    ``X-Forwarded-Proto: https``) and always with ``cookie_secure``. State-changing requests whose
    ``Origin`` (or ``Referer``) names another site than the app's own or one of
    ``trusted_origins`` are refused."""
    app = FastAPI(title="stopline violation desk", version="1", docs_url=None, redoc_url=None,
                  openapi_url="/api/openapi.json")
    app.state.desk = desk
    app.state.templates = make_templates()
    app.state.limiter = limiter or LoginLimiter()
    app.state.session_max_age_s = session_max_age_s
    trusted = normalise_origins(trusted_origins)

    @app.middleware("http")
    async def headers_and_timing(request: Request, call_next):
        start = time.perf_counter()
        refusal = origin_refusal(request, trusted)
        if refusal is not None:
            metrics.ORIGIN_REFUSED.inc()
            if request.url.path.startswith("/api/"):
                response = JSONResponse({"detail": refusal}, status_code=403)
            else:
                response = error_page(request, 403, f"Refused: {refusal}.")
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        metrics.HTTP_SECONDS.labels(request.method, getattr(route, "path", "other")).observe(
            time.perf_counter() - start)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'")
        return response

    # added after the middleware above, so it runs first: that middleware's error page has a session
    app.add_middleware(SessionMiddleware, secret_key=secret_key or secrets.token_urlsafe(32),
                       session_cookie=SESSION_COOKIE, max_age=session_max_age_s, same_site="lax")
    app.add_middleware(SecureCookies, always=cookie_secure)

    @app.exception_handler(LoginRequired)
    async def _login_required(request: Request, exc: LoginRequired):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "authentication required"}, status_code=401)
        nxt = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={_quote(nxt)}", status_code=303)

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": exc.message}, status_code=403)
        return error_page(request, 403, exc.message, exc.user)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        if request.url.path.startswith("/api/"):
            return await request_validation_exception_handler(request, exc)
        fields = ", ".join(".".join(str(p) for p in e.get("loc", ())[1:]) or "request" for e in exc.errors())
        return error_page(request, 422, f"The request was not understood ({fields}).")

    @app.exception_handler(CsrfError)
    async def _csrf(request: Request, exc: CsrfError):
        return error_page(request, 403, "The form expired or did not come from this site (CSRF check failed). "
                                        "Go back, reload the page and try again.")

    from .api import router as api_router
    from .pages import router as pages_router

    app.include_router(pages_router)
    from .evidence_routes import router as evidence_router

    app.include_router(evidence_router)
    app.include_router(api_router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics() -> Response:
        # Operational counters only: no plates, names or evidence (open to the scraper).
        depth = {"queued": 0, "escalated": 0}
        try:
            with desk.session() as s:
                for status, n in s.execute(select(Violation.status, func.count()).where(
                        Violation.status.in_(("queued", "escalated"))).group_by(Violation.status)):
                    depth[status] = n
        except SQLAlchemyError:  # database down: the other metrics (the bus's say why) still count
            depth = {}
        for status, n in depth.items():
            metrics.QUEUE_DEPTH.labels(status).set(n)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def error_page(request: Request, code: int, message: str, user=None) -> HTMLResponse:
    """An error page; with ``user`` it keeps the menu and the logout button."""
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(request, "error.html", {"code": code, "message": message, "user": user,
                                                              "csrf": csrf_token(request)}, status_code=code)
