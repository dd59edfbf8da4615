"""Sessions, CSRF tokens, role checks and the login rate limit for the review app.

Sessions are Starlette's signed cookie (HttpOnly, SameSite=Lax, Secure when configured)
holding the user id, the user's ``session_version`` (bumped to log a user out everywhere) and
the CSRF token that every form must echo back.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import deque

from fastapi import Request
from sqlalchemy.orm import Session

from ..models import User
from ..users import role_at_least


class LoginRequired(Exception):
    """No valid session: pages redirect to the login form."""


class Forbidden(Exception):
    def __init__(self, message: str = "you do not have the role this page needs"):
        super().__init__(message)
        self.message = message


class CsrfError(Exception):
    pass


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


def log_in(request: Request, user: User) -> None:
    request.session.clear()  # a fresh session (and CSRF token) on login: no fixation
    request.session.update({"uid": user.id, "sv": user.session_version, "csrf": secrets.token_urlsafe(32),
                            "at": int(time.time())})


def log_out(request: Request) -> None:
    request.session.clear()


def session_user(request: Request, session: Session, role: str = "reviewer") -> User:
    """The logged-in user holding at least ``role``; LoginRequired / Forbidden otherwise."""
    uid = request.session.get("uid")
    if uid is None:
        raise LoginRequired()
    user = session.get(User, uid)
    if user is None or not user.active or user.session_version != request.session.get("sv"):
        request.session.clear()
        raise LoginRequired()
    if not role_at_least(user.role, role):
        raise Forbidden(f"this page needs the {role} role; you are a {user.role}")
    return user


class LoginLimiter:
    """At most ``max_failures`` failed logins per username and per client address in ``window_s``."""

    def __init__(self, max_failures: int = 5, window_s: float = 300.0):
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, username: str, address: str) -> float:
        """Seconds until another attempt is allowed (0: allowed now)."""
        now = time.monotonic()
        with self._lock:
            waits = []
            for key in (f"u:{username.lower()}", f"a:{address}"):
                q = self._recent(key, now)
                if len(q) >= self.max_failures:
                    waits.append(q[0] + self.window_s - now)
            return max(waits, default=0.0)

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            for key in (f"u:{username.lower()}", f"a:{address}"):
                self._recent(key, now).append(now)
            if len(self._failures) > 100_000:  # bound memory under a spray of usernames
                self._failures = {k: v for k, v in self._failures.items() if v}

    def succeeded(self, username: str) -> None:
        with self._lock:
            self._failures.pop(f"u:{username.lower()}", None)
