"""Users (argon2-hashed passwords, roles reviewer < supervisor < admin) and REST API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, web_sessions
from .desk import Desk
from .models import ROLES, ApiToken, User

def make_hasher() -> PasswordHasher:
    """argon2id with argon2-cffi's default (RFC 9106 low-memory) cost."""
    return PasswordHasher()


_HASHER = make_hasher()
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD = 8
# A hash to verify against when the user does not exist, so timing does not reveal usernames.
_DUMMY_HASH = _HASHER.hash("not-a-real-password")


class UserError(ValueError):
    """A user or token request that cannot be carried out; the text says why."""


def role_at_least(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def add_user(target: Desk | Session, username: str, password: str, role: str = "reviewer",
             *, actor: User | None = None, replace: bool = False) -> User:
    """Create a user (or, with ``replace``, set an existing user's password and role)."""
    if not _USERNAME.match(username):
        raise UserError("username: 1-64 letters, digits or _ . @ -")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must have at least {MIN_PASSWORD} characters")
    if isinstance(target, Desk):
        with target.session() as s, s.begin():
            return add_user(s, username, password, role, actor=actor, replace=replace)
    s = target
    user = s.scalar(select(User).where(User.username == username))
    if user is not None and not replace:
        raise UserError(f"user {username!r} already exists")
    before = None
    if user is None:
        user = User(username=username, password_hash=hash_password(password), role=role, active=True,
                    session_version=1)
        s.add(user)
    else:
        before = {"role": user.role, "active": user.active}
        user.password_hash = hash_password(password)
        user.role, user.active = role, True
        user.session_version += 1
        web_sessions.end_all(s, user.id)  # a new password logs out every existing session
    s.flush()
    audit.record(s, actor, "user.add" if before is None else "user.replace", "user", user.username, before,
                 {"role": role, "active": True})
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active:
        try:
            _HASHER.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    try:
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _HASHER.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def set_active(session: Session, user: User, active: bool, actor: User | None) -> None:
    before = {"active": user.active}
    user.active = active
    user.session_version += 1
    web_sessions.end_all(session, user.id)
    audit.record(session, actor, "user.activate" if active else "user.deactivate", "user", user.username,
                 before, {"active": active})


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(target: Desk | Session, username: str, name: str = "api", *, actor: User | None = None) -> str:
    """A new bearer token for ``username``; the clear text is returned once and never stored."""
    if isinstance(target, Desk):
        with target.session() as s, s.begin():
            return create_token(s, username, name, actor=actor)
    s = target
    user = s.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user {username!r}")
    token = "stl_" + secrets.token_urlsafe(32)
    s.add(ApiToken(user_id=user.id, name=name[:100], token_sha256=_token_digest(token)))
    audit.record(s, actor, "token.create", "user", username, None, {"name": name})
    return token


def user_for_token(session: Session, token: str) -> User | None:
    row = session.scalar(select(ApiToken).where(ApiToken.token_sha256 == _token_digest(token),
                                                ApiToken.revoked_at.is_(None)))
    if row is None or not row.user.active:
        return None
    return row.user


def revoke_tokens(session: Session, username: str, actor: User | None = None) -> int:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise UserError(f"no user {username!r}")
    n = 0
    for tok in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))):
        tok.revoked_at = time.time()
        n += 1
    audit.record(session, actor, "token.revoke", "user", username, None, {"revoked": n})
    return n
