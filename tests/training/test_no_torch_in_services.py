"""The edge and gateway services never import PyTorch (nor ultralytics/easyocr): they run the
shipped ONNX models on onnxruntime. Each service runs as its own process under a guard that
records every attempted import of the training stack, against a real mosquitto, on a short
synthetic scene with the trained YOLO detector and plate localiser configured."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.pipeline import Pipeline, render_scene, wait_until, write_site

from stopline.models import HERE as MODELS

GUARD = Path(__file__).with_name("torch_guard.py")
SERVICES = ("vehicle-detector", "plate-finder", "plate-reader")


def _guarded(report: Path, *argv: str, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(GUARD), str(report), *argv], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, env={**os.environ, "STOPLINE_INSTANCE": "t1"})


def test_guard_catches_an_attempted_torch_import(tmp_path):
    report = tmp_path / "r.json"
    subprocess.run([sys.executable, str(GUARD), str(report), "--exec", "import torch.nn"], check=True)
    data = json.loads(report.read_text())
    assert "torch" in data["attempts"]


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return render_scene(tmp_path_factory.mktemp("scene"), seed=5, duration=6)


def test_services_run_without_torch(scene, mosquitto, tmp_path):
    vehicle = MODELS / "vehicle-int8.onnx"
    detector = ({"backend": "onnx", "model": str(vehicle)} if vehicle.is_file() else {"backend": "motion"})
    site = write_site(tmp_path, scene, mosquitto.host, mosquitto.port,
                      vehicle_detector={"realtime": False, **detector})
    pipe = Pipeline(site, tmp_path / "logs")
    procs = {}
    try:
        for s in SERVICES:
            procs[s] = _guarded(tmp_path / f"{s}.json", "serve", s, "--config", str(site),
                                log=tmp_path / f"{s}.log")
        assert wait_until(pipe.detector_done, 400), "\n".join(
            (tmp_path / f"{s}.log").read_text()[-2000:] for s in SERVICES)
        for s in ("plate-finder", "plate-reader"):
            assert wait_until(lambda: pipe.health(s).get("healthy"), 60), (tmp_path / f"{s}.log").read_text()[-2000:]
        time.sleep(2)  # let the finder and reader take what the detector sent
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()
    for s in SERVICES:
        data = json.loads((tmp_path / f"{s}.json").read_text())
        assert data["attempts"] == [] and data["loaded"] == [], (s, data)
        assert data["modules"] > 100  # the service really ran (onnxruntime, cv2, paho, ...)
