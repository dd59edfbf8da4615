"""Users: argon2id hashes, roles, tokens."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from stopline.services.violation_desk import users
from stopline.services.violation_desk.models import User
from stopline.services.violation_desk.users import UserError, add_user, authenticate, create_token, user_for_token


def test_production_hasher_is_argon2id_with_library_defaults():
    from argon2 import PasswordHasher

    prod = users.make_hasher()  # conftest patches the module's hasher with a cheap one
    assert prod.hash("a password").startswith("$argon2id$")
    default = PasswordHasher()
    assert (prod.time_cost, prod.memory_cost, prod.parallelism) == (
        default.time_cost, default.memory_cost, default.parallelism)


def test_passwords_are_hashed_and_checked(desk):
    add_user(desk, "ann", "s3cret-enough", "supervisor")
    with desk.session() as s:
        u = s.scalar(select(User).where(User.username == "ann"))
        assert u.password_hash.startswith("$argon2id$") and "s3cret" not in u.password_hash
        assert authenticate(s, "ann", "s3cret-enough").id == u.id
        assert authenticate(s, "ann", "wrong password") is None
        assert authenticate(s, "nobody", "s3cret-enough") is None


def test_bad_users_are_refused_with_a_reason(desk):
    add_user(desk, "ann", "long enough pw")
    for name, pw, role, match in [("ann", "long enough pw", "reviewer", "exists"),
                                  ("bo b", "long enough pw", "reviewer", "username"),
                                  ("bob", "short", "reviewer", "at least"),
                                  ("bob", "long enough pw", "root", "role")]:
        with pytest.raises(UserError, match=match):
            add_user(desk, name, pw, role)


def test_replace_resets_password_and_ends_sessions(desk):
    add_user(desk, "ann", "first password")
    with desk.session() as s:
        before = s.scalar(select(User.session_version).where(User.username == "ann"))
    add_user(desk, "ann", "second password", "admin", replace=True)
    with desk.session() as s:
        u = s.scalar(select(User).where(User.username == "ann"))
        assert u.role == "admin" and u.session_version == before + 1
        assert authenticate(s, "ann", "second password") is not None
        assert authenticate(s, "ann", "first password") is None


def test_tokens_are_stored_hashed_and_map_to_their_user(desk):
    add_user(desk, "ann", "long enough pw")
    token = create_token(desk, "ann")
    with desk.session() as s:
        assert user_for_token(s, token).username == "ann"
        assert user_for_token(s, token + "x") is None
        from stopline.services.violation_desk.models import ApiToken

        assert token not in {t.token_sha256 for t in s.scalars(select(ApiToken))}
