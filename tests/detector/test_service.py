"""``stopline serve vehicle-detector`` against a real mosquitto: candidates published through
the durable outbox, signal phases taken from a controller topic, nothing lost while the broker
is down."""

from __future__ import annotations

import threading
import time

import cv2
import paho.mqtt.client as mqtt
import pytest

from det_scene import Car, camera, frames
from stopline.services.vehicle_detector import service
from stopline.shared import topics
from stopline.shared.config import SiteConfig
from stopline.shared.messages import SignalPhase, decode, encode
from stopline.shared.outbox import Outbox
from stopline.shared.signing import generate_key, public_key_path, verify_candidate


def wait_until(cond, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    d = tmp_path_factory.mktemp("svc")
    video = d / "clip.avi"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 25, (640, 360))
    for _, _, img, _ in frames(4, 25, [Car(0.8, 200, 200)], lambda t: "red"):  # crossing ~1.85 s
        w.write(img)
    w.release()
    return video


def site(broker, tmp_path, cam, **detector) -> SiteConfig:
    # the drawn "cars" are plain boxes, not vehicles a trained detector should see: these tests are
    # about the service (outbox, signing, controller topic), so they run the motion backend; the
    # YOLO backend's service path is covered on simulator scenes (tests/e2e, tests/detector/test_synthetic.py)
    return SiteConfig.model_validate({
        "site": "t", "mqtt": {"host": broker.host, "port": broker.port, "reconnect_max_s": 1.0},
        "cameras": [cam.model_dump()], "state_dir": str(tmp_path),
        "services": {"vehicle_detector": {"realtime": False, "backend": "motion", **detector}}})


class Collector:
    def __init__(self, broker, topic):
        self.messages: list[bytes] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda c, u, m: self.messages.append(m.payload)
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(topic, qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def start(site_cfg):
    stop = threading.Event()
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("rc", service.run(site_cfg, stop)), daemon=True)
    t.start()
    return stop, t, result


def test_signal_from_controller_topic_and_signed_candidate_published(mosquitto, tmp_path, clip):
    key = generate_key(tmp_path / "cam1.pem")
    cam = camera(source=str(clip), signal={"mode": "mqtt"},
                 evidence={"burst_size": 3, "signing_key": str(tmp_path / "cam1.pem")})
    cfg = site(mosquitto, tmp_path, cam, realtime=True)  # paced: the phase arrives before the car
    got = Collector(mosquitto, topics.camera_topic("t", "cam1", topics.CANDIDATE))
    controller = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    controller.connect(mosquitto.host, mosquitto.port)
    controller.loop_start()
    red = SignalPhase(phase="red", at=time.time() - 5)  # red began 5 s ago (controller clock)
    controller.publish(topics.camera_topic("t", "cam1", topics.SIGNAL), encode(red), qos=1, retain=True).wait_for_publish()
    stop, thread, result = start(cfg)
    try:
        assert wait_until(lambda: len(got.messages) == 1, 30)
    finally:
        stop.set()
        thread.join(30)
        got.close()
        controller.loop_stop()
        controller.disconnect()
    assert result["rc"] == 0
    env = decode(got.messages[0])
    cand = env.message.candidate
    assert cand.camera == "cam1" and cand.signal_phase == "red" and cand.time_into_red_s > 5
    assert [e.role for e in cand.evidence][:3] == ["approach", "crossing", "inside"]
    assert verify_candidate(cand, public_key_path(tmp_path / "cam1.pem").read_bytes())
    assert key is not None and len(Outbox(tmp_path / "stopline-outbox.db")) == 0


def test_candidate_waits_in_the_outbox_while_the_broker_is_down(mosquitto, tmp_path, clip):
    mosquitto.stop()
    cam = camera(source=str(clip), signal={"mode": "constant", "constant": "red"})
    stop, thread, result = start(site(mosquitto, tmp_path, cam))
    outbox = tmp_path / "stopline-outbox.db"
    # the candidate and, after it, its evidence clip
    assert wait_until(lambda: outbox.exists() and len(Outbox(outbox)) == 2, 40)
    stop.set()
    thread.join(40)
    assert len(Outbox(outbox)) == 2  # could not be sent: still on disk after the service stopped

    mosquitto.start()
    got = Collector(mosquitto, topics.camera_topic("t", "cam1", topics.CANDIDATE))
    quiet = camera(source=str(clip), signal={"mode": "constant", "constant": "green"})
    stop, thread, result = start(site(mosquitto, tmp_path, quiet))
    try:
        assert wait_until(lambda: len(got.messages) == 1, 30)  # resent on start
        assert wait_until(lambda: len(Outbox(outbox)) == 0, 10)
    finally:
        stop.set()
        thread.join(30)
        got.close()
    assert decode(got.messages[0]).message.candidate.signal_phase == "red"


def test_a_stalled_camera_holds_up_no_other_and_both_share_one_model(mosquitto, tmp_path, clip, caplog):
    """Two cameras in one service, default backend: cam1's HTTP stream sends ten frames and
    stalls; cam2 (a file) still gets its runner published (the model sees the drawn car only now
    and then: the motion safety net carries its track), while cam1 is reopened. Both cameras run the one
    ONNX session of the process."""
    from det_mjpeg import MjpegServer

    from stopline.services.vehicle_detector.pipeline import DetectorPipeline

    with MjpegServer(fps=25, frames_per_connection=10, stall_s=60) as stalled:
        cams = [camera(id="cam1", source=stalled.url, signal={"mode": "constant", "constant": "red"}),
                camera(id="cam2", source=str(clip), signal={"mode": "constant", "constant": "red"})]
        cfg = SiteConfig.model_validate({
            "site": "t", "mqtt": {"host": mosquitto.host, "port": mosquitto.port, "reconnect_min_s": 0.2,
                                  "reconnect_max_s": 1.0},
            "cameras": [c.model_dump() for c in cams], "state_dir": str(tmp_path),
            "services": {"vehicle_detector": {"realtime": False}}})  # cam2: every frame, however slow
        got = Collector(mosquitto, topics.camera_topic("t", "+", topics.CANDIDATE))
        built: list[DetectorPipeline] = []
        init = DetectorPipeline.__init__

        def record(self, *a, **k):
            init(self, *a, **k)
            built.append(self)

        DetectorPipeline.__init__ = record  # type: ignore[method-assign]
        stop, thread, result = start(cfg)
        try:
            assert wait_until(lambda: len(got.messages) >= 1, 60)
            assert wait_until(lambda: stalled.connections >= 2, 30)  # cam1 reopened after its stall
        finally:
            DetectorPipeline.__init__ = init  # type: ignore[method-assign]
            stop.set()
            thread.join(30)
            got.close()
    cands = [decode(m).message.candidate for m in got.messages]
    assert {c.camera for c in cands} == {"cam2"} and len(cands) == 1
    assert len(built) == 2 and built[0]._onnx is built[1]._onnx
    assert "read failed or stalled; reconnecting" in caplog.text


@pytest.mark.parametrize("buffer_s, frames_held", [(None, 25), (0.5, 12), (0.0, 2)])
def test_a_camera_holds_frame_buffer_s_of_frames_before_dropping(tmp_path, clip, buffer_s, frames_held):
    """The decoder holds ``frame_buffer_s`` seconds of frames (default 1 s; the clip has 25
    frames/s), so a burst of work (a crossing's evidence on this or another camera) is absorbed
    rather than dropped; never fewer than 2."""
    detector = {"realtime": True, "backend": "motion"}
    if buffer_s is not None:
        detector["frame_buffer_s"] = buffer_s
    cfg = SiteConfig.model_validate({
        "site": "t", "cameras": [camera(id="cam1", source=str(clip)).model_dump()], "state_dir": str(tmp_path),
        "services": {"vehicle_detector": detector}})
    stop = threading.Event()
    worker = service.CameraWorker(cfg, cfg.cameras[0], cfg.services.vehicle_detector,
                                  Outbox(tmp_path / "outbox.db"), stop)
    try:
        assert worker.source._cap == frames_held
    finally:
        worker.source.close()
