"""Small dialect helpers (SQLite and PostgreSQL both speak ON CONFLICT DO NOTHING)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
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


def insert_returning(session: Session, table: Table, rows: list[dict[str, Any]], returning: list[str],
                     conflict: list[str] | None = None) -> list[tuple]:
    """Insert ``rows`` (skipping conflicts on ``conflict`` when given) and return ``returning``
    of the rows actually inserted.

    On PostgreSQL this is psycopg's pipelined ``executemany(..., returning=True)`` of one short,
    cached statement: SQLAlchemy's alternatives (a compiled multi-row VALUES, or
    insertmanyvalues) re-build or re-parse thousands of parameters per batch, which cost more
    CPU than everything else the desk does per violation."""
    if not rows:
        return []
    columns = list(rows[0])
    if session.get_bind().dialect.name != "postgresql":
        stmt = (insert_ignore(session, table, rows, conflict) if conflict else table.insert().values(rows))
        return [tuple(r) for r in session.execute(stmt.returning(*(table.c[c] for c in returning)))]
    names = ", ".join(f'"{table.c[c].name}"' for c in columns)  # our own column names, quoted
    sql = (f'INSERT INTO "{table.name}" ({names}) VALUES ({", ".join(["%s"] * len(columns))})'
           + (f' ON CONFLICT ({", ".join(conflict)}) DO NOTHING' if conflict else "")
           + f' RETURNING {", ".join(returning)}')
    raw = session.connection().connection.driver_connection
    out: list[tuple] = []
    with raw.cursor() as cur:
        cur.executemany(sql, [tuple(r[c] for c in columns) for r in rows], returning=True)
        while True:
            out.extend(cur.fetchall())
            if not cur.nextset():
                break
    return out
