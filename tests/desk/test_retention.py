"""Retention: rejected violations and their evidence files go after N days; nothing else does."""

from __future__ import annotations

import time

from sqlalchemy import select

from stopline.services.violation_desk import review
from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.models import AuditEntry, Evidence, User, Violation
from stopline.services.violation_desk.retention import purge_rejected
from stopline.services.violation_desk.samples import make_result


def test_purge_removes_old_rejected_violations_and_their_files(seeded):
    ids = [ingest(seeded, *make_result(p)).violation_id for p in ("AB123CD", "XY987ZZ", "AB123C0")]
    with seeded.session() as s, s.begin():
        rita = s.scalar(select(User).where(User.username == "rita"))
        for vid in ids[:2]:
            review.claim(s, vid, rita)
        review.reject(s, ids[0], rita, "not a violation")
        review.approve(s, ids[1], rita)
        hashes = set(s.scalars(select(Evidence.file_sha256).where(Evidence.violation_id == ids[0])))
    assert len(hashes) == 1 and all(seeded.store.exists(h) for h in hashes)  # the violation's bundle

    assert purge_rejected(seeded, days=30).violations == 0  # decided just now: kept
    report = purge_rejected(seeded, days=30, now=time.time() + 31 * 86400)
    assert report.violations == 1 and report.files == len(hashes)
    with seeded.session() as s:
        assert {v.id for v in s.scalars(select(Violation))} == set(ids[1:])
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "violation.purge")).object_id == str(ids[0])
    assert not any(seeded.store.exists(h) for h in hashes)
