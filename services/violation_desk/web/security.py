"""Sessions, CSRF tokens, the Origin/Referer check, role checks and the login rate limit.

The session cookie is Starlette's signed cookie (HttpOnly, SameSite=Lax; Secure over HTTPS or
when configured, see ``SecureCookies``) holding the user id, a random session id whose SHA-256
must still be in ``web_sessions`` (logout, deactivation and password changes delete it) and the
CSRF token that every form must echo back.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable
from urllib.parse import urlsplit

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import web_sessions
from ..models import User
from ..users import role_at_least

SESSION_COOKIE = "stopline_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form."""


class Forbidden(Exception):
    def __init__(self, message: str = "you do not have the role this page needs", user: User | None = None):
        super().__init__(message)
        self.message = message
        self.user = user  # logged in, but without the role: the error page still shows the menu


class CsrfError(Exception):
    pass


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not submitted or not secrets.compare_digest(expected, submitted):
        raise CsrfError()


def log_in(request: Request, session: Session, user: User, ttl_s: float) -> None:
    request.session.clear()  # a fresh session (and CSRF token) on login: no fixation
    sid = web_sessions.start(session, user, ttl_s, client_address(request))
    request.session.update({"uid": user.id, "sid": sid, "csrf": secrets.token_urlsafe(32),
                            "at": int(time.time())})


def log_out(request: Request, session: Session) -> None:
    sid = request.session.get("sid")
    if isinstance(sid, str):
        web_sessions.end(session, sid)
    request.session.clear()


def session_user(request: Request, session: Session, role: str = "reviewer") -> User:
    """The logged-in user holding at least ``role``; LoginRequired / Forbidden otherwise."""
    uid, sid = request.session.get("uid"), request.session.get("sid")
    if not isinstance(uid, int) or not isinstance(sid, str):
        raise LoginRequired()
    user = session.get(User, uid)
    if user is None or not user.active or not web_sessions.is_valid(session, sid, uid):
        request.session.clear()
        raise LoginRequired()
    if not role_at_least(user.role, role):
        raise Forbidden(f"this page needs the {role} role; you are a {user.role}", user)
    return user


# ---------------------------------------------------------------------------------- transport


def _forwarded_proto(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for k, v in headers:
        if k == b"x-forwarded-proto":
            return v.decode("latin-1").split(",")[0].strip().lower()
    return None


def is_https(scope: Scope) -> bool:
    """Served over TLS: directly, or behind a proxy that says so (``X-Forwarded-Proto: https``).
    Believing the header is safe here: it only ever makes the cookie stricter."""
    return scope.get("scheme") == "https" or _forwarded_proto(scope.get("headers", ())) == "https"


class SecureCookies:
    """Adds ``Secure`` to the session cookie when the request came over HTTPS, or always when
    ``always`` (configuration: ``services.violation_desk.cookie_secure``)."""

    def __init__(self, app: ASGIApp, always: bool = False, cookie: str = SESSION_COOKIE):
        self.app, self.always, self.prefix = app, always, f"{cookie}="

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (self.always or is_https(scope)):
            await self.app(scope, receive, send)
            return

        async def send_secure(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cookies = headers.getlist("set-cookie")
                if cookies:
                    del headers["set-cookie"]
                    for c in cookies:
                        secure = c.startswith(self.prefix) and "; secure" not in c.lower()
                        headers.append("set-cookie", c + "; secure" if secure else c)
            await send(message)

        await self.app(scope, receive, send_secure)


def _origin_of(url: str) -> str | None:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return _normalise_origin(parts.scheme, parts.netloc)


def _normalise_origin(scheme: str, netloc: str) -> str:
    scheme, netloc = scheme.lower(), netloc.lower().rsplit("@", 1)[-1]
    default = {"http": ":80", "https": ":443"}.get(scheme)
    if default and netloc.endswith(default):
        netloc = netloc[: -len(default)]
    return f"{scheme}://{netloc}"


def own_origin(request: Request) -> str:
    """The origin the browser sees: scheme and host as forwarded by a TLS proxy, else as received."""
    scheme = "https" if is_https(request.scope) else request.url.scheme
    host = (request.headers.get("x-forwarded-host") or request.headers.get("host") or request.url.netloc)
    return _normalise_origin(scheme, host.split(",")[0].strip())


def origin_refusal(request: Request, trusted: frozenset[str] = frozenset()) -> str | None:
    """Why a state-changing request must be refused (it names another site in ``Origin``, or in
    ``Referer`` when there is no ``Origin``), or None. Defence in depth beside the CSRF token: a
    request with neither header (a script, the API) is left to the token checks."""
    if request.method in SAFE_METHODS:
        return None
    origin = request.headers.get("origin")
    if origin is not None:
        source = None if origin.strip() == "null" else _origin_of(origin)
        what = "Origin"
    else:
        referer = request.headers.get("referer")
        if referer is None:
            return None
        source, what = _origin_of(referer), "Referer"
    if source is not None and (source == own_origin(request) or source in trusted):
        return None
    return f"the request came from another site ({what} does not match {own_origin(request)})"


def normalise_origins(origins: Iterable[str]) -> frozenset[str]:
    out = set()
    for o in origins:
        norm = _origin_of(o)
        if norm is None:
            raise ValueError(f"not an origin (scheme://host[:port]): {o!r}")
        out.add(norm)
    return frozenset(out)


# ---------------------------------------------------------------------------------- login limit


class LoginLimiter:
    """At most ``max_failures`` failed logins per (user name, client address) pair in
    ``window_s`` - so nobody can lock someone else out from their own address - and at most
    ``max_per_address`` per address whatever the user names (a password spray)."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0, max_per_address: int = 50):
        self.max_failures = max_failures
        self.max_per_address = max_per_address
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def _keys(self, username: str, address: str) -> tuple[tuple[str, int], tuple[str, int]]:
        return ((f"p:{username.lower()}\0{address}", self.max_failures), (f"a:{address}", self.max_per_address))

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key, limit in self._keys(username, address):
                q = self._recent(key, now)
                if len(q) >= limit:
                    waits.append(q[-limit] + self.window_s - now)
            return max(waits, default=0.0)

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key, _ in self._keys(username, address):
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # bound memory under a spray of usernames
                self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, username: str, address: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(username, address)[0][0], None)
