"""The review queue: filters and keyset pagination (no OFFSET, no COUNT over the whole table,
so a page costs the same with a million rows as with a hundred)."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session, joinedload

from .models import MAX_ID, STATUSES, Violation
from .plates import normalise_plate

PAGE = 50


class QueryError(ValueError):
    """A filter or cursor the queue cannot use."""


@dataclass(frozen=True)
class Filters:
    status: str | None = "queued"  # None: every status
    camera: str | None = None
    date_from: dt.date | None = None  # UTC days, inclusive
    date_to: dt.date | None = None
    plate: str | None = None  # prefix of the normalised plate
    newest_first: bool = False

    @classmethod
    def parse(cls, status: str | None = "queued", camera: str | None = None, date_from: str | None = None,
              date_to: str | None = None, plate: str | None = None, order: str | None = None) -> "Filters":
        status = (status or "").strip() or None
        if status == "all":
            status = None
        if status is not None and status not in STATUSES:
            raise QueryError(f"status must be one of {', '.join(STATUSES)} or all")
        if order not in (None, "", "oldest", "newest"):
            raise QueryError("order must be oldest or newest")
        return cls(status=status, camera=(camera or "").strip() or None, date_from=_date(date_from, "from"),
                   date_to=_date(date_to, "to"), plate=normalise_plate(plate or "") or None,
                   newest_first=order == "newest")


def _date(text: str | None, what: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise QueryError(f"date {what}: use YYYY-MM-DD") from None


def _epoch(day: dt.date) -> float:
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()


def encode_cursor(v: Violation) -> str:
    return f"{v.crossed_at!r}_{v.id}"


def decode_cursor(cursor: str) -> tuple[float, int]:
    try:
        at, vid = cursor.split("_", 1)
        key = float(at), int(vid)
    except ValueError:
        raise QueryError("bad cursor") from None
    if not math.isfinite(key[0]) or not 0 <= key[1] <= MAX_ID:
        raise QueryError("bad cursor")
    return key


def query(filters: Filters, base: Select | None = None) -> Select:
    q = select(Violation) if base is None else base
    if filters.status:
        q = q.where(Violation.status == filters.status)
    if filters.camera:
        q = q.where(Violation.camera_id == filters.camera)
    if filters.date_from:
        q = q.where(Violation.crossed_at >= _epoch(filters.date_from))
    if filters.date_to:
        q = q.where(Violation.crossed_at < _epoch(filters.date_to + dt.timedelta(days=1)))
    if filters.plate:
        q = q.where(Violation.plate_norm.like(filters.plate + "%"))
    return q


def page(session: Session, filters: Filters, cursor: str | None = None, limit: int = PAGE) -> tuple[list[Violation], str | None]:
    """One page and the cursor of the next (None on the last page).

    Two steps: the page's ids from the indexes alone (an index-only scan where the filter allows),
    then those rows in full; so a filter matching thousands of rows sorts keys, not rows."""
    key = tuple_(Violation.crossed_at, Violation.id)
    q = query(filters, select(Violation.id))
    if cursor:
        c = decode_cursor(cursor)
        q = q.where(key < tuple_(*c) if filters.newest_first else key > tuple_(*c))
    if filters.newest_first:
        q = q.order_by(Violation.crossed_at.desc(), Violation.id.desc())
    else:
        q = q.order_by(Violation.crossed_at, Violation.id)
    ids = list(session.scalars(q.limit(limit + 1)))
    more = len(ids) > limit
    ids = ids[:limit]
    if not ids:
        return [], None
    loaded = {v.id: v for v in session.scalars(select(Violation).where(Violation.id.in_(ids)).options(
        joinedload(Violation.vehicle), joinedload(Violation.claimer))).unique()}
    rows = [loaded[i] for i in ids if i in loaded]
    return rows, (encode_cursor(rows[-1]) if more and rows else None)


def next_for_review(session: Session, user_id: int, after: Violation | None, filters: Filters,
                    exclude: Collection[int] = ()) -> Violation | None:
    """The next item after ``after`` that nobody else holds (for the keyboard loop), oldest
    first; past the end of the list it wraps round to the start (``after`` itself excluded)."""
    now = time.time()
    q = query(filters).where((Violation.claimed_by.is_(None)) | (Violation.claimed_until < now)
                             | (Violation.claimed_by == user_id))
    if exclude:
        q = q.where(Violation.id.not_in(list(exclude)))
    order = (Violation.crossed_at, Violation.id)
    if after is not None:
        found = session.scalar(q.where(tuple_(*order) > tuple_(after.crossed_at, after.id))
                               .order_by(*order).limit(1))
        if found is not None:
            return found
        q = q.where(Violation.id != after.id)
    return session.scalar(q.order_by(*order).limit(1))


FILTER_KEYS = ("status", "camera", "from", "to", "plate", "order")
MAX_FILTER_VALUE = 64


def clean_filter_query(text: str) -> str:
    """The queue filters of a query string, and nothing else: known keys only, each value at
    most MAX_FILTER_VALUE characters (it travels in links and redirects)."""
    keep: dict[str, str] = {}
    for k, v in parse_qsl(text[:4096]):
        if k in FILTER_KEYS and v and k not in keep:
            keep[k] = v[:MAX_FILTER_VALUE]
    return urlencode(keep)
