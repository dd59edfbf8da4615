"""Small dialect helpers (SQLite and PostgreSQL both speak ON CONFLICT DO NOTHING) and the bulk
insert the ingestion and the registry import use."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import String, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

_PG = postgresql.dialect()


def insert_ignore(session: Session, model: Any, rows: list[dict[str, Any]] | None, conflict: list[str]):
    """``INSERT ... ON CONFLICT (conflict) DO NOTHING`` for the session's database; without
    ``rows`` the statement is meant for executemany (``session.execute(stmt, rows)``)."""
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(model)
    if rows is not None:
        stmt = stmt.values(rows)
    return stmt.on_conflict_do_nothing(index_elements=conflict)


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]], returning: Sequence[str] = (),
                conflict: Sequence[str] = ()) -> list[tuple]:
    """Insert ``rows`` (all with the same keys), skipping conflicts on ``conflict`` when given, and
    return ``returning`` of the rows actually inserted (in no particular order).

    On PostgreSQL this is one statement whatever the number of rows,
    ``INSERT ... SELECT * FROM unnest(%b::type[], ...)`` with one array parameter per column: the
    statement text never changes (psycopg caches and prepares it) and neither psycopg nor the
    server handles rows one by one. SQLAlchemy's alternatives (a compiled multi-row VALUES,
    insertmanyvalues, or executemany) build, send and parse every row's parameters separately,
    which cost more CPU than everything else the desk does per violation."""
    if not rows:
        return []
    columns = tuple(rows[0])
    if session.get_bind().dialect.name != "postgresql":
        if not returning:
            session.execute(insert_ignore(session, table, None, list(conflict)) if conflict else table.insert(), rows)
            return []
        stmt = insert_ignore(session, table, rows, list(conflict)) if conflict else table.insert().values(rows)
        return [tuple(r) for r in session.execute(stmt.returning(*(table.c[c] for c in returning)))]
    sql, converters = _unnest_insert(table, columns, tuple(returning), tuple(conflict))
    arrays = []
    for c, conv in zip(columns, converters):
        values = [r[c] for r in rows]
        # psycopg refuses lists of mixed types (1 and 2.5 for a float column): one type per column
        arrays.append(values if conv is None else [v if v is None else conv(v) for v in values])
    # through SQLAlchemy, so that errors arrive as sqlalchemy.exc.* (a lost connection is
    # invalidated and becomes RetryLater in the ingestion) like those of every other statement
    result = session.connection().exec_driver_sql(sql, tuple(arrays))
    return [tuple(r) for r in result] if returning else []


@functools.lru_cache(maxsize=64)
def _unnest_insert(table: Table, columns: tuple[str, ...], returning: tuple[str, ...],
                   conflict: tuple[str, ...]) -> tuple[str, list[Callable[[Any], Any] | None]]:
    cols = [table.c[c] for c in columns]
    names = ", ".join(f'"{c.name}"' for c in cols)  # our own column names, quoted
    # %b: binary arrays (psycopg's text format escapes every quote of a JSON value with a regex).
    # Strings travel as text[]: a cast to varchar(n)[] would cut a value that is too long, the
    # assignment to the column refuses it as a plain INSERT does.
    arrays = ", ".join(f"%b::{'TEXT' if isinstance(c.type, String) else c.type.compile(dialect=_PG)}[]"
                       for c in cols)
    sql = (f'INSERT INTO "{table.name}" ({names}) SELECT * FROM unnest({arrays})'
           + (f' ON CONFLICT ({", ".join(conflict)}) DO NOTHING' if conflict else "")
           + (f' RETURNING {", ".join(returning)}' if returning else ""))
    converters: list[Callable[[Any], Any] | None] = []
    for c in cols:
        kind = c.type.python_type
        converters.append(kind if kind in (float, int, bool) else None)
    return sql, converters
