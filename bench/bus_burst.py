"""A burst of violation candidates through the real consumers: nothing lost, nothing doubled,
and each stage's throughput (which one bounds the pipeline).

    python bench/bus_burst.py [--count 500] [--poison-every 0] [--json out.json]

Starts a loopback mosquitto and ``stopline serve plate-finder``, ``plate-reader`` and
``violation-desk`` (SQLite) as processes, publishes ``--count`` candidates at once (four
1280x720 evidence JPEGs each, a car with a plate drawn on it), optionally one poison message
(cycling through the kinds in tests/support/poison.py) after every ``--poison-every`` valid
ones, and records when each event leaves each stage (plates, read, queued status). Checks: every
event queued exactly once at the desk, one dead letter per poison message, none otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from support.mosquitto import Mosquitto, free_port  # noqa: E402
from support.pipeline import Pipeline, wait_until  # noqa: E402
from support.poison import poison_kinds  # noqa: E402

from stopline.shared import topics  # noqa: E402
from stopline.shared.messages import (Candidate, EvidenceImage, ViolationCandidate, decode, encode,  # noqa: E402
                                      new_event_id, sha256_hex)

SITE, CAM = "burst", "cam1"
STAGES = {"plate-finder": topics.PLATES, "plate-reader": topics.READ, "violation-desk": topics.STATUS}


def evidence_jpeg(seed: int, frame: int) -> tuple[bytes, tuple[float, float, float, float]]:
    """A 1280x720 road scene with a car (and its plate) that moves down between frames."""
    rng = np.random.default_rng(seed)
    img = np.full((720, 1280, 3), (88, 90, 92), np.uint8)
    img[:240] = (190, 165, 140)
    img += rng.integers(0, 12, img.shape, dtype=np.uint8)  # texture: realistic JPEG sizes
    cv2.line(img, (0, 460), (1280, 460), (255, 255, 255), 6)
    x, y = 300 + int(rng.integers(0, 500)), 300 + frame * 60
    cv2.rectangle(img, (x, y), (x + 300, y + 170), tuple(int(c) for c in rng.integers(40, 220, 3)), -1)
    cv2.rectangle(img, (x + 95, y + 115), (x + 205, y + 145), (245, 245, 245), -1)
    text = f"{chr(65 + seed % 26)}{chr(65 + seed // 26 % 26)}{seed % 1000:03d}"
    cv2.putText(img, text, (x + 100, y + 139), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (10, 10, 10), 2, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 88])
    assert ok
    return buf.tobytes(), (float(x), float(y), float(x + 300), float(y + 170))


def make_candidate(seed: int) -> tuple[ViolationCandidate, dict[str, bytes]]:
    blobs, evidence, now = {}, [], time.time()
    for i, role in enumerate(("approach", "crossing", "inside", "signal")):
        data, box = evidence_jpeg(seed, i)
        name = f"e{i}.jpg"
        blobs[name] = data
        evidence.append(EvidenceImage(name=name, role=role, frame_index=100 + i * 5, captured_at=now - 1 + i * 0.2,
                                      vehicle_box=box, sha256=sha256_hex(data)))
    cand = Candidate(event_id=new_event_id(), site=SITE, camera=CAM, track_id=seed, vehicle_class="car",
                     crossed_at=now - 0.5, detected_at=now, frame_index=105, signal_phase="red", time_into_red_s=2.0,
                     evidence=evidence)
    return ViolationCandidate(candidate=cand), blobs


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Recorder:
    """When each event left each stage, and the dead letters."""

    def __init__(self, host: str, port: int):
        self.seen: dict[str, dict[str, list[float]]] = {s: {} for s in STAGES}
        self.dead: list[str] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on_message
        self.client.connect(host, port)
        for leaf in STAGES.values():
            self.client.subscribe(topics.any_camera(SITE, leaf), qos=1)
        self.client.subscribe(topics.deadletter(SITE), qos=1)
        self.client.loop_start()
        time.sleep(0.5)

    def _on_message(self, client, userdata, msg) -> None:
        t = time.monotonic()
        try:
            m = decode(bytes(msg.payload)).message
        except Exception:  # poison on the read topic, addressed to the desk
            return
        with self.lock:
            if msg.topic == topics.deadletter(SITE):
                self.dead.append(m.reason)
                return
            for service, leaf in STAGES.items():
                if msg.topic.endswith(leaf) and getattr(m, "status", "queued") == "queued":
                    self.seen[service].setdefault(m.event_id, []).append(t)

    def count(self, service: str) -> int:
        with self.lock:
            return len(self.seen[service])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=500)
    ap.add_argument("--poison-every", type=int, default=0, help="one poison message after every N valid ones")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="stopline-burst-"))
    broker = Mosquitto(work / "broker")
    broker.start()
    try:
        site = work / "site.yaml"
        site.write_text(yaml.safe_dump({
            "site": SITE, "state_dir": str(work / "state"),
            "mqtt": {"host": broker.host, "port": broker.port},
            "database": {"url": f"sqlite:///{work / 'desk.db'}"},
            "services": {"violation_desk": {"host": "127.0.0.1", "port": free_port()}}}))
        subprocess.run([sys.executable, "-m", "stopline", "desk", "migrate", "--config", str(site)], check=True,
                       stdout=subprocess.DEVNULL)
        print(f"building {args.count} candidates ...", flush=True)
        payloads = [encode(*make_candidate(i)) for i in range(args.count)]
        poison = [p for _, p in poison_kinds(*make_candidate(10_000))] if args.poison_every else []
        pipe = Pipeline(site, work / "logs")
        for service in STAGES:
            pipe.start(service)
        assert wait_until(lambda: all(pipe.health(s).get("connected") for s in STAGES), 180), pipe.log_tail()
        rec = Recorder(broker.host, broker.port)
        pids = {s: pipe.procs[f"{s}/t1"].pid for s in STAGES}
        cpu0 = {s: cpu_s(pid) for s, pid in pids.items()}
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        topic = topics.camera_topic(SITE, CAM, topics.CANDIDATE)
        sent_poison = 0
        t0 = time.monotonic()
        infos = []
        for i, payload in enumerate(payloads):
            infos.append(pub.publish(topic, payload, qos=1))
            if args.poison_every and (i + 1) % args.poison_every == 0:
                infos.append(pub.publish(topic, poison[sent_poison % len(poison)], qos=1))
                sent_poison += 1
        for info in infos:
            info.wait_for_publish(60)
        published_s = time.monotonic() - t0
        done = wait_until(lambda: rec.count("violation-desk") >= args.count, args.timeout, 0.5)
        total_s = time.monotonic() - t0
        time.sleep(3)  # anything doubled or late arrives now
        cpu = {s: cpu_s(pid) - cpu0[s] for s, pid in pids.items()}
        pipe.stop()
        pub.loop_stop()

        with sqlite3.connect(work / "desk.db") as db:
            rows, unique = db.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM violations").fetchone()
        stages = {}
        for service in STAGES:
            times = sorted(ts[0] for ts in rec.seen[service].values())
            doubled = sum(len(ts) > 1 for ts in rec.seen[service].values())
            span = (times[-1] - t0) if times else None
            first = times[0] - t0 if times else None
            stages[service] = {"out": len(times), "doubled_outputs": doubled,
                               "first_at_s": round(first, 1) if times else None,
                               "last_at_s": round(span, 1) if span else None,
                               "per_s": round(len(times) / span, 2) if span else None,
                               "cpu_s": round(cpu[service], 1),
                               "cpu_ms_per_message": round(1000 * cpu[service] / max(1, len(times)), 1)}
        report = {"count": args.count, "poison": sent_poison, "all_queued": done, "published_s": round(published_s, 1),
                  "all_queued_s": round(total_s, 1) if done else None, "desk_rows": rows, "desk_unique": unique,
                  "dead_letters": len(rec.dead), "stages": stages,
                  "bound_by": max(stages, key=lambda s: stages[s]["cpu_s"])}
        print(json.dumps(report, indent=2))
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        ok = done and rows == unique == args.count and len(rec.dead) == sent_poison
        print("OK: nothing lost, nothing doubled" if ok else "FAILED", flush=True)
        return 0 if ok else 1
    finally:
        broker.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
