"""The review app over HTTP (TestClient): sessions, CSRF, roles, rate limit, evidence, API."""

from __future__ import annotations

import re
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.models import Evidence, Violation
from stopline.services.violation_desk.samples import make_result
from stopline.services.violation_desk.status_watch import record_status
from stopline.services.violation_desk.users import create_token
from stopline.services.violation_desk.web.app import create_app

from .conftest import PASSWORD


def _csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "page has no CSRF field"
    return m.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"username": name, "password": password, "csrf_token": _csrf(page.text),
                                       "next": "/queue"})


@pytest.fixture
def app(seeded):
    return create_app(seeded, "test-secret")


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


def test_pages_and_evidence_need_a_login(client, seeded):
    vid = ingest(seeded, *make_result()).violation_id
    with seeded.session() as s:
        ev = s.scalar(select(Evidence.id).where(Evidence.violation_id == vid))
    for path in ("/queue", f"/violations/{vid}", f"/evidence/{ev}", "/cameras", "/audit"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login"), path
    assert client.get(f"/api/v1/evidence/{ev}").status_code == 401


def test_session_cookie_is_httponly_and_samesite(client):
    r = login(client, "rita")
    assert r.status_code == 200 and r.url.path == "/queue"
    cookie = next(v for k, v in r.history[0].headers.multi_items() if k == "set-cookie")
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()


def test_every_form_refuses_a_post_without_the_csrf_token(client, app, seeded):
    vid = ingest(seeded, *make_result()).violation_id
    login(client, "adam")
    from stopline.services.violation_desk.web.pages import router

    posts = [r.path for r in router.routes if "POST" in r.methods]
    assert len(posts) >= 12
    for path in posts:
        url = path.replace("{violation_id}", str(vid)).replace("{username}", "rob")
        r = client.post(url, data={"reason": "x", "plate": "AB1", "vehicle_id": "1", "username": "x",
                                   "password": "long enough", "camera_id": "c"})
        assert r.status_code == 403 and "CSRF" in r.text, path
        r = client.post(url, data={"csrf_token": "forged", "reason": "x"})
        assert r.status_code in (403, 422), path
    with seeded.session() as s:
        assert s.get(Violation, vid).status == "queued"


def test_login_is_rate_limited(client):
    for _ in range(5):
        assert login(client, "rita", "wrong password").status_code == 401
    r = login(client, "rita")  # right password, but locked out for now
    assert r.status_code == 429 and "Too many" in r.text and int(r.headers["Retry-After"]) > 0


def test_roles_are_checked_on_every_page(client):
    login(client, "rita")
    for path in ("/admin", "/admin/users", "/audit", "/export/approved.csv"):
        assert client.get(path).status_code == 403, path
    client.cookies.clear()
    login(client, "sue")
    assert client.get("/audit").status_code == 200
    assert client.get("/admin").status_code == 403
    client.cookies.clear()
    login(client, "adam")
    assert client.get("/admin/users").status_code == 200


def test_plate_text_is_shown_as_text(client, seeded):
    vid = ingest(seeded, *make_result("<script>alert(1)</script>")).violation_id
    login(client, "rita")
    page = client.get(f"/violations/{vid}").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_next_parameter_cannot_redirect_off_site(client):
    page = client.get("/login")
    r = client.post("/login", data={"username": "rita", "password": PASSWORD, "csrf_token": _csrf(page.text),
                                    "next": "//evil.example/x"}, follow_redirects=False)
    assert r.headers["location"] == "/queue"


def test_evidence_is_served_by_id_only(client, seeded):
    result, blobs = make_result()
    vid = ingest(seeded, result, blobs).violation_id
    login(client, "rita")
    with seeded.session() as s:
        ev = s.scalar(select(Evidence).where(Evidence.violation_id == vid, Evidence.position == 0))
    r = client.get(f"/evidence/{ev.id}")
    assert r.status_code == 200 and r.content == blobs[ev.name] and r.headers["content-type"] == "image/jpeg"
    assert client.get("/evidence/..%2F..%2Fetc%2Fpasswd").status_code in (404, 422)
    assert client.get("/evidence/999999").status_code == 404


def test_queue_filters_and_keyset_pages(client, seeded):
    base = time.time() - 3600
    for i in range(60):
        ingest(seeded, *make_result(f"AB{i:03d}CD", crossed_at=base + i, camera="cam1" if i % 2 else "cam2"))
    login(client, "rita")
    first = client.get("/queue?status=queued&camera=cam1")
    ids = re.findall(r'<tr data-href="/violations/(\d+)[?"]', first.text)
    assert len(ids) == 30
    assert 'id="next-page"' not in first.text  # 30 fit on one page of 50
    page1 = client.get("/queue?status=queued")
    ids1 = re.findall(r'<tr data-href="/violations/(\d+)[?"]', page1.text)
    link = re.search(r'<a href="([^"]+)" id="next-page">', page1.text).group(1).replace("&amp;", "&")
    ids2 = re.findall(r'<tr data-href="/violations/(\d+)[?"]', client.get(link).text)
    assert len(ids1) == 50 and len(ids2) == 10 and not set(ids1) & set(ids2)
    assert re.findall(r'<tr data-href="/violations/(\d+)[?"]', client.get("/queue?plate=ab00").text) and \
        len(re.findall(r'<tr data-href', client.get("/queue?plate=ab00").text)) == 10
    assert "use YYYY-MM-DD" in client.get("/queue?from=yesterday").text


def test_camera_page_shows_service_status_and_hourly_chart(client, seeded):
    now = time.time()
    hour_start = now - now % 3600  # the chart's last bar is this hour: keep all three inside it
    for i in range(3):
        ingest(seeded, *make_result(crossed_at=max(now - 120 - i, hour_start)))
    record_status(seeded, "stopline/test/status/vehicle-detector/cam1", b"online")
    record_status(seeded, "stopline/test/status/plate-reader/gw1", b"offline")
    assert not record_status(seeded, "stopline/test/status/x", b"online")
    login(client, "rita")
    page = client.get("/cameras/cam1").text
    assert re.search(r"vehicle-detector</td><td>cam1</td><td><span class=\"svc online\">online", page)
    assert re.search(r"plate-reader</td><td>gw1</td><td><span class=\"svc offline\">offline", page)
    bars = re.findall(r'<rect [^>]*height="([\d.]+)"', page)
    assert len(bars) == 48 and float(bars[-1]) > 0 and "max 3/h" in page


def test_metrics(client, seeded):
    ingest(seeded, *make_result())
    text = client.get("/metrics").text
    assert 'stopline_desk_queue_depth{status="queued"} 1.0' in text


def test_rest_api_with_tokens(client, seeded):
    vid = ingest(seeded, *make_result("AB123CD", confidence=0.99)).violation_id
    rita = {"Authorization": f"Bearer {create_token(seeded, 'rita')}"}
    rob = {"Authorization": f"Bearer {create_token(seeded, 'rob')}"}
    assert client.get("/api/v1/violations").status_code == 401
    assert client.get("/api/v1/violations", headers={"Authorization": "Bearer nope"}).status_code == 401
    items = client.get("/api/v1/violations", headers=rita).json()["items"]
    assert [i["id"] for i in items] == [vid] and items[0]["owner"]["owner_name"] == "Ann Example"
    detail = client.get(f"/api/v1/violations/{vid}", headers=rita).json()
    assert len(detail["evidence"]) == 5  # 4 burst frames + the plate image and detail["candidates"][0]["kind"] == "exact"
    assert client.get(detail["evidence"][0]["url"], headers=rita).status_code == 200
    assert client.post(f"/api/v1/violations/{vid}/approve", headers=rita).status_code == 409  # not claimed
    assert client.post(f"/api/v1/violations/{vid}/claim", headers=rita).status_code == 200
    assert client.post(f"/api/v1/violations/{vid}/claim", headers=rob).status_code == 409
    r = client.post(f"/api/v1/violations/{vid}/correct-plate", headers=rita, json={"plate": "XY987ZZ"})
    assert r.status_code == 200
    assert client.get(f"/api/v1/violations/{vid}", headers=rita).json()["owner"]["owner_name"] == "Cleo Example"
    assert client.post(f"/api/v1/violations/{vid}/reject", headers=rita, json={"reason": ""}).status_code == 422
    assert client.post(f"/api/v1/violations/{vid}/reject", headers=rita,
                       json={"reason": "duplicate"}).json()["status"] == "rejected"
    assert client.get("/api/v1/export/approved", headers=rita).status_code == 403
    sue = {"Authorization": f"Bearer {create_token(seeded, 'sue')}"}
    audit = client.get("/api/v1/audit", headers=sue, params={"object_id": str(vid)}).json()
    assert {"violation.claim", "violation.correct_plate", "violation.reject"} <= {a["action"] for a in audit}
    spec = client.get("/api/openapi.json").json()
    assert "/api/v1/violations/{violation_id}/approve" in spec["paths"]
    assert any(s.get("scheme") == "bearer" for s in spec["components"]["securitySchemes"].values())


def test_admin_adds_users_camera_keys_and_registry(client, seeded):
    from stopline.services.violation_desk.registry import COLUMNS
    from stopline.services.violation_desk.samples import CameraKeyPair

    login(client, "adam")
    csrf = _csrf(client.get("/admin/users").text)
    page = client.post("/admin/users", data={"csrf_token": csrf, "username": "nina", "password": "long enough",
                                             "role": "supervisor"})
    assert "User nina added as supervisor" in page.text
    assert "password must have" in client.post("/admin/users", data={
        "csrf_token": csrf, "username": "olaf", "password": "short", "role": "reviewer"}).text
    key = CameraKeyPair.generate()
    page = client.post("/admin/cameras", data={"csrf_token": csrf, "camera_id": "south-2", "name": "South",
                                               "public_key": key.public_pem})
    assert key.key_id in page.text
    assert "not a PEM public key" in client.post("/admin/cameras", data={
        "csrf_token": csrf, "camera_id": "south-3", "public_key": "garbage"}).text
    csv = ",".join(COLUMNS) + "\nQQ111QQ,eu,Kia,Rio,green,car,Quinn,5 Side St\n,eu,,,,,nobody,x\n"
    page = client.post("/admin/registry", data={"csrf_token": csrf},
                       files={"file": ("owners.csv", csv.encode(), "text/csv")})
    assert "1 inserted" in page.text and "line 3: plate is empty" in page.text
    client.cookies.clear()
    assert login(client, "nina", "long enough").url.path == "/queue"
