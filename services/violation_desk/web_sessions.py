"""Server-side login sessions. The browser's (signed) cookie carries a random session id; the
database keeps only its SHA-256. A session is valid while its row exists and has not expired, so
logging out, deactivating a user or changing a password ends it even if the cookie is replayed."""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import delete
from sqlalchemy.orm import Session

from .models import User, WebSession


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(session: Session, user: User, ttl_s: float, address: str = "") -> str:
    """A new session for ``user`` (expired rows are removed on the way); returns its id."""
    now = time.time()
    session.execute(delete(WebSession).where(WebSession.expires_at < now))
    session_id = secrets.token_urlsafe(32)
    session.add(WebSession(id_sha256=_digest(session_id), user_id=user.id, created_at=now,
                           expires_at=now + ttl_s, address=address[:64]))
    return session_id


def is_valid(session: Session, session_id: str, user_id: int) -> bool:
    row = session.get(WebSession, _digest(session_id))
    return row is not None and row.user_id == user_id and row.expires_at > time.time()


def end(session: Session, session_id: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id_sha256 == _digest(session_id)))


def end_all(session: Session, user_id: int) -> int:
    """End every session of one user; returns how many there were."""
    return session.execute(delete(WebSession).where(WebSession.user_id == user_id)).rowcount or 0
