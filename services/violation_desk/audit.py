"""Writing and reading the append-only audit log."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import AuditEntry, User

SYSTEM = "system"


def record(session: Session, user: User | None, action: str, object_type: str, object_id: object,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
           at: float | None = None, who: str | None = None) -> AuditEntry:
    """Append an entry by ``user``; without a user, by ``who`` (e.g. the user name a failed
    login attempted) or else by the system."""
    entry = AuditEntry(
        user_id=user.id if user else None,
        username=user.username if user else (who[:64] if who else SYSTEM),
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before_json=json.dumps(before, sort_keys=True) if before is not None else None,
        after_json=json.dumps(after, sort_keys=True) if after is not None else None,
    )
    if at is not None:
        entry.at = at
    session.add(entry)
    return entry


def row(user: User | None, action: str, object_type: str, object_id: object,
        before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
        at: float | None = None) -> dict[str, Any]:
    """The same entry as ``record`` as a plain row, for bulk inserts."""
    import time

    return {"at": time.time() if at is None else at, "user_id": user.id if user else None,
            "username": user.username if user else SYSTEM, "action": action, "object_type": object_type,
            "object_id": str(object_id),
            "before_json": json.dumps(before, sort_keys=True) if before is not None else None,
            "after_json": json.dumps(after, sort_keys=True) if after is not None else None}


def entries(session: Session, *, object_type: str | None = None, object_id: str | None = None,
            before_id: int | None = None, limit: int = 100) -> list[AuditEntry]:
    """Newest first, keyset-paginated by id."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if object_type:
        q = q.where(AuditEntry.object_type == object_type)
    if object_id:
        q = q.where(AuditEntry.object_id == object_id)
    if before_id:
        q = q.where(AuditEntry.id < before_id)
    return list(session.scalars(q))
