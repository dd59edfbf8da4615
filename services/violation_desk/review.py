"""Review actions: claim, approve, reject with a reason, correct the plate (re-runs the lookup),
assign a lookup candidate, escalate. Every action checks the role and the claim, records a
review row and an audit entry with the state before and after, and is decided under a row lock
(SELECT ... FOR UPDATE on PostgreSQL; SQLite transactions here are BEGIN IMMEDIATE), so two
reviewers can never decide the same violation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from . import audit, queue
from .desk import desk_of
from .lookup import clone_check, lookup
from .models import LookupCandidate, Review, User, Violation
from .plates import plate_from_reviewer
from .users import role_at_least


class ActionError(Exception):
    """An action that is not allowed now; ``code`` is the HTTP status the web app answers."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ActionResult:
    violation_id: int
    event_id: str
    camera: str
    status: str
    changed_status: bool
    message: str | None = None  # what the reviewer is told (e.g. the plate correction's outcome)


def _snapshot(v: Violation) -> dict[str, Any]:
    return {"status": v.status, "plate": v.plate_norm, "vehicle_id": v.vehicle_id, "match_kind": v.match_kind,
            "clone_flag": v.clone_flag, "reject_reason": v.reject_reason,
            "claimed_by": v.claimed_by}


def _load(session: Session, violation_id: int) -> Violation:
    v = session.scalar(select(Violation).where(Violation.id == violation_id).with_for_update())
    if v is None:
        raise ActionError(404, f"no violation {violation_id}")
    return v


def needed_role(v: Violation) -> str:
    return "supervisor" if v.status == "escalated" else "reviewer"


def claim_holder(v: Violation, at: float | None = None) -> int | None:
    at = time.time() if at is None else at
    if v.claimed_by is not None and v.claimed_until is not None and v.claimed_until > at:
        return v.claimed_by
    return None


def claim(session: Session, violation_id: int, user: User) -> Violation:
    """Take (or renew) the claim on a violation for ``claim_ttl_s``; 409 if someone else holds it."""
    v = _load(session, violation_id)
    if v.status not in ("queued", "escalated"):
        raise ActionError(409, f"violation {violation_id} is already {v.status}")
    if not role_at_least(user.role, needed_role(v)):
        raise ActionError(403, f"an {v.status} violation needs a {needed_role(v)}")
    holder = claim_holder(v)
    if holder is not None and holder != user.id:
        other = session.get(User, holder)
        raise ActionError(409, f"claimed by {other.username if other else holder}")
    renew = holder == user.id
    v.claimed_by = user.id
    v.claimed_until = time.time() + desk_of(session).claim_ttl_s
    if not renew:
        audit.record(session, user, "violation.claim", "violation", v.id, None, {"claimed_by": user.username})
    return v


def release(session: Session, violation_id: int, user: User) -> None:
    v = _load(session, violation_id)
    if v.claimed_by == user.id:
        v.claimed_by = v.claimed_until = None
        audit.record(session, user, "violation.release", "violation", v.id, {"claimed_by": user.username}, None)


def _check_can_act(session: Session, v: Violation, user: User) -> None:
    if v.status not in ("queued", "escalated"):
        raise ActionError(409, f"violation {v.id} is already {v.status}")
    if not role_at_least(user.role, needed_role(v)):
        raise ActionError(403, f"an {v.status} violation needs a {needed_role(v)}")
    holder = claim_holder(v)
    if holder != user.id:
        if holder is None:
            raise ActionError(409, "claim the violation before acting on it")
        other = session.get(User, holder)
        raise ActionError(409, f"claimed by {other.username if other else holder}")


def _finish(session: Session, v: Violation, user: User, action: str, before: dict[str, Any],
            reason: str | None = None, extra: dict[str, Any] | None = None,
            message: str | None = None) -> ActionResult:
    after = _snapshot(v) | ({"reason": reason} if reason else {}) | (extra or {})
    session.add(Review(violation_id=v.id, user_id=user.id, action=action, reason=reason,
                       from_status=before["status"], to_status=v.status))
    audit.record(session, user, f"violation.{action}", "violation", v.id, before, after)
    return ActionResult(v.id, v.event_id, v.camera_id, v.status, before["status"] != v.status, message)


def _decide(session: Session, violation_id: int, user: User, status: str, action: str,
            reason: str | None = None, match_kind: str | None = None) -> ActionResult:
    v = _load(session, violation_id)
    _check_can_act(session, v, user)
    before = _snapshot(v)
    v.status = status
    v.match_kind = match_kind or v.match_kind
    if status in ("approved", "rejected"):
        v.decided_at, v.decided_by = time.time(), user.id
    v.reject_reason = reason if status == "rejected" else v.reject_reason
    v.claimed_by = v.claimed_until = None
    return _finish(session, v, user, action, before, reason)


def approve(session: Session, violation_id: int, user: User, no_registration: bool = False) -> ActionResult:
    """Approve; the violation needs an assigned registration, or the reviewer's explicit
    ``no_registration`` decision (kept as match kind ``unregistered`` and marked in the export)."""
    v = _load(session, violation_id)
    if v.integrity == "tampered":
        raise ActionError(409, "evidence failed its integrity check (tampered): it can only be rejected")
    _check_can_act(session, v, user)
    if v.vehicle_id is None and not no_registration:
        raise ActionError(409, "no owner is assigned: choose a registration, or approve as "
                               "'no registration found'")
    if v.vehicle_id is not None and no_registration:
        raise ActionError(409, "a registration is assigned: approve it, or correct the plate first")
    return _decide(session, violation_id, user, "approved", "approve",
                   match_kind="unregistered" if no_registration else None)


def reject(session: Session, violation_id: int, user: User, reason: str) -> ActionResult:
    reason = (reason or "").strip()
    if not reason:
        raise ActionError(422, "a rejection needs a reason")
    return _decide(session, violation_id, user, "rejected", "reject", reason[:2000])


def escalate(session: Session, violation_id: int, user: User, reason: str | None = None) -> ActionResult:
    v = _load(session, violation_id)
    if v.status == "escalated":
        raise ActionError(409, "already escalated")
    return _decide(session, violation_id, user, "escalated", "escalate", (reason or "").strip()[:2000] or None)


def claim_next(session: Session, user: User, after: Violation | None, filters: queue.Filters) -> Violation | None:
    """Claim the next free item after ``after`` (wrapping round to the start of the list) for
    the review loop; None when nothing is left that ``user`` may take."""
    tried: set[int] = set()
    for _ in range(20):  # skip items another reviewer grabs between our read and our claim
        nxt = queue.next_for_review(session, user.id, after, filters, exclude=tried)
        if nxt is None:
            return None
        try:
            return claim(session, nxt.id, user)
        except ActionError:
            tried.add(nxt.id)
    return None


def _apply_lookup(session: Session, v: Violation, plate_norm: str, manual: bool) -> None:
    desk = desk_of(session)
    found = lookup(session, plate_norm, v.plate_region, 1.0 if manual else v.plate_confidence,
                   desk.auto_assign_confidence, manual=manual)
    session.execute(delete(LookupCandidate).where(LookupCandidate.violation_id == v.id))
    for m in found.candidates:
        session.add(LookupCandidate(violation_id=v.id, vehicle_id=m.vehicle.id, kind=m.kind, score=m.score))
    v.vehicle_id = found.assigned.id if found.assigned else None
    v.match_kind = found.match_kind
    reason = clone_check(found.assigned, v.vehicle_class, v.vehicle_colour)
    v.clone_flag, v.clone_reason = reason is not None, reason
    session.expire(v, ["candidates", "vehicle"])


def correct_plate(session: Session, violation_id: int, user: User, plate: str) -> ActionResult:
    """Set the plate a reviewer reads; the owner lookup re-runs and an exact match is assigned.
    Text that is not a plate is refused (never cut or stripped into one)."""
    try:
        norm = plate_from_reviewer(plate or "")
    except ValueError as e:
        raise ActionError(422, f"plate not changed: {e}") from None
    v = _load(session, violation_id)
    _check_can_act(session, v, user)
    before = _snapshot(v)
    v.plate_norm, v.plate_corrected = norm, True
    _apply_lookup(session, v, norm, manual=True)
    owner = (f"registered to {v.vehicle.owner_name}" if v.vehicle is not None else
             "no exact registration: choose a candidate, or approve as 'no registration found'")
    message = f"Plate corrected to {norm} (read by the camera: {v.plate_read or 'nothing'}); {owner}."
    return _finish(session, v, user, "correct_plate", before, None, {"plate_read": v.plate_read}, message)


def assign_owner(session: Session, violation_id: int, user: User, vehicle_id: int) -> ActionResult:
    """Accept one of the lookup candidates as the registration (the reviewer's decision)."""
    v = _load(session, violation_id)
    _check_can_act(session, v, user)
    cand = session.scalar(select(LookupCandidate).where(LookupCandidate.violation_id == v.id,
                                                        LookupCandidate.vehicle_id == vehicle_id))
    if cand is None:
        raise ActionError(422, "that registration is not among this violation's lookup candidates")
    before = _snapshot(v)
    v.vehicle_id, v.match_kind = vehicle_id, "manual"
    reason = clone_check(cand.vehicle, v.vehicle_class, v.vehicle_colour)
    v.clone_flag, v.clone_reason = reason is not None, reason
    session.expire(v, ["vehicle"])
    return _finish(session, v, user, "assign_owner", before)
