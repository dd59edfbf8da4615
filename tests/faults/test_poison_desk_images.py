"""The desk checks that evidence images decode: a plate result whose images are garbage or
truncated JPEGs (with SHA-256 values that match those bytes) is refused, never stored as intact
(the bus then dead-letters it; see test_poison_services.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from stopline.shared.messages import sha256_hex
from stopline.services.violation_desk.desk import Desk
from stopline.services.violation_desk.ingest import ingest, ingest_batch
from stopline.services.violation_desk.integrity import EvidenceError
from stopline.services.violation_desk.models import Evidence, Violation
from stopline.services.violation_desk.samples import make_result


@pytest.fixture
def desk(tmp_path):
    d = Desk(f"sqlite:///{tmp_path / 'desk.db'}", tmp_path / "evidence")
    d.upgrade()
    yield d
    d.close()


def _rows(desk: Desk) -> tuple[int, int]:
    with desk.session() as s:
        return (s.scalar(select(func.count()).select_from(Violation)),
                s.scalar(select(func.count()).select_from(Evidence)))


def _broken(how: str):
    result, blobs = make_result("AB123CD")
    ev = result.candidate.evidence[1]
    blobs[ev.name] = {"garbage": b"\xff\xd8 not a picture", "truncated": blobs[ev.name][: len(blobs[ev.name]) // 2],
                      "empty": b""}[how]
    ev.sha256 = sha256_hex(blobs[ev.name])
    return result, blobs, ev.name


@pytest.mark.parametrize("how", ["garbage", "truncated", "empty"])
def test_undecodable_evidence_is_refused_and_nothing_is_stored(desk, how):
    result, blobs, name = _broken(how)
    with pytest.raises(EvidenceError, match=name):
        ingest(desk, result, blobs)
    assert _rows(desk) == (0, 0)


def test_a_plate_crop_that_does_not_decode_is_refused(desk):
    result, blobs = make_result("AB123CD")
    plate = result.plates[0]
    blobs[plate.name] = b"GIF89a nonsense"
    plate.sha256 = sha256_hex(blobs[plate.name])
    with pytest.raises(EvidenceError, match=plate.name):
        ingest(desk, result, blobs)


def test_a_batch_with_one_broken_result_stores_nothing_and_the_good_ones_go_alone(desk):
    good = [make_result("AB123CD") for _ in range(3)]
    bad = _broken("garbage")[:2]
    with pytest.raises(EvidenceError):
        ingest_batch(desk, [*good[:2], bad, good[2]])
    assert _rows(desk) == (0, 0)
    assert [o.status for o in ingest_batch(desk, good)] == ["created"] * 3
