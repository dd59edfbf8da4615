"""Poison messages fed to the real consumers (``stopline serve plate-finder``, ``plate-reader``,
``violation-desk`` as processes on a real mosquitto): 25 poison messages then a valid one, to each
consumer's input topic. The valid one is handled within seconds, the 25 are dead-lettered (one
letter each, with the service and the reason); the same with the consumers restarted while more
poison waits for them; and nothing of the first round comes back. ``stopline health`` says
healthy at the end.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support.bus_helpers import Collector
from support.mosquitto import free_port
from support.pipeline import Pipeline, wait_until
from support.poison import poison_stream
from support.samples import candidate, jpeg

from stopline.shared import topics
from stopline.shared.messages import PlateCandidates, PlateImage, decode, encode, sha256_hex
from stopline.services.violation_desk.samples import make_result

pytestmark = [pytest.mark.timeout(600)]

SITE, CAM = "poison", "cam1"
CONSUMERS = {  # service: the stage it consumes
    "plate-finder": topics.CANDIDATE,
    "plate-reader": topics.PLATES,
    "violation-desk": topics.READ,
}
HANDLED_WITHIN_S = 20.0  # valid message after 25 poison ones, on the loaded 2-core test machine


def write_site(work: Path, broker) -> Path:
    site = {"site": SITE, "state_dir": str(work / "state"),
            "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.2, "reconnect_max_s": 2},
            "database": {"url": f"sqlite:///{work / 'desk.db'}"},
            "services": {"violation_desk": {"host": "127.0.0.1", "port": free_port()}}}
    path = work / "site.yaml"
    path.write_text(yaml.safe_dump(site))
    subprocess.run([sys.executable, "-m", "stopline", "desk", "migrate", "--config", str(path)], check=True,
                   stdout=subprocess.DEVNULL)
    return path


def valid_inputs() -> dict[str, tuple[str, bytes]]:
    """(event id, payload) of one valid message per consumer."""
    vc, blobs = candidate(camera=CAM, site=SITE)
    pc, pc_blobs = candidate(camera=CAM, site=SITE)
    crop = jpeg(160, 48, seed=9)
    plates = PlateCandidates(candidate=pc.candidate, plates=[PlateImage(
        name="plate0.jpg", source="frame1.jpg", box=(0, 0, 160, 48), score=0.8, sha256=sha256_hex(crop))])
    read, read_blobs = make_result("AB123CD", site=SITE, camera=CAM)
    return {"plate-finder": (vc.event_id, encode(vc, blobs)),
            "plate-reader": (pc.event_id, encode(plates, {**pc_blobs, "plate0.jpg": crop})),
            "violation-desk": (read.candidate.event_id, encode(read, read_blobs))}


def undecodable_read() -> bytes:
    """A plate result whose evidence images are not JPEGs (their SHA-256 matches the bytes)."""
    read, blobs = make_result("ZZ999ZZ", site=SITE, camera=CAM)
    for ev in read.candidate.evidence:
        blobs[ev.name] = b"\xff\xd8 not a picture " + ev.name.encode()
        ev.sha256 = sha256_hex(blobs[ev.name])
    return encode(read, blobs)


def poison_for(service: str) -> list[tuple[str, bytes]]:
    base = {"plate-finder": candidate(camera=CAM, site=SITE),
            "plate-reader": (PlateCandidates(candidate=candidate(camera=CAM, site=SITE)[0].candidate, plates=[]),
                             candidate(camera=CAM, site=SITE)[1]),
            "violation-desk": make_result("XY1", site=SITE, camera=CAM)}[service]
    stream = poison_stream(*base, 23)
    wrong_kind = encode(*candidate(camera=CAM, site=SITE)) if service != "plate-finder" else \
        encode(PlateCandidates(candidate=base[0].candidate, plates=[]), base[1])
    extra = ("undecodable evidence", undecodable_read()) if service == "violation-desk" else \
        ("undecodable evidence", _undecodable_candidate(service))
    return stream + [("wrong kind for the topic", wrong_kind), extra]


def _undecodable_candidate(service: str) -> bytes:
    vc, blobs = candidate(camera=CAM, site=SITE)
    for ev in vc.candidate.evidence:
        blobs[ev.name] = b"not a jpeg " + ev.name.encode()
        ev.sha256 = sha256_hex(blobs[ev.name])
    if service == "plate-finder":
        return encode(vc, blobs)
    return encode(PlateCandidates(candidate=vc.candidate, plates=[PlateImage(
        name=vc.candidate.evidence[0].name, source=vc.candidate.evidence[0].name, box=(0, 0, 10, 10), score=0.5,
        sha256=vc.candidate.evidence[0].sha256)]), blobs)


class Outputs:
    """What the consumers published: their outputs by event id, and the dead letters."""

    def __init__(self, broker):
        self.out = Collector(broker, f"{topics.ROOT}/{SITE}/+/violation/#")
        self.dead = Collector(broker, topics.deadletter(SITE))

    def handled(self, service: str, event_id: str) -> bool:
        leaf = {"plate-finder": topics.PLATES, "plate-reader": topics.READ, "violation-desk": topics.STATUS}[service]
        for topic, payload, _ in list(self.out.messages):
            if topic.endswith(leaf):
                try:  # the read topic carries the poison sent to the desk too
                    msg = decode(bytes(payload)).message
                except Exception:  # MessageError (or, from an older decoder, anything)
                    continue
                if getattr(msg, "event_id", None) == event_id and getattr(msg, "status", "queued") == "queued":
                    return True
        return False

    def letters(self, service: str) -> list:
        return [m for m in (decode(bytes(p)).message for _, p, _ in list(self.dead.messages)) if m.service == service]

    def close(self) -> None:
        self.out.close()
        self.dead.close()


def send_round(broker_pub, outputs: Outputs) -> dict[str, tuple[str, list]]:
    sent = {}
    valid = valid_inputs()
    for service, stage in CONSUMERS.items():
        topic = topics.camera_topic(SITE, CAM, stage)
        poison = poison_for(service)
        for _, payload in poison:
            broker_pub(topic, payload)
        broker_pub(topic, valid[service][1])
        sent[service] = (valid[service][0], poison)
    return sent


def check_round(outputs: Outputs, sent: dict, letters_before: dict[str, int], since: float) -> None:
    for service, (event_id, poison) in sent.items():
        assert wait_until(lambda: outputs.handled(service, event_id), HANDLED_WITHIN_S + 60, 0.2), \
            f"{service} did not handle the valid message"
        took = time.monotonic() - since
        print(f"{service}: the valid message handled {took:.1f} s after the round was sent")
        assert took < HANDLED_WITHIN_S * 3, (service, took)  # all three stages, one after the other
        want = letters_before[service] + len(poison)
        assert wait_until(lambda: len(outputs.letters(service)) >= want, 30, 0.2), \
            (service, len(outputs.letters(service)), want)
    time.sleep(2)  # nothing more comes: one letter per poison message
    for service, (_, poison) in sent.items():
        got = outputs.letters(service)[letters_before[service]:]
        assert len(got) == len(poison), (service, [m.reason for m in got])
        for (kind, payload), letter in zip(poison, got):
            assert letter.payload_bytes == len(payload) and letter.reason, (service, kind)
        reasons = " | ".join(m.reason for m in got)
        assert "nests more than" in reasons and "digits" in reasons, reasons
        assert "not decodable" in reasons or "not a decodable image" in reasons, (service, reasons)


def test_poison_then_valid_to_each_consumer_and_again_after_a_restart(mosquitto, tmp_path):
    import paho.mqtt.client as mqtt

    site = write_site(tmp_path, mosquitto)
    pipe = Pipeline(site, tmp_path / "logs")
    outputs = Outputs(mosquitto)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    pub.connect(mosquitto.host, mosquitto.port)
    pub.loop_start()

    def publish(topic: str, payload: bytes) -> None:
        info = pub.publish(topic, payload, qos=1)
        info.wait_for_publish(10)
        assert info.is_published()

    def online() -> bool:
        return all(pipe.health(s).get("connected") and pipe.health(s).get("pid") == pipe.procs[f"{s}/t1"].pid
                   for s in CONSUMERS)

    try:
        for service in CONSUMERS:
            pipe.start(service)
        assert wait_until(online, 120), pipe.log_tail()
        started = time.monotonic()
        sent = send_round(publish, outputs)
        check_round(outputs, sent, {s: 0 for s in CONSUMERS}, started)

        # restart: the consumers go away, more poison and a valid message wait on their sessions
        pipe.stop()
        before = {s: len(outputs.letters(s)) for s in CONSUMERS}
        sent = send_round(publish, outputs)
        for service in CONSUMERS:
            pipe.start(service)
        assert wait_until(online, 120), pipe.log_tail()
        check_round(outputs, sent, before, time.monotonic())

        for service in CONSUMERS:
            health = subprocess.run([sys.executable, "-m", "stopline", "health", "--config", str(site),
                                     "--service", service], capture_output=True, text=True, timeout=60)
            assert health.returncode == 0, health.stdout
            # the status file is rewritten every few seconds: the ack of the message just seen
            # handled may not be in the snapshot yet
            assert wait_until(lambda: pipe.health(service)["unacked"] == 0, 30), (service, pipe.health(service))
        assert all(p.poll() is None for p in pipe.procs.values()), pipe.log_tail()
    finally:
        pipe.stop()
        pub.loop_stop()
        pub.disconnect()
        outputs.close()
