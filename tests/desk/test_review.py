"""Review actions: claims, decisions, corrections, roles, the audit trail."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from stopline.services.violation_desk import review
from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.models import AuditEntry, Review, User, Violation
from stopline.services.violation_desk.samples import CameraKeyPair, make_result
from stopline.services.violation_desk.cameras import add_camera


def _user(s, name: str) -> User:
    return s.scalar(select(User).where(User.username == name))


def _new(desk, plate="AB123CD", **kw) -> int:
    result, blobs = make_result(plate, **kw)
    return ingest(desk, result, blobs).violation_id


def test_a_claimed_item_cannot_be_taken_or_decided_by_another_reviewer(seeded):
    vid = _new(seeded)
    with seeded.session() as s, s.begin():
        review.claim(s, vid, _user(s, "rita"))
    with seeded.session() as s, s.begin():
        with pytest.raises(review.ActionError) as e:
            review.claim(s, vid, _user(s, "rob"))
        assert e.value.code == 409 and "rita" in e.value.message
        with pytest.raises(review.ActionError):
            review.approve(s, vid, _user(s, "rob"))
    with seeded.session() as s, s.begin():
        assert review.approve(s, vid, _user(s, "rita")).status == "approved"


def test_an_expired_claim_can_be_taken_over(seeded):
    vid = _new(seeded)
    with seeded.session() as s, s.begin():
        review.claim(s, vid, _user(s, "rita"))
        s.get(Violation, vid).claimed_until = 1.0  # lapsed
    with seeded.session() as s, s.begin():
        review.claim(s, vid, _user(s, "rob"))
        assert review.reject(s, vid, _user(s, "rob"), "plate unreadable").status == "rejected"


def test_acting_without_a_claim_is_refused(seeded):
    vid = _new(seeded)
    with seeded.session() as s, s.begin():
        with pytest.raises(review.ActionError, match="claim"):
            review.approve(s, vid, _user(s, "rita"))


def test_reject_needs_a_reason_and_records_it(seeded):
    vid = _new(seeded)
    with seeded.session() as s, s.begin():
        rita = _user(s, "rita")
        review.claim(s, vid, rita)
        with pytest.raises(review.ActionError) as e:
            review.reject(s, vid, rita, "   ")
        assert e.value.code == 422
        review.reject(s, vid, rita, "emergency vehicle")
    with seeded.session() as s:
        v = s.get(Violation, vid)
        assert (v.status, v.reject_reason, v.decided_by) == ("rejected", "emergency vehicle", _user(s, "rita").id)
        r = s.scalar(select(Review).where(Review.violation_id == vid))
        assert (r.action, r.from_status, r.to_status) == ("reject", "queued", "rejected")


def test_a_decided_violation_cannot_be_decided_again(seeded):
    vid = _new(seeded)
    with seeded.session() as s, s.begin():
        rita = _user(s, "rita")
        review.claim(s, vid, rita)
        review.approve(s, vid, rita)
    with seeded.session() as s, s.begin():
        with pytest.raises(review.ActionError, match="already approved"):
            review.claim(s, vid, _user(s, "rob"))


def test_correcting_the_plate_reruns_the_lookup_and_assigns_the_owner(seeded):
    vid = _new(seeded, "XY9B7ZZ", confidence=0.6)  # misread 8 for B
    with seeded.session() as s:
        assert s.get(Violation, vid).vehicle_id is None
    with seeded.session() as s, s.begin():
        rita = _user(s, "rita")
        review.claim(s, vid, rita)
        review.correct_plate(s, vid, rita, "xy 987 zz")
    with seeded.session() as s:
        v = s.get(Violation, vid)
        assert v.plate_norm == "XY987ZZ" and v.plate_read == "XY9B7ZZ" and v.plate_corrected
        assert v.vehicle.owner_name == "Cleo Example" and v.match_kind == "manual"
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "violation.correct_plate"))
        assert '"plate": "XY9B7ZZ"' in entry.before_json and '"plate": "XY987ZZ"' in entry.after_json
        assert entry.username == "rita"


def test_assigning_a_candidate_needs_it_to_be_a_candidate(seeded):
    vid = _new(seeded, "AB123CO", confidence=0.99)
    with seeded.session() as s, s.begin():
        rita = _user(s, "rita")
        review.claim(s, vid, rita)
        v = s.get(Violation, vid)
        bob = next(c.vehicle_id for c in v.candidates if c.vehicle.owner_name == "Bob Example")
        review.assign_owner(s, vid, rita, bob)
        with pytest.raises(review.ActionError):
            review.assign_owner(s, vid, rita, 999_999)
    with seeded.session() as s:
        v = s.get(Violation, vid)
        assert v.vehicle.owner_name == "Bob Example" and v.match_kind == "manual"
        assert v.clone_flag  # detected a red car, registered a white truck


def test_escalated_items_need_a_supervisor(seeded):
    vid = _new(seeded)
    with seeded.session() as s, s.begin():
        rita = _user(s, "rita")
        review.claim(s, vid, rita)
        review.escalate(s, vid, rita, "is that an ambulance?")
    with seeded.session() as s, s.begin():
        with pytest.raises(review.ActionError) as e:
            review.claim(s, vid, _user(s, "rob"))
        assert e.value.code == 403
        sue = _user(s, "sue")
        review.claim(s, vid, sue)
        assert review.approve(s, vid, sue).status == "approved"


def test_tampered_evidence_can_never_be_approved(seeded):
    key = CameraKeyPair.generate()
    add_camera(seeded, "cam1", key.public_pem)
    result, blobs = make_result(key=key)
    result.candidate.track_id += 1  # altered after signing
    vid = ingest(seeded, result, blobs).violation_id
    with seeded.session() as s, s.begin():
        sue = _user(s, "sue")
        review.claim(s, vid, sue)
        with pytest.raises(review.ActionError, match="tampered"):
            review.approve(s, vid, sue)
        assert review.reject(s, vid, sue, "evidence tampered").status == "rejected"


def test_the_audit_log_is_append_only(seeded):
    with seeded.engine.connect() as conn:
        for stmt in ("UPDATE audit_log SET username = 'mallory'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError):
                with conn.begin():
                    conn.execute(text(stmt))
    with seeded.session() as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.username == "mallory")) is None
        assert s.scalar(select(AuditEntry).limit(1)) is not None
