"""Gateway throughput: plates read per second by one and by two plate readers, fed a backlog
through the central mosquitto as deployed (deploy/mosquitto/central.conf, its ACL and users).

For each reader count: a fresh broker, the readers started (`stopline serve plate-reader`, one
process each, fixed instance names, sharing `$share/plate-reader/...`), a warm-up, then a
backlog of MESSAGES plate-candidate messages (3 synthetic plate images each, as the plate
finder sends) published at once. Throughput = messages / (last read published - first
backlog message published), counted by a monitor subscriber on `.../violation/read`.

    python bench/reader_scaling.py --messages 60
    python bench/reader_scaling.py --messages 60 --threads 1 --readers 1 2

Each reader runs with `plate_reader.threads` onnxruntime threads (default 1, so that N readers
want N cores). Needs mosquitto; runs on loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "deploy"))

from slnet import broker  # noqa: E402

from stopline.shared.messages import (  # noqa: E402
    Candidate, EvidenceImage, PlateCandidates, PlateImage, encode, new_event_id, sha256_hex,
)
from stopline.sim.plates import random_plate, render_plate  # noqa: E402

SITE_FILE = REPO / "deploy" / "sites" / "datacenter.yaml"  # site elm-st, cameras north + south
PLATES = "stopline/elm-st/north/violation/plates"
READS = "stopline/elm-st/+/violation/read"


def vehicle_with_plate(rng: np.random.Generator) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """A 480x300 vehicle-rear-like crop with a rendered EU plate; returns it and the plate box."""
    img = np.full((300, 480, 3), rng.integers(40, 200), np.uint8)
    img = cv2.add(img, rng.integers(0, 25, img.shape, dtype=np.uint8))
    plate = render_plate(random_plate(rng, "eu"), px_per_m=340.0).astype(np.uint8)
    h, w = plate.shape[:2]
    x, y = 240 - w // 2, 190
    img[y : y + h, x : x + w] = plate
    return img, (float(x), float(y), float(x + w), float(y + h))


def message(rng: np.random.Generator, plates: int) -> bytes:
    blobs: dict[str, bytes] = {}
    evidence, plate_images = [], []
    for k in range(plates):
        img, box = vehicle_with_plate(rng)
        data = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        name = f"frame{k}.jpg"
        blobs[name] = data
        evidence.append(EvidenceImage(name=name, role=("approach", "crossing", "inside")[min(k, 2)],
                                      frame_index=100 + k, captured_at=time.time(), vehicle_box=(0, 0, 480, 300),
                                      sha256=sha256_hex(data)))
        plate_images.append(PlateImage(name=name, source=name, box=box, score=0.9, sha256=sha256_hex(data)))
    cand = Candidate(event_id=new_event_id(), site="elm-st", camera="north", track_id=1, vehicle_class="car",
                     crossed_at=time.time(), detected_at=time.time(), frame_index=101, signal_phase="red",
                     time_into_red_s=1.0, evidence=evidence)
    return encode(PlateCandidates(candidate=cand, plates=plate_images), blobs)


class ReadCounter:
    """Monitor subscriber: arrival time of every plate read."""

    def __init__(self, port: int, password: str):
        import paho.mqtt.client as mqtt

        self.times: list[float] = []
        self.ready = threading.Event()
        c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        c.username_pw_set("monitor", password)
        c.on_connect = lambda cl, u, f, rc, p=None: cl.subscribe(READS, qos=1)
        c.on_subscribe = lambda *a: self.ready.set()
        c.on_message = lambda cl, u, m: self.times.append(time.time())
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c
        if not self.ready.wait(10):
            raise RuntimeError("monitor could not subscribe")

    def wait_for(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while len(self.times) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return len(self.times) >= n

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def publish_all(port: int, password: str, payloads: list[bytes]) -> float:
    """Publish as cam-north (the pole's bridge user); returns when the first one was sent."""
    import paho.mqtt.client as mqtt

    c = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    c.username_pw_set("cam-north", password)
    c.max_inflight_messages_set(20)
    c.connect("127.0.0.1", port)
    c.loop_start()
    t0 = time.time()
    infos = [c.publish(PLATES, p, qos=1) for p in payloads]
    for info in infos:
        info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()
    return t0


def one_round(readers: int, payloads: list[bytes], warmup: list[bytes], threads: int, work: Path) -> dict:
    users = broker.acl_users([SITE_FILE])
    passwords = {u: secrets.token_hex(8) for u in users}
    mq = broker.Mosquitto("bench-central", broker.CENTRAL_CONF, users=passwords, acl=broker.make_acl([SITE_FILE]))
    mq.start()
    procs: list[subprocess.Popen] = []
    try:
        state = work / f"state-{readers}"
        site = yaml.safe_load(SITE_FILE.read_text())
        site["cameras"] = [{"file": str((SITE_FILE.parent / c["file"]).resolve())} for c in site["cameras"]]
        site.update(state_dir=str(state), database={"url": "sqlite:///unused.db"})
        site["mqtt"] = {"host": "127.0.0.1", "port": mq.port, "username": "plate-reader",
                        "password": passwords["plate-reader"], "shared_subscriptions": True}
        site["services"] = {"plate_reader": {"engine": "rapidocr", "threads": threads}}
        site_path = work / f"site-{readers}.yaml"
        site_path.write_text(yaml.safe_dump(site))
        counter = ReadCounter(mq.port, passwords["monitor"])
        for i in range(readers):
            env = {**os.environ, "STOPLINE_INSTANCE": f"bench-{i}", "OMP_NUM_THREADS": str(threads)}
            log = open(work / f"reader-{readers}-{i}.log", "w")
            procs.append(subprocess.Popen([sys.executable, "-m", "stopline", "serve", "plate-reader",
                                           "--config", str(site_path)], stdout=log, stderr=subprocess.STDOUT,
                                          env=env))
        deadline = time.monotonic() + 120
        while not all(f"as stopline-elm-st-plate-reader-bench-{i}" in mq.log() for i in range(readers)):
            if time.monotonic() > deadline:
                raise RuntimeError("readers did not connect:\n" + mq.log())
            time.sleep(0.2)
        time.sleep(1.0)  # subscriptions in place
        publish_all(mq.port, passwords["cam-north"], warmup)
        if not counter.wait_for(len(warmup), 300):
            raise RuntimeError(f"warm-up: {len(counter.times)}/{len(warmup)} reads")
        start_reads = len(counter.times)
        cpu0 = [cpu_seconds(p.pid) for p in procs]
        t0 = publish_all(mq.port, passwords["cam-north"], payloads)
        if not counter.wait_for(start_reads + len(payloads), 900):
            raise RuntimeError(f"backlog: {len(counter.times) - start_reads}/{len(payloads)} reads")
        elapsed = counter.times[-1] - t0
        cpu = [cpu_seconds(p.pid) - c for p, c in zip(procs, cpu0)]
        counter.close()
        handled = []
        time.sleep(5.5)  # one more health write
        for i in range(readers):
            h = json.loads((state / "health" / f"plate-reader-bench-{i}.json").read_text())
            handled.append(h.get("handled", 0))
        return {"readers": readers, "messages": len(payloads), "plates": len(payloads) * 3,
                "seconds": round(elapsed, 2), "messages_per_s": round(len(payloads) / elapsed, 3),
                "plates_per_s": round(3 * len(payloads) / elapsed, 3), "handled_per_reader": handled,
                # CPU the readers actually got: cores busy = CPU-seconds / wall seconds
                "cpu_s_per_reader": [round(c, 1) for c in cpu], "cores_used": round(sum(cpu) / elapsed, 2),
                "cpu_s_per_message": round(sum(cpu) / len(payloads), 3)}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
        mq.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=60, help="backlog size (messages of 3 plates)")
    ap.add_argument("--readers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads per reader")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if broker.mosquitto_missing():
        print(broker.mosquitto_missing(), file=sys.stderr)
        return 2
    rng = np.random.default_rng(args.seed)
    load0 = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results = []
    with tempfile.TemporaryDirectory(prefix="stopline-bench-readers-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        for n in args.readers:
            payloads = [message(rng, 3) for _ in range(args.messages)]
            warmup = [message(rng, 3) for _ in range(2 * n)]
            r = one_round(n, payloads, warmup, args.threads, work)
            results.append(r)
            print(json.dumps(r), flush=True)
    base = results[0]["messages_per_s"]
    print(f"\ncpu cores: {os.cpu_count()}, load average before: {load0}, "
          f"onnxruntime threads per reader: {args.threads}")
    print("| readers | messages | plates | seconds | plates/s | speed-up | messages per reader (incl. warm-up) "
          "| cores the readers got | CPU s per message |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for r in results:
        print(f"| {r['readers']} | {r['messages']} | {r['plates']} | {r['seconds']} | {r['plates_per_s']} | "
              f"{r['messages_per_s'] / base:.2f}x | {r['handled_per_reader']} | {r['cores_used']} | "
              f"{r['cpu_s_per_message']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
