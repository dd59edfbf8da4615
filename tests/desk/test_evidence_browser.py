"""The evidence package in Chromium (Debian's, driven by Playwright): every evidence image shows
which vehicle is accused and a data bar, the toggle shows the originals, the signal thumbnail
shows the whole head, and the clip plays to its end."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from stopline.services.violation_desk.cameras import add_camera
from stopline.services.violation_desk.clips import ingest_clips
from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.samples import CameraKeyPair

from .evidence_samples import clip_for, signed_result
from .test_browser import _login, _shot, browser, live  # noqa: F401 (fixtures)

pytestmark = pytest.mark.timeout(300)


def _img(data: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert img is not None
    return img


@pytest.mark.parametrize("codec", ["h264", "vp8"])
def test_evidence_overlay_data_bar_toggle_and_clip_in_chromium(browser, live, seeded, backend, codec):  # noqa: F811
    key = CameraKeyPair.generate()
    add_camera(seeded, "cam1", key.public_pem, "")
    result, blobs = signed_result(key)
    vid = ingest(seeded, result, blobs).violation_id
    ingest_clips(seeded, [clip_for(result, key, seconds=2.0, codec=codec)])
    box = [int(v) for v in result.candidate.evidence[0].vehicle_box]

    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    _login(page, live, "rita")
    page.goto(f"{live}/violations/{vid}")
    images = page.locator("#main-image, #thumbs img")
    assert images.count() == 5  # the main view and four thumbnails
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thumbs img, #main-image')].every(i => i.complete && i.naturalWidth > 0)")
    for k in range(images.count()):
        src = images.nth(k).get_attribute("src")
        assert src.endswith("/annotated"), src
        shown = _img(page.request.get(live + src).body())
        original = _img(page.request.get(live + src.removesuffix("/annotated")).body())
        h = original.shape[0]
        assert shown.shape[0] > h + 40 and shown[h + 4:].mean() < 80  # the data bar
        role = images.nth(k).get_attribute("alt")
        if "signal" not in role:  # a full frame: the offender's red box where the signed box is
            x1, y1, x2, y2 = box
            red = (shown[:, :, 2] > 200) & (shown[:, :, 1] < 60) & (shown[:, :, 0] < 60)
            assert red[y1:y2, x1 - 4:x1 + 5].any(axis=1).mean() > 0.8
            assert red[y1:y2, x2 - 4:x2 + 5].any(axis=1).mean() > 0.8
    # the signal thumbnail is never cropped to a part of the head
    signal = page.locator("#thumbs img.role-signal")
    assert signal.evaluate("i => getComputedStyle(i).objectFit") == "contain"
    _shot(page, backend, f"evidence-{codec}")

    # the toggle shows the originals, and back
    page.click("#view-toggle")
    assert not page.locator("#main-image").get_attribute("src").endswith("/annotated")
    assert page.locator("#view-toggle").get_attribute("aria-pressed") == "true"
    page.keyboard.press("o")
    assert page.locator("#main-image").get_attribute("src").endswith("/annotated")

    # the clip plays to its end without an error
    assert page.locator("#clip-integrity").inner_text().lower() == "verified"
    page.evaluate("document.getElementById('clip').play()")
    page.wait_for_function("() => document.getElementById('clip').ended", timeout=30_000)
    assert page.evaluate("document.getElementById('clip').error") is None
    assert page.evaluate("document.getElementById('clip').duration") == pytest.approx(2.0, abs=0.3)
    assert not errors
    ctx.close()
