"""The evidence package at the desk: clips filed and checked, not-enforceable violations, the
annotated copies, and the PDF record (rendered to page images with poppler's pdftoppm)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from stopline.cli import main
from stopline.services.violation_desk.cameras import add_camera
from stopline.services.violation_desk.clips import ingest_clips
from stopline.services.violation_desk.evidence_pdf import EvidencePdfError, evidence_pdf
from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.models import Clip, Evidence, Violation
from stopline.services.violation_desk.samples import CameraKeyPair
from stopline.services.violation_desk.web.app import create_app

from .conftest import PASSWORD
from .evidence_samples import approved_violation, clip_for, signed_result
from .test_web import login


@pytest.fixture
def key(seeded) -> CameraKeyPair:
    k = CameraKeyPair.generate()
    add_camera(seeded, "cam1", k.public_pem, "")
    return k


def _clip(desk, event_id: str) -> Clip:
    with desk.session() as s:
        return s.scalar(select(Clip).where(Clip.event_id == event_id))


def test_clip_is_filed_by_event_id_checked_and_idempotent(seeded, key):
    result, blobs = signed_result(key)
    early = signed_result(key)[0]
    # a clip may come before its violation: filed all the same
    assert ingest_clips(seeded, [clip_for(early, key)]) == ["verified"]
    vid = ingest(seeded, result, blobs).violation_id
    msg, clip_blobs = clip_for(result, key)
    assert ingest_clips(seeded, [(msg, clip_blobs)]) == ["verified"]
    assert ingest_clips(seeded, [(msg, clip_blobs)]) == ["verified"]  # redelivered: still one row
    with seeded.session() as s:
        assert s.scalar(select(Clip.id).where(Clip.event_id == result.candidate.event_id)) is not None
        assert len(list(s.scalars(select(Clip)))) == 2
    row = _clip(seeded, result.candidate.event_id)
    assert row.integrity == "verified" and row.content_type == "video/mp4"
    assert seeded.store.get(row.sha256) == clip_blobs[msg.clip.name]
    with seeded.session() as s:
        assert s.get(Violation, vid).integrity == "verified"


def test_a_tampered_clip_flags_its_violation_and_an_unsigned_one_is_unverified(seeded, key):
    result, blobs = signed_result(key)
    vid = ingest(seeded, result, blobs).violation_id
    msg, clip_blobs = clip_for(result, key)
    data = bytearray(clip_blobs[msg.clip.name])
    data[len(data) // 2] ^= 0xFF  # one byte changed after signing
    assert ingest_clips(seeded, [(msg, {msg.clip.name: bytes(data)})]) == ["tampered"]
    with seeded.session() as s:
        v = s.get(Violation, vid)
        assert v.integrity == "tampered" and v.status == "escalated" and "clip" in v.integrity_detail
    other = signed_result(None)[0]
    assert ingest_clips(seeded, [clip_for(other, None)]) == ["unverified"]
    # a tampered clip that arrives before its violation: the violation is flagged when it comes
    late, late_blobs = signed_result(key)
    msg, clip_blobs = clip_for(late, key)
    assert ingest_clips(seeded, [(msg, {msg.clip.name: clip_blobs[msg.clip.name][:-10]})]) == ["tampered"]
    outcome = ingest(seeded, late, late_blobs)
    assert outcome.integrity == "tampered" and outcome.queued_as == "escalated"
    with seeded.session() as s:
        assert "clip: SHA-256 mismatch" in s.get(Violation, outcome.violation_id).integrity_detail


def test_a_violation_the_camera_marks_not_enforceable_is_not_queued(seeded, key):
    result, blobs = signed_result(None)
    result.candidate.not_enforceable = "amber 2.60 s shorter than the minimum 3.0 s"
    key.sign(result.candidate)
    outcome = ingest(seeded, result, blobs)
    vid = outcome.violation_id
    assert outcome.queued_as == "not_enforceable"  # what the desk announces on the status topic
    with seeded.session() as s:
        v = s.get(Violation, vid)
        assert v.status == "not_enforceable" and v.integrity == "verified"
    with TestClient(create_app(seeded, "t")) as client:
        login(client, "rita")
        page = client.get(f"/violations/{vid}").text
        assert 'id="not-enforceable"' in page and "shorter than the minimum 3.0 s" in page
        assert 'id="approve-form"' not in page and 'id="claim-form"' not in page


def _decode(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


def _red(img: np.ndarray) -> np.ndarray:
    return (img[:, :, 2] > 200) & (img[:, :, 1] < 60) & (img[:, :, 0] < 60)


def test_annotated_copy_marks_the_offender_and_adds_a_data_bar(seeded, key):
    result, blobs = signed_result(key)
    vid = ingest(seeded, result, blobs).violation_id
    with TestClient(create_app(seeded, "t")) as client:
        assert client.get("/evidence/1/annotated", follow_redirects=False).status_code == 303  # login first
        login(client, "rita")
        with seeded.session() as s:
            evs = list(s.scalars(select(Evidence).where(Evidence.violation_id == vid, Evidence.kind == "evidence")))
        for ev in evs:
            original = _decode(client.get(f"/evidence/{ev.id}").content)
            r = client.get(f"/evidence/{ev.id}/annotated")
            assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
            ann = _decode(r.content)
            h, w = original.shape[:2]
            assert ann.shape[0] > h + 40  # the data bar under the picture
            bar = ann[h + 4:]
            assert bar.mean() < 80 and (bar > 200).mean() > 0.01  # dark band with text
            if ev.role in ("approach", "crossing", "inside"):
                x1, y1, x2, y2 = (int(v) for v in result.candidate.evidence[0].vehicle_box)
                edge = _red(ann[y1:y2, x1 - 4:x2 + 5])
                left, right = edge[:, :9].any(axis=1).mean(), edge[:, -9:].any(axis=1).mean()
                assert left > 0.8 and right > 0.8, (left, right)  # the offender's box, both sides
                assert _red(original[y1:y2, x1 - 4:x2 + 5])[:, :9].any(axis=1).mean() < 0.2
        page = client.get(f"/violations/{vid}").text
        assert f'src="/evidence/{evs[0].id}/annotated"' in page and f'data-original="/evidence/{evs[0].id}"' in page


def _pages(pdf: bytes, tmp_path: Path) -> list[np.ndarray]:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm is not installed (apt-get install poppler-utils)")
    (tmp_path / "r.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "100", "-png", str(tmp_path / "r.pdf"), str(tmp_path / "page")], check=True)
    return [cv2.imread(str(p)) for p in sorted(tmp_path.glob("page*.png"))]


def _text(pdf: bytes, tmp_path: Path) -> str:
    (tmp_path / "t.pdf").write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(tmp_path / "t.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout


def test_pdf_record_shows_stills_plate_data_bar_hashes_and_signature(seeded, key, tmp_path):
    vid = approved_violation(seeded, key)
    start = time.perf_counter()
    pdf = evidence_pdf(seeded, vid)
    took = time.perf_counter() - start
    assert pdf.startswith(b"%PDF") and took < 2.0, took
    text = _text(pdf, tmp_path)
    with seeded.session() as s:
        v = s.get(Violation, vid)
        shas = [e.sha256 for e in v.evidence]
        event_id = v.event_id
    assert event_id in text and "Ann Example" in text and "rita" in text and "approved" in text
    assert "VERIFIED: Ed25519 signature valid" in text and "3.52 s" in text
    assert all(sha in text for sha in shas) and _clip(seeded, event_id).sha256 in text
    pages = _pages(pdf, tmp_path)
    assert len(pages) >= 3
    # the plate close-up on page 1: the registry plate's crop, found in the page image
    crop = cv2.cvtColor(_decode_plate(seeded, vid), cv2.COLOR_BGR2GRAY)
    page1 = cv2.cvtColor(pages[0], cv2.COLOR_BGR2GRAY)
    scale = (18 / 25.4 * 100) / crop.shape[0]  # drawn 18 mm high at 100 dpi
    templ = cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    assert cv2.minMaxLoc(cv2.matchTemplate(page1, templ, cv2.TM_CCOEFF_NORMED))[1] > 0.8
    # annotated stills: the offender's red box and the dark data bar under each picture
    stills = pages[1:-1]
    assert sum(_red(p).sum() for p in stills) > 500
    bars = 0
    for p in stills:  # a data bar: a run of dark rows, with white text in them, under each picture
        dark = np.nonzero(p.mean(axis=(1, 2)) < 90)[0]
        # (a row of dense white text inside the bar can lift that row's mean: gaps of a few rows
        # do not end a bar)
        runs = np.split(dark, np.nonzero(np.diff(dark) > 2)[0] + 1) if len(dark) else []
        bars += sum(1 for r in runs if len(r) >= 25 and (p[r] > 200).mean() > 0.01)
    assert bars >= 3  # one per annotated frame (approach, crossing, inside; the signal crop has none)


def _decode_plate(desk, vid: int) -> np.ndarray:
    with desk.session() as s:
        ev = s.scalar(select(Evidence).where(Evidence.violation_id == vid, Evidence.kind == "plate"))
        return _decode(desk.store.read(ev.file_sha256, ev.file_offset, ev.size))


def test_pdf_only_for_approved_and_a_tampered_file_shows_in_it(seeded, key, tmp_path):
    result, blobs = signed_result(key)
    vid = ingest(seeded, result, blobs).violation_id
    with pytest.raises(EvidencePdfError, match="queued"):
        evidence_pdf(seeded, vid)
    vid = approved_violation(seeded, key)
    with seeded.session() as s:  # the stored bundle is altered after approval
        ev = s.scalar(select(Evidence).where(Evidence.violation_id == vid, Evidence.role == "crossing"))
    path = seeded.store.path(ev.file_sha256)
    data = bytearray(path.read_bytes())
    data[ev.file_offset + ev.size // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    text = _text(evidence_pdf(seeded, vid), tmp_path)
    assert "TAMPERED" in text and "DOES NOT MATCH" in text


def test_evidence_pdf_command(seeded, key, tmp_path):
    vid = approved_violation(seeded, key)
    out = tmp_path / "record.pdf"
    args = ["desk", "evidence-pdf", str(vid), "--database-url", seeded.database_url, "--evidence-dir",
            str(seeded.store.root), "--out", str(out)]
    assert main(args) == 0 and out.read_bytes().startswith(b"%PDF")
    assert main(args[:2] + ["999999"] + args[3:]) == 1


def test_pdf_button_and_download(seeded, key):
    vid = approved_violation(seeded, key)
    with TestClient(create_app(seeded, "t")) as client:
        login(client, "sue", PASSWORD)
        page = client.get(f"/violations/{vid}").text
        assert f'href="/violations/{vid}/evidence.pdf"' in page
        r = client.get(f"/violations/{vid}/evidence.pdf")
        assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF")
        clip = client.get(f"/violations/{vid}/clip", headers={"Range": "bytes=0-99"})
        assert clip.status_code == 206 and len(clip.content) == 100
        assert clip.headers["content-range"].endswith(f"/{_clip(seeded, _event(seeded, vid)).size}")


def _event(desk, vid: int) -> str:
    with desk.session() as s:
        return s.get(Violation, vid).event_id


def test_migration_0005_allows_not_enforceable_and_keeps_the_evidence(empty_db_url):
    """SQLite: the status CHECK is widened in place; re-creating the table would have
    cascade-deleted every evidence row."""
    from sqlalchemy import text

    from stopline.services.violation_desk import db

    engine = db.make_engine(empty_db_url)
    try:
        db.upgrade(engine, "0004")
        insert = ("INSERT INTO violations (event_id, site, camera_id, track_id, vehicle_class, crossed_at, "
                  "detected_at, received_at, frame_index, signal_phase, time_into_red_s, plate_corrected, match_kind, "
                  "clone_flag, integrity, integrity_detail, status, message_json) VALUES ('{e}', 's', 'cam1', 1, "
                  "'car', 1.0, 1.0, 1.0, 1, 'red', 1.0, false, 'none', false, 'verified', '', '{s}', '{{}}') RETURNING id")
        with engine.begin() as conn:
            conn.execute(text("INSERT INTO cameras (id, name, created_at) VALUES ('cam1', '', 1.0)"))
            vid = conn.execute(text(insert.format(e="e1", s="queued"))).scalar()
            conn.execute(text(
                "INSERT INTO evidence (violation_id, position, kind, name, sha256, file_sha256, file_offset, "
                f"content_type, size, intact, meta_json) VALUES ({vid}, 0, 'evidence', 'a.jpg', '{'ab' * 32}', "
                f"'{'ab' * 32}', 0, 'image/jpeg', 10, true, '{{}}')"))
        db.upgrade(engine)
        with engine.begin() as conn:
            assert conn.execute(text("SELECT count(*) FROM evidence")).scalar() == 1
            conn.execute(text(insert.format(e="e2", s="not_enforceable")))
        with pytest.raises(Exception, match="ck_violations_status|CHECK"):
            with engine.begin() as conn:
                conn.execute(text(insert.format(e="e3", s="bogus")))
        db.downgrade(engine, "0004")
        with engine.begin() as conn:
            assert conn.execute(text("SELECT status FROM violations WHERE event_id = 'e2'")).scalar() == "rejected"
            assert conn.execute(text("SELECT count(*) FROM evidence")).scalar() == 1
    finally:
        engine.dispose()


def test_purging_a_rejected_violation_takes_its_clip(seeded, key):
    from stopline.services.violation_desk.retention import purge_rejected
    from stopline.services.violation_desk.review import claim, reject
    from stopline.services.violation_desk.models import User

    result, blobs = signed_result(key)
    vid = ingest(seeded, result, blobs).violation_id
    ingest_clips(seeded, [clip_for(result, key)])
    row = _clip(seeded, result.candidate.event_id)
    with seeded.session() as s, s.begin():
        rita = s.scalar(select(User).where(User.username == "rita"))
        claim(s, vid, rita)
        reject(s, vid, rita, "emergency vehicle")
    report = purge_rejected(seeded, 1, now=time.time() + 2 * 86400)
    assert report.violations == 1
    assert _clip(seeded, result.candidate.event_id) is None and not seeded.store.exists(row.sha256)


def test_pdf_prints_an_owner_name_beyond_latin_1(seeded, key, tmp_path):
    from stopline.services.violation_desk.models import Vehicle

    if not Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf").exists():
        pytest.skip("the DejaVu fonts are not installed (fonts-dejavu-core)")
    vid = approved_violation(seeded, key)
    with seeded.session() as s, s.begin():
        v = s.get(Violation, vid)
        s.get(Vehicle, v.vehicle_id).owner_name = "Łukasz Żółć-Ørsted"
    assert "Łukasz Żółć-Ørsted" in _text(evidence_pdf(seeded, vid), tmp_path)
