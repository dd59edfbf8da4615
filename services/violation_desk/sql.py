"""Small dialect helpers (SQLite and PostgreSQL both speak ON CONFLICT DO NOTHING)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(session: Session, model: Any, rows: list[dict[str, Any]] | None, conflict: list[str]):
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING`` for the session's database; without
    ``rows`` the statement is meant for executemany (``session.execute(stmt, rows)``)."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(model)
    if rows is not None:
        stmt = stmt.values(rows)
    return stmt.on_conflict_do_nothing(index_elements=conflict)
