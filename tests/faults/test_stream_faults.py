"""The vehicle detector *service* on a live camera that misbehaves: the scene's frames served as
an MJPEG-over-HTTP stream that drops the connection every few seconds and has corrupt frames
in it. tests/detector covers the source on its own (reconnect, skip, count); this runs
``stopline serve vehicle-detector`` against a real broker and checks what a user relies on:
the process stays up and healthy, reconnects, loses no more than the frames around each drop,
and still reports the scene's violations, no more and no fewer (within one).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import cv2
import pytest
import yaml
from detector.det_mjpeg import MjpegServer
from threehost import wait_until

pytestmark = [pytest.mark.timeout(300)]

DROP_EVERY = 150  # frames per connection: the stream drops every 6 s
CORRUPT_EVERY = 97  # every 97th frame is a truncated JPEG


class SceneStream(MjpegServer):
    """The scene's video as a live MJPEG camera: real-time, dropping, with corrupt frames."""

    def __init__(self, video, fps: float):
        super().__init__(fps=fps, frames_per_connection=DROP_EVERY, corrupt_every=CORRUPT_EVERY)
        cap = cv2.VideoCapture(str(video))
        self.jpegs = []
        while True:
            ok, img = cap.read()
            if not ok:
                break
            self.jpegs.append(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes())
        cap.release()

    @property
    def done(self) -> bool:
        return self.sent >= len(self.jpegs)

    def frame(self, n: int) -> bytes | None:
        return self.jpegs[n] if n < len(self.jpegs) else None


def test_detector_service_rides_out_a_dropping_stream_with_corrupt_frames(scene, mosquitto, tmp_path):
    truth = json.loads((scene / "truth.json").read_text())
    with SceneStream(scene / "video.mp4", truth["fps"]) as cam:
        site = tmp_path / "site.yaml"
        site.write_text(yaml.safe_dump({
            "site": "elm-st", "state_dir": str(tmp_path / "state"),
            "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "reconnect_min_s": 0.2, "reconnect_max_s": 2},
            "cameras": [{"file": str(scene / "camera.yaml"), "source": cam.url}],
            "services": {"vehicle_detector": {"backend": "motion", "outbox": "outbox.db"}},
        }))
        log = open(tmp_path / "detector.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "stopline", "serve", "vehicle-detector", "--config", str(site)],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "STOPLINE_INSTANCE": "t1"})
        health_path = tmp_path / "state" / "health" / "vehicle-detector-t1.json"

        def health() -> dict:
            try:
                return json.loads(health_path.read_text())
            except (OSError, ValueError):
                return {}

        try:
            assert wait_until(lambda: cam.done, 200), f"stream served {cam.sent} of {len(cam.jpegs)} frames"
            time.sleep(6)  # the last frames through the pipeline, one more health write
            h = health()
            assert proc.poll() is None, (tmp_path / "detector.log").read_text()[-3000:]
            assert h.get("healthy") and not h.get("finished"), h  # a live camera never "finishes"
            cam_h = h["cameras"][0]
            drops = (len(cam.jpegs) - 1) // DROP_EVERY  # connections cut mid-scene
            print("\nlive stream:", cam.connections, "connections,", cam.corrupted, "corrupt frames sent;", h)
            assert cam_h["reconnects"] >= drops, cam_h
            # truncated JPEGs are skipped and counted (the source checks each part's end marker)
            assert cam_h["corrupt"] >= cam.corrupted - drops, cam_h
            assert cam_h["decoded"] + cam_h["corrupt"] >= len(cam.jpegs) - 5 * drops, cam_h
            found, want = h["candidates"], len(truth["violations"])
            assert want - 1 <= found <= want + 1, (found, want, cam_h)
            assert h["outbox"] == 0, h
        finally:
            proc.terminate()
            code = proc.wait(30)
            log.close()
        assert code == 0, (tmp_path / "detector.log").read_text()[-3000:]
