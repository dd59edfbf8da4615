"""Ingestion: idempotent, transactional, batched; SHA-256 and Ed25519 checks; owner lookup."""

from __future__ import annotations

import io
import threading

import pytest
from sqlalchemy import func, select

from stopline.shared.bus import RetryLater
from stopline.shared.messages import sha256_hex
from stopline.services.violation_desk.cameras import add_camera
from stopline.services.violation_desk.desk import Desk
from stopline.services.violation_desk.ingest import ingest, ingest_batch
from stopline.services.violation_desk.models import AuditEntry, Evidence, Violation
from stopline.services.violation_desk.registry import import_registry, registry_csv
from stopline.services.violation_desk.samples import CameraKeyPair, make_result, tagged

OWNERS = [
    dict(plate="AB-123 CD", region="eu", make="VW", model="Golf", colour="red", vehicle_class="car",
         owner_name="Ann Example", owner_address="1 High St"),
    dict(plate="AB123C0", region="eu", make="Ford", model="Transit", colour="white", vehicle_class="truck",
         owner_name="Bob Example", owner_address="2 Low St"),
]


@pytest.fixture
def registry(desk):
    report = import_registry(desk, io.StringIO(registry_csv(OWNERS)))
    assert report.inserted == 2


def _violation(desk: Desk, event_id: str) -> Violation:
    with desk.session() as s:
        v = s.scalar(select(Violation).where(Violation.event_id == event_id))
        assert v is not None
        _ = v.candidates, v.evidence, v.vehicle
        for c in v.candidates:
            _ = c.vehicle
        return v


def test_same_event_twice_makes_one_row(desk):
    result, blobs = make_result("AB123CD")
    first = ingest(desk, result, blobs)
    second = ingest(desk, result, blobs)
    assert (first.status, second.status) == ("created", "duplicate")
    with desk.session() as s:
        assert s.scalar(select(func.count()).select_from(Violation)) == 1
        assert s.scalar(select(func.count()).select_from(Evidence)) == len(blobs)


def test_concurrent_delivery_of_one_event_makes_one_row(desk):
    result, blobs = make_result("AB123CD")
    outcomes, errors = [], []
    barrier = threading.Barrier(4)

    def deliver():
        try:
            barrier.wait()
            outcomes.append(ingest(desk, result, blobs).status)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(outcomes) == ["created", "duplicate", "duplicate", "duplicate"]
    with desk.session() as s:
        assert s.scalar(select(func.count()).select_from(Violation)) == 1


def test_batch_stores_each_event_once_and_reports_duplicates(desk):
    items = [make_result(f"AB{i:03d}CD") for i in range(20)]
    outcomes = ingest_batch(desk, items + items[:3])
    assert [o.status for o in outcomes].count("created") == 20
    assert [o.status for o in outcomes].count("duplicate") == 3
    with desk.session() as s:
        assert s.scalar(select(func.count()).select_from(Violation)) == 20
    # one file per violation (its bundle, named by its SHA-256); each image at its offset in it
    result, blobs = items[0]
    v = _violation(desk, result.candidate.event_id)
    assert len({e.file_sha256 for e in v.evidence}) == 1
    bundle = desk.store.get(v.evidence[0].file_sha256)
    assert sha256_hex(bundle) == v.evidence[0].file_sha256 and len(bundle) == sum(map(len, blobs.values()))
    for e in v.evidence:
        assert desk.store.read(e.file_sha256, e.file_offset, e.size) == blobs[e.name]
        assert sha256_hex(blobs[e.name]) == e.sha256


def test_missing_image_is_recorded_and_the_others_are_kept(desk):
    result, blobs = make_result()
    gone = result.candidate.evidence[1].name
    del blobs[gone]
    assert ingest(desk, result, blobs).integrity == "tampered"
    v = _violation(desk, result.candidate.event_id)
    for e in v.evidence:
        if e.name == gone:
            assert not e.intact and e.size == 0 and not desk.store.exists(e.file_sha256)
        else:
            assert desk.store.read(e.file_sha256, e.file_offset, e.size) == blobs[e.name]
    assert f"{gone} (missing)" in v.integrity_detail


def test_exact_plate_with_high_confidence_assigns_the_owner(desk, registry):
    result, blobs = make_result("ab 123 cd", confidence=0.97, colour="red")
    ingest(desk, result, blobs)
    v = _violation(desk, result.candidate.event_id)
    assert v.vehicle is not None and v.vehicle.owner_name == "Ann Example"
    assert v.match_kind == "exact" and not v.clone_flag


def test_low_confidence_exact_match_is_only_a_candidate(desk, registry):
    result, blobs = make_result("AB123CD", confidence=0.5)
    ingest(desk, result, blobs)
    v = _violation(desk, result.candidate.event_id)
    assert v.vehicle_id is None and v.match_kind == "none"
    kinds = {c.vehicle.owner_name: c.kind for c in v.candidates}
    assert kinds == {"Ann Example": "exact", "Bob Example": "confusion"}


def test_near_reads_give_candidates_never_an_owner(desk, registry):
    result, blobs = make_result("AB123CO", confidence=0.99)  # O: confusion of D and of 0
    ingest(desk, result, blobs)
    v = _violation(desk, result.candidate.event_id)
    assert v.vehicle_id is None
    assert {c.vehicle.owner_name for c in v.candidates} == {"Ann Example", "Bob Example"}
    assert all(c.kind == "confusion" for c in v.candidates)


def test_class_or_colour_mismatch_flags_possible_clone(desk, registry):
    result, blobs = make_result("AB123CD", confidence=0.99, vehicle_class="bus", colour="red")
    ingest(desk, result, blobs)
    v = _violation(desk, result.candidate.event_id)
    assert v.vehicle is not None and v.clone_flag
    assert "class" in v.clone_reason and "colour" not in v.clone_reason


def test_signed_event_from_registered_camera_is_verified(desk):
    key = CameraKeyPair.generate()
    add_camera(desk, "cam1", key.public_pem)
    result, blobs = make_result(key=key)
    assert ingest(desk, result, blobs).integrity == "verified"


def test_unsigned_or_unregistered_key_is_accepted_as_unverified(desk):
    add_camera(desk, "cam1", CameraKeyPair.generate().public_pem)
    unsigned, b1 = make_result()
    other_key, b2 = make_result(key=CameraKeyPair.generate())
    assert ingest(desk, unsigned, b1).integrity == "unverified"
    assert ingest(desk, other_key, b2).integrity == "unverified"
    assert "unregistered key" in _violation(desk, other_key.candidate.event_id).integrity_detail


def test_bad_signature_is_flagged_tampered_and_escalated(desk):
    key = CameraKeyPair.generate()
    add_camera(desk, "cam1", key.public_pem)
    result, blobs = make_result(key=key)
    result.candidate.time_into_red_s += 2.0  # changed after signing
    outcome = ingest(desk, result, blobs)
    assert outcome.created and outcome.integrity == "tampered"
    v = _violation(desk, result.candidate.event_id)
    assert v.status == "escalated" and "signature" in v.integrity_detail


def test_image_that_does_not_match_its_sha256_is_flagged_not_dropped(desk):
    key = CameraKeyPair.generate()
    add_camera(desk, "cam1", key.public_pem)
    result, blobs = make_result(key=key)
    name = result.candidate.evidence[0].name
    blobs[name] = tagged(blobs[name], "edited")
    outcome = ingest(desk, result, blobs)
    assert outcome.integrity == "tampered"
    v = _violation(desk, result.candidate.event_id)
    broken = [e for e in v.evidence if not e.intact]
    assert [e.name for e in broken] == [name]
    e = broken[0]
    assert desk.store.read(e.file_sha256, e.file_offset, e.size) == blobs[name]  # kept as it arrived
    assert name in v.integrity_detail


def test_ingest_is_audited(desk):
    result, blobs = make_result()
    out = ingest(desk, result, blobs)
    with desk.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "ingest"))
        assert entry.object_id == str(out.violation_id) and entry.username == "system"


def test_database_down_means_retry_later(tmp_path):
    desk = Desk("postgresql://nobody@127.0.0.1:1/none", tmp_path / "ev")
    result, blobs = make_result()
    with pytest.raises(RetryLater):
        ingest(desk, result, blobs)
    desk.close()


def test_a_failure_mid_batch_leaves_nothing_behind(desk, monkeypatch):
    from stopline.services.violation_desk import ingest as ingest_mod

    items = [make_result(f"AB{i:03d}CD") for i in range(3)]

    def broken(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ingest_mod, "lookup_many", broken)
    with pytest.raises(RuntimeError):
        ingest_batch(desk, items)
    with desk.session() as s:
        assert s.scalar(select(func.count()).select_from(Violation)) == 0
        assert s.scalar(select(func.count()).select_from(AuditEntry)) == 0
