"""Decisions over HTTP: approving needs an owner or an explicit "no registration found" (which the
export marks), the export keeps the plate as read beside a correction, text that is not a plate is
refused, an escalation note reaches the API and the audit log."""

from __future__ import annotations

import csv
import io
import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.models import AuditEntry, Violation
from stopline.services.violation_desk.samples import make_result
from stopline.services.violation_desk.users import create_token
from stopline.services.violation_desk.web.app import create_app

from .test_web import _csrf, login


@pytest.fixture
def client(seeded):
    with TestClient(create_app(seeded, "test-secret")) as c:
        yield c


def _claim(client: TestClient, vid: int) -> str:
    csrf = _csrf(client.get("/queue").text)
    assert client.post(f"/violations/{vid}/claim", data={"csrf_token": csrf}, follow_redirects=False
                       ).status_code == 303
    return csrf


def _export(client: TestClient, fmt: str):
    client.cookies.clear()
    login(client, "sue")
    text = client.get(f"/export/approved.{fmt}").text
    return list(csv.DictReader(io.StringIO(text))) if fmt == "csv" else json.loads(text)


def test_approving_needs_an_owner_or_an_explicit_no_registration(client, seeded):
    vid = ingest(seeded, *make_result("QQ999QQ", confidence=0.99)).violation_id  # not in the registry
    login(client, "rita")
    csrf = _claim(client, vid)
    r = client.post(f"/violations/{vid}/approve", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 409 and "no registration found" in r.text
    with seeded.session() as s:
        assert s.get(Violation, vid).status == "queued"
    r = client.post(f"/violations/{vid}/approve", data={"csrf_token": csrf, "no_registration": "1"},
                    follow_redirects=False)
    assert r.status_code == 303
    with seeded.session() as s:
        v = s.get(Violation, vid)
        assert (v.status, v.match_kind, v.vehicle_id) == ("approved", "unregistered", None)
    (row,) = _export(client, "csv")
    assert row["registration"] == "no registration found" and row["owner_name"] == "" and row["plate"] == "QQ999QQ"


def test_the_api_approves_without_an_owner_only_when_told(client, seeded):
    unknown = ingest(seeded, *make_result("QQ999QQ", confidence=0.99)).violation_id
    known = ingest(seeded, *make_result("AB123CD", confidence=0.99)).violation_id
    rita = {"Authorization": f"Bearer {create_token(seeded, 'rita')}"}
    for vid in (unknown, known):
        assert client.post(f"/api/v1/violations/{vid}/claim", headers=rita).status_code == 200
    assert client.post(f"/api/v1/violations/{unknown}/approve", headers=rita).status_code == 409
    assert client.post(f"/api/v1/violations/{known}/approve", headers=rita,
                       json={"no_registration": True}).status_code == 409  # it has an owner
    assert client.post(f"/api/v1/violations/{unknown}/approve", headers=rita,
                       json={"no_registration": True}).json()["status"] == "approved"
    assert client.post(f"/api/v1/violations/{known}/approve", headers=rita).json()["status"] == "approved"
    rows = {r["plate"]: r for r in _export(client, "json")}
    assert rows["QQ999QQ"]["registration"] == "no registration found" and rows["QQ999QQ"]["owner_name"] is None
    assert rows["AB123CD"]["registration"] == "assigned" and rows["AB123CD"]["owner_name"] == "Ann Example"


def test_a_correction_is_exported_beside_the_plate_as_read(client, seeded):
    vid = ingest(seeded, *make_result("XY9B7ZZ", confidence=0.6)).violation_id
    login(client, "rita")
    csrf = _claim(client, vid)
    r = client.post(f"/violations/{vid}/correct", data={"csrf_token": csrf, "plate": "xy-987 zz"})
    assert "Plate corrected to XY987ZZ" in r.text and "Cleo Example" in r.text
    client.post(f"/violations/{vid}/approve", data={"csrf_token": csrf})
    (row,) = _export(client, "json")
    assert (row["plate"], row["plate_read"], row["plate_corrected"]) == ("XY987ZZ", "XY9B7ZZ", True)
    (line,) = _export(client, "csv")
    assert (line["plate"], line["plate_read"]) == ("XY987ZZ", "XY9B7ZZ")


@pytest.mark.parametrize("typed", ["<script>alert(1)</script>", "AB123CD" * 3, "A", "AB_12"])
def test_text_that_is_not_a_plate_is_refused(client, seeded, typed):
    vid = ingest(seeded, *make_result("XY9B7ZZ", confidence=0.6)).violation_id
    login(client, "rita")
    csrf = _claim(client, vid)
    r = client.post(f"/violations/{vid}/correct", data={"csrf_token": csrf, "plate": typed}, follow_redirects=False)
    assert r.status_code == 422 and "plate not changed" in r.text
    token = {"Authorization": f"Bearer {create_token(seeded, 'rita')}"}
    assert client.post(f"/api/v1/violations/{vid}/correct-plate", headers=token, json={"plate": typed}
                       ).status_code == 422
    with seeded.session() as s:
        v = s.get(Violation, vid)
        assert (v.plate_norm, v.plate_corrected) == ("XY9B7ZZ", False)


def test_an_escalation_note_reaches_the_api_and_the_audit_log(client, seeded):
    vid = ingest(seeded, *make_result()).violation_id
    login(client, "rita")
    csrf = _claim(client, vid)
    client.post(f"/violations/{vid}/escalate", data={"csrf_token": csrf, "reason": "is that an ambulance?"})
    sue = {"Authorization": f"Bearer {create_token(seeded, 'sue')}"}
    detail = client.get(f"/api/v1/violations/{vid}", headers=sue).json()
    assert [(h["action"], h["username"], h["reason"]) for h in detail["history"]] == [
        ("escalate", "rita", "is that an ambulance?")]
    with seeded.session() as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "violation.escalate"))
        assert json.loads(entry.after_json)["reason"] == "is that an ambulance?"
    client.cookies.clear()
    login(client, "sue")
    assert "is that an ambulance?" in client.get(f"/violations/{vid}").text
