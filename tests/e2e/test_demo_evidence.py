"""``stopline demo`` signs its evidence: a camera key made at start, its public key registered at
the desk, so the demo's violations (and their clips) are verified; one image altered after
signing is flagged tampered by a desk holding that key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from stopline.services.violation_desk.cameras import add_camera
from stopline.services.violation_desk.desk import Desk
from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.models import Clip, Evidence, Violation
from stopline.shared.config import load_site
from stopline.shared.messages import PlateResult

from .test_demo import demo_running, demo_scene  # noqa: F401 (fixture)

pytestmark = [pytest.mark.timeout(500), pytest.mark.xdist_group("demo")]


def test_demo_evidence_is_verified_and_a_tampered_image_is_flagged(demo_scene, tmp_path):  # noqa: F811
    work = tmp_path / "demo"
    with demo_running(work, demo_scene, "--exit-when-done", "--settle", "60") as (proc, port, out):
        assert proc.wait(400) == 0, out.read_text()[-3000:]
    camera = yaml.safe_load((work / "camera.yaml").read_text())
    assert Path(camera["evidence"]["signing_key"]).exists()
    desk = Desk.from_site(load_site(work / "site.yaml"))
    try:
        with desk.session() as s:
            violations = list(s.scalars(select(Violation)))
            assert violations and {v.integrity for v in violations} == {"verified"}, \
                [(v.integrity, v.integrity_detail) for v in violations]
            clips = list(s.scalars(select(Clip)))
            assert clips and {c.integrity for c in clips} == {"verified"}
            assert {c.event_id for c in clips} <= {v.event_id for v in violations}
            v = violations[0]
            result = PlateResult.model_validate_json(v.message_json)
            blobs = {e.name: desk.store.read(e.file_sha256, e.file_offset, e.size)
                     for e in s.scalars(select(Evidence).where(Evidence.violation_id == v.id))}
    finally:
        desk.close()

    # one image altered after the camera signed it, received by a desk holding the demo's key
    name = next(e.name for e in result.candidate.evidence if e.role == "crossing")
    data = bytearray(blobs[name])
    data[len(data) // 2] ^= 0x01
    blobs[name] = bytes(data)
    other = Desk(f"sqlite:///{tmp_path / 'other.db'}", tmp_path / "other-evidence", durable_evidence=False)
    try:
        other.upgrade()
        public = Path(camera["evidence"]["signing_key"]).with_name(f"{camera['id']}.pub.pem")
        add_camera(other, camera["id"], public.read_text(), "")
        outcome = ingest(other, result, blobs)
        with other.session() as s:
            flagged = s.get(Violation, outcome.violation_id)
            assert flagged.integrity == "tampered" and name in flagged.integrity_detail
            assert flagged.status == "escalated"
    finally:
        other.close()
