"""Browser tests: Playwright driving Debian's chromium against a live review app.

Screenshots go to ``test-artifacts/desk/`` (gitignored); the README's come from here.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from sqlalchemy import select

from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.models import Violation
from stopline.services.violation_desk.cameras import add_camera
from stopline.services.violation_desk.samples import CameraKeyPair, make_result
from stopline.services.violation_desk.web.app import create_app

from .conftest import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "desk"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live(seeded):
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(seeded, "browser-test-secret"), host="127.0.0.1", port=port,
                                           log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _login(page, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/queue"))


def _shot(page, backend: str, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{backend}-{name}.png"), full_page=True)


def _violation_id(page) -> int:
    m = re.search(r"/violations/(\d+)", page.url)
    assert m, page.url
    return int(m.group(1))


def test_review_loop_in_the_browser(browser, live, seeded, backend):
    key = CameraKeyPair.generate()
    add_camera(seeded, "north-1", key.public_pem, "Main St / 5th Ave northbound")
    t0 = time.time() - 600
    plates = [("AB123CD", 0.97), ("XY9B7ZZ", 0.62), ("<script>", 0.41), ("AB123C0", 0.88)]
    ids = []
    for i, (plate, conf) in enumerate(plates):
        result, blobs = make_result(plate, confidence=conf, crossed_at=t0 + i * 30, camera="north-1",
                                    fresh_images=True, time_into_red_s=1.2 + i, key=key)
        ids.append(ingest(seeded, result, blobs).violation_id)

    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    _login(page, live, "rita")
    rows = page.locator("#queue tbody tr[data-href]")
    assert rows.count() == 4
    assert page.locator("#queue .badge.verified").count() == 4  # signed by the registered camera key
    _shot(page, backend, "queue")

    # keyboard: j selects the first row, s starts the review loop (claims the oldest)
    page.keyboard.press("j")
    assert "selected" in (rows.nth(0).get_attribute("class") or "")
    page.keyboard.press("s")
    page.wait_for_url(re.compile(rf".*/violations/{ids[0]}"))
    assert page.locator("#owner .owner-name").inner_text() == "Ann Example"
    page.keyboard.press("z")  # zoom the evidence
    assert "scale(2)" in (page.locator("#main-image").get_attribute("style") or "")
    page.keyboard.press("z")
    page.keyboard.press("3")  # third burst frame
    assert "active" in (page.locator("#thumbs .thumb").nth(2).get_attribute("class") or "")
    _shot(page, backend, "violation")

    # Shift+A approves and moves straight on to the next item (claimed for rita)
    page.keyboard.press("Shift+A")
    page.wait_for_url(re.compile(rf".*/violations/{ids[1]}"))
    assert "approved" in page.locator(".flash").first.inner_text()
    assert "No registration assigned" in page.locator("#owner").inner_text()

    # p: correct the plate; the lookup re-runs and the owner appears
    page.keyboard.press("p")
    page.keyboard.type("XY 987 ZZ")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    page.wait_for_selector("#owner .owner-name")
    assert page.locator("#owner .owner-name").inner_text() == "Cleo Example"
    assert page.locator("#plate-text").inner_text() == "XY987ZZ"
    _shot(page, backend, "corrected")
    page.keyboard.press("Shift+A")
    page.wait_for_url(re.compile(rf".*/violations/{ids[2]}"))

    # the plate that reads <script> is text on the page, not markup
    assert "<script>" in page.locator("#plate-read").inner_text()
    assert page.evaluate("document.querySelectorAll('script').length") == 1  # only desk.js

    # x: reject with a reason
    page.keyboard.press("x")
    page.keyboard.type("plate unreadable")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf".*/violations/{ids[3]}"))
    assert "rejected" in page.locator(".flash").first.inner_text()
    assert page.locator("#approve-form").count() == 1  # rita now holds the last one

    # a reviewer cannot reach admin pages
    for path in ("/admin", "/admin/users", "/audit"):
        resp = page.goto(f"{live}{path}")
        assert resp.status == 403
        assert "needs the" in page.locator(".error-page").inner_text()

    # a second reviewer cannot take the item rita holds
    ctx2 = browser.new_context(viewport={"width": 1400, "height": 900})
    page2 = ctx2.new_page()
    _login(page2, live, "rob")
    page2.goto(f"{live}/violations/{ids[3]}")
    assert "Claimed by rita" in page2.locator("#claimed-by").inner_text()
    assert page2.locator("#approve-form").count() == 0 and page2.locator("#claim-form").count() == 0
    page2.keyboard.press("a")  # the shortcut has nothing to submit
    page2.goto(f"{live}/queue")
    page2.locator("#start-review").locator("button").click()  # start review: nothing free for rob
    page2.wait_for_url(re.compile(r".*/queue"))
    assert "Nothing left" in page2.locator(".flash").first.inner_text()
    _shot(page2, backend, "claimed")
    ctx2.close()

    # the supervisor sees every action in the audit log
    ctx3 = browser.new_context(viewport={"width": 1400, "height": 900})
    page3 = ctx3.new_page()
    _login(page3, live, "sue")
    page3.goto(f"{live}/audit")
    log = page3.locator("#audit").inner_text()
    for action in ("violation.approve", "violation.correct_plate", "violation.reject", "violation.claim"):
        assert action in log, action
    assert "plate unreadable" in log and "rita" in log
    _shot(page3, backend, "audit")
    page3.goto(f"{live}/cameras/north-1")
    assert page3.locator("#hourly-chart rect").count() == 48
    _shot(page3, backend, "camera")
    ctx3.close()
    ctx.close()

    with seeded.session() as s:
        status = {v.id: v.status for v in s.scalars(select(Violation))}
    assert [status[i] for i in ids] == ["approved", "approved", "rejected", "queued"]


def _submits(page, key: str) -> bool:
    """Whether pressing ``key`` submits a form (the submission itself is stopped). The key's
    handlers have run when ``press`` returns, and a form submit event fires synchronously."""
    page.evaluate("""() => { window.__submitted = false;
        window.__spy = (e) => { window.__submitted = true; e.preventDefault(); };
        document.addEventListener('submit', window.__spy, true); }""")
    page.keyboard.press(key)
    return page.evaluate("""() => { document.removeEventListener('submit', window.__spy, true);
        return window.__submitted; }""")


def _ingest(desk, plate: str, conf: float, at: float, camera: str = "cam1") -> int:
    return ingest(desk, *make_result(plate, confidence=conf, crossed_at=at, camera=camera)).violation_id


def _page(browser, live: str, name: str, width: int = 1400):
    ctx = browser.new_context(viewport={"width": width, "height": 900})
    page = ctx.new_page()
    _login(page, live, name)
    return ctx, page


def _claim(page, live: str, vid: int) -> None:
    page.goto(f"{live}/violations/{vid}")
    page.locator("#claim-form button").click()
    page.wait_for_selector("#actions form")


def test_review_loop_wraps_round_to_skipped_items(browser, live, seeded, backend):
    t0 = time.time() - 600
    ids = [_ingest(seeded, "AB123CD", 0.97, t0 + i * 30) for i in range(3)]
    _ingest(seeded, "AB123CD", 0.97, t0 + 200, camera="other")  # outside the filter
    ctx, page = _page(browser, live, "rita")
    page.goto(f"{live}/queue?camera=cam1")
    page.keyboard.press("s")  # start reviewing the filtered list: its oldest item
    page.wait_for_url(re.compile(rf".*/violations/{ids[0]}\?camera=cam1$"))
    page.keyboard.press("n")  # skip it for now
    page.wait_for_url(re.compile(rf".*/violations/{ids[1]}\?camera=cam1$"))
    page.locator("#approve-form button").click()
    page.wait_for_url(re.compile(rf".*/violations/{ids[2]}\?camera=cam1$"))
    page.locator("#approve-form button").click()  # the end of the list: round to the skipped one
    page.wait_for_url(re.compile(rf".*/violations/{ids[0]}\?camera=cam1$"))
    assert "approved" in page.locator(".flash").first.inner_text()
    page.locator("#approve-form button").click()
    page.wait_for_url(re.compile(r".*/queue\?camera=cam1$"))
    assert "Queue done" in " ".join(page.locator(".flash").all_inner_texts())
    assert page.locator("#queue tbody tr[data-href]").count() == 0
    ctx.close()
    with seeded.session() as s:
        assert [s.get(Violation, i).status for i in ids] == ["approved"] * 3


def test_approving_by_key_needs_shift(browser, live, seeded, backend):
    vid = _ingest(seeded, "AB123CD", 0.97, time.time() - 60)
    ctx, page = _page(browser, live, "rita")
    _claim(page, live, vid)
    assert "Shift" in page.locator("#approve-form button").inner_text()
    assert "Shift" in page.locator(".help").inner_text()
    assert not _submits(page, "a")  # a stray "a" does not approve
    with seeded.session() as s:
        assert s.get(Violation, vid).status == "queued"
    page.keyboard.press("Shift+A")
    page.wait_for_url(re.compile(r".*/queue"))
    ctx.close()
    with seeded.session() as s:
        assert s.get(Violation, vid).status == "approved"


def test_a_plate_correction_is_refused_or_confirmed_on_the_page(browser, live, seeded, backend):
    t0 = time.time() - 600
    misread = _ingest(seeded, "XY9B7ZZ", 0.62, t0)
    unknown = _ingest(seeded, "QQ999QQ", 0.99, t0 + 30)
    ctx, page = _page(browser, live, "rita")
    _claim(page, live, misread)
    page.keyboard.press("p")
    page.keyboard.type("<script>alert(1)</script>")
    page.keyboard.press("Enter")
    page.wait_for_selector(".flash.error")
    assert "not a plate" in page.locator(".flash.error").inner_text()
    assert page.locator("#plate-text").inner_text() == "XY9B7ZZ"
    page.fill("#plate-input", "XY 987 ZZ")
    page.keyboard.press("Enter")
    page.wait_for_selector("#owner .owner-name")
    assert "Plate corrected to XY987ZZ" in page.locator(".flash").first.inner_text()
    assert "Cleo Example" in page.locator(".flash").first.inner_text()
    assert page.locator("#plate-text").inner_text() == "XY987ZZ"
    page.keyboard.press("Shift+A")
    page.wait_for_url(re.compile(rf".*/violations/{unknown}"))

    # no owner: approving needs the explicit "no registration found" box
    assert not _submits(page, "Shift+A")  # the browser asks for the box to be ticked
    with seeded.session() as s:
        assert s.get(Violation, unknown).status == "queued"
    page.check("#no-registration")
    page.keyboard.press("Shift+A")
    page.wait_for_url(re.compile(r".*/queue"))
    ctx.close()
    with seeded.session() as s:
        v = s.get(Violation, unknown)
        assert (v.status, v.match_kind) == ("approved", "unregistered")


def test_an_escalation_note_is_shown(browser, live, seeded, backend):
    vid = _ingest(seeded, "AB123CD", 0.97, time.time() - 60)
    ctx, page = _page(browser, live, "rita")
    _claim(page, live, vid)
    page.fill("#escalate-form input[name=reason]", "is that an ambulance?")
    page.locator("#escalate-form button").click()
    page.wait_for_url(re.compile(r".*/queue"))
    ctx.close()
    ctx, page = _page(browser, live, "sue")
    page.goto(f"{live}/violations/{vid}")
    assert "is that an ambulance?" in page.locator("#escalation-note").inner_text()
    assert "rita" in page.locator("#escalation-note").inner_text()
    assert "is that an ambulance?" in page.locator("#review-history").inner_text()
    _shot(page, backend, "escalation-note")
    ctx.close()


def test_a_long_reason_wraps(browser, live, seeded, backend):
    vid = _ingest(seeded, "AB123CD", 0.97, time.time() - 60)
    ctx, page = _page(browser, live, "rita", width=1280)
    _claim(page, live, vid)
    page.fill("#reject-reason", "x" * 2000)
    page.locator("#reject-form button").click()
    page.wait_for_url(re.compile(r".*/queue"))
    page.goto(f"{live}/violations/{vid}")
    assert "x" * 2000 in page.locator("#actions").inner_text()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, width
    _shot(page, backend, "long-reason")
    ctx.close()


def test_the_403_page_keeps_the_menu_and_logout(browser, live, seeded, backend):
    ctx, page = _page(browser, live, "rita")
    resp = page.goto(f"{live}/admin")
    assert resp.status == 403 and "needs the" in page.locator(".error-page").inner_text()
    page.locator("header nav a[href='/queue']").click()
    page.wait_for_url(re.compile(r".*/queue$"))
    page.goto(f"{live}/audit")
    page.locator("header form.who button").click()
    page.wait_for_url(re.compile(r".*/login"))
    assert page.goto(f"{live}/queue").url.startswith(f"{live}/login")  # logged out for good
    ctx.close()
