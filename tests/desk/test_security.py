"""The review app's security guarantees over HTTP (TestClient against the real app and database):
Secure cookie, server-side sessions, Origin/Referer check, lockout per (user, address), ids out
of range, failed logins audited, bounded redirects, 409 on an item someone else holds."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.models import AuditEntry, Violation
from stopline.services.violation_desk.samples import make_result
from stopline.services.violation_desk.users import add_user, create_token
from stopline.services.violation_desk.web.app import create_app
from stopline.shared.config import ReviewConfig

from .conftest import PASSWORD
from .test_web import _csrf, login

BIG = [2**63, 2**70]


@pytest.fixture
def app(seeded):
    return create_app(seeded, "test-secret")


def _client(app, address: str = "testclient", **kw) -> TestClient:
    return TestClient(app, client=(address, 50000), **kw)


def _session_cookie(response) -> str:
    return next(v for k, v in response.headers.multi_items()
                if k == "set-cookie" and v.startswith("stopline_session="))


def _login_response(client: TestClient, name: str, password: str = PASSWORD, **headers):
    page = client.get("/login")
    return client.post("/login", data={"username": name, "password": password, "csrf_token": _csrf(page.text),
                                       "next": "/queue"}, headers=headers, follow_redirects=False)


def test_session_cookie_is_secure_over_https_and_when_configured(app, seeded):
    with _client(app) as c:
        assert "secure" not in _session_cookie(_login_response(c, "rita")).lower()  # plain http, not configured
    with _client(app) as c:
        r = _login_response(c, "rita", **{"X-Forwarded-Proto": "https"})
        assert r.status_code == 303 and "; secure" in _session_cookie(r).lower()
    with TestClient(app, base_url="https://testserver") as c:
        assert "; secure" in _session_cookie(_login_response(c, "rita")).lower()
    configured = ReviewConfig.model_validate({"cookie_secure": True}).cookie_secure
    with _client(create_app(seeded, "test-secret", cookie_secure=configured)) as c:
        cookie = _session_cookie(_login_response(c, "rita")).lower()
        assert "; secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie


def _replay(app, cookie: str, path: str) -> int:
    with _client(app) as c:
        c.cookies.set("stopline_session", cookie)
        return c.get(path, follow_redirects=False).status_code


def test_a_cookie_is_dead_after_logout(app):
    with _client(app) as c:
        login(c, "sue")
        cookie = c.cookies["stopline_session"]
        assert _replay(app, cookie, "/queue") == 200
        assert _replay(app, cookie, "/export/approved.csv") == 200
        r = c.post("/logout", data={"csrf_token": _csrf(c.get("/queue").text)}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
    for path in ("/queue", "/export/approved.csv", "/audit"):
        assert _replay(app, cookie, path) == 303, path  # back to the login form


def test_a_cookie_is_dead_after_deactivation_or_a_password_change(app, seeded):
    with _client(app) as rita, _client(app) as adam:
        login(rita, "rita")
        cookie = rita.cookies["stopline_session"]
        login(adam, "adam")
        csrf = _csrf(adam.get("/admin/users").text)
        for active in ("0", "1"):
            adam.post("/admin/users/rita/active", data={"csrf_token": csrf, "active": active})
        assert _replay(app, cookie, "/queue") == 303  # reactivated, but that session is over

        login(rita, "rita")
        cookie = rita.cookies["stopline_session"]
        assert _replay(app, cookie, "/queue") == 200
        add_user(seeded, "rita", "a new password!", "reviewer", replace=True)
        assert _replay(app, cookie, "/queue") == 303


def test_state_changing_requests_from_another_origin_are_refused(app, seeded):
    vid = ingest(seeded, *make_result()).violation_id
    with _client(app) as c:
        login(c, "rita")
        csrf = _csrf(c.get("/queue").text)
        foreign = [{"Origin": "http://evil.example"}, {"Origin": "null"}, {"Origin": "https://testserver"},
                   {"Referer": "http://evil.example/form.html"}, {"Origin": "http://testserver.evil.example"}]
        for headers in foreign:
            r = c.post(f"/violations/{vid}/claim", data={"csrf_token": csrf}, headers=headers, follow_redirects=False)
            assert r.status_code == 403 and "another site" in r.text, headers
            r = c.post("/logout", data={"csrf_token": csrf}, headers=headers, follow_redirects=False)
            assert r.status_code == 403, headers
        with seeded.session() as s:
            assert s.get(Violation, vid).claimed_by is None
        assert c.get("/queue", follow_redirects=False).status_code == 200  # still logged in
        token = {"Authorization": f"Bearer {create_token(seeded, 'rita')}"}
        assert c.post(f"/api/v1/violations/{vid}/claim", headers=token | {"Origin": "http://evil.example"}
                      ).status_code == 403
        for headers in ({"Origin": "http://testserver"}, {"Referer": "http://testserver/queue"}, {}):
            r = c.post(f"/violations/{vid}/claim", data={"csrf_token": csrf}, headers=headers, follow_redirects=False)
            assert r.status_code == 303, headers
    # behind a TLS proxy the browser's origin is https://; a configured second origin is accepted too
    trusting = create_app(seeded, "test-secret", trusted_origins=("https://desk.example.org",))
    with _client(trusting) as c:
        login(c, "rob")
        csrf = _csrf(c.get("/queue").text)
        for headers in ({"Origin": "https://desk.example.org"},
                        {"Origin": "https://testserver", "X-Forwarded-Proto": "https"}):
            r = c.post("/review/next", data={"csrf_token": csrf}, headers=headers, follow_redirects=False)
            assert r.status_code == 303, headers


def test_lockout_is_per_user_and_address(app):
    with _client(app, "10.0.0.66") as attacker, _client(app, "10.0.0.7") as owner:
        for _ in range(5):
            assert _login_response(attacker, "rita", "wrong password").status_code == 401
        assert _login_response(attacker, "rita").status_code == 429  # this pair is locked
        assert _login_response(owner, "rita").status_code == 303  # rita from her own address is not
        assert _login_response(attacker, "rob").status_code == 303  # nor another user from that address


def test_failed_logins_are_audited_with_the_name_and_address(app, seeded):
    with _client(app, "192.0.2.44") as c:
        assert _login_response(c, "mallory", "guess guess").status_code == 401
        assert _login_response(c, "rita", "wrong password").status_code == 401
    with seeded.session() as s:
        failed = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "login.failed")
                                .order_by(AuditEntry.id)))
    assert [e.username for e in failed] == ["mallory", "rita"]
    assert all(json.loads(e.after_json)["address"] == "192.0.2.44" for e in failed)


def test_ids_out_of_range_answer_404_or_422(app, seeded):
    vid = ingest(seeded, *make_result()).violation_id
    token = {"Authorization": f"Bearer {create_token(seeded, 'sue')}"}
    with _client(app, raise_server_exceptions=False) as c:
        login(c, "sue")
        csrf = _csrf(c.get("/queue").text)
        gets = [f"/violations/{n}" for n in BIG] + [f"/evidence/{n}" for n in BIG] + \
               [f"/audit?before={n}" for n in BIG] + [f"/queue?after=1.0_{n}" for n in BIG]
        for path in gets:
            assert c.get(path).status_code in (404, 422), path
        for path in [f"/api/v1/violations/{n}" for n in BIG] + [f"/api/v1/evidence/{n}" for n in BIG] + \
                [f"/api/v1/audit?before={n}" for n in BIG] + [f"/api/v1/violations?after=1.0_{n}" for n in BIG]:
            assert c.get(path, headers=token).status_code in (404, 422), path
        for n in BIG:
            for action in ("claim", "approve", "release"):
                assert c.post(f"/violations/{n}/{action}", data={"csrf_token": csrf}).status_code in (404, 422)
                assert c.post(f"/api/v1/violations/{n}/{action}", headers=token).status_code in (404, 422)
            assert c.post("/review/next", data={"csrf_token": csrf, "after": str(n)}).status_code in (404, 422)
            c.post(f"/violations/{vid}/claim", data={"csrf_token": csrf})
            assert c.post(f"/violations/{vid}/assign", data={"csrf_token": csrf, "vehicle_id": str(n)}
                          ).status_code in (404, 422)
            assert c.post(f"/api/v1/violations/{vid}/assign-owner", headers=token,
                          json={"vehicle_id": n}).status_code in (404, 422)
        assert c.get(f"/violations/{2**63 - 1}").status_code == 404  # the largest id: valid, not there
        assert c.get(f"/api/v1/violations/{2**63 - 1}", headers=token).status_code == 404


def test_the_review_loop_redirect_carries_only_the_filters(app, seeded):
    ingest(seeded, *make_result(camera="cam1"))
    with _client(app) as c:
        login(c, "rita")
        csrf = _csrf(c.get("/queue").text)
        huge = "camera=cam1&" + "&".join(f"x{i}={'y' * 100}" for i in range(2000)) + "&plate=" + "Z" * 100_000
        assert len(huge) > 200_000
        r = c.post("/review/next", data={"csrf_token": csrf, "filter_query": huge}, follow_redirects=False)
        assert r.status_code == 303 and len(r.headers["location"]) < 300
        assert "camera=cam1" in r.headers["location"] and "x1=" not in r.headers["location"]


def test_acting_on_an_item_someone_else_holds_answers_409(app, seeded):
    vid = ingest(seeded, *make_result()).violation_id
    with _client(app) as rita, _client(app) as rob:
        login(rita, "rita")
        assert rita.post(f"/violations/{vid}/claim", data={"csrf_token": _csrf(rita.get("/queue").text)},
                         follow_redirects=False).status_code == 303
        login(rob, "rob")
        csrf = _csrf(rob.get("/queue").text)
        for action, data in (("claim", {}), ("approve", {}), ("reject", {"reason": "x"}), ("escalate", {}),
                             ("correct", {"plate": "AB123CD"})):
            r = rob.post(f"/violations/{vid}/{action}", data={"csrf_token": csrf} | data, follow_redirects=False)
            assert r.status_code == 409 and "claimed by rita" in r.text, action
    with seeded.session() as s:
        assert s.get(Violation, vid).status == "queued"
