"""Cameras per pole box: N cameras at once in one ``stopline serve vehicle-detector``.

Each camera plays a synthetic 1920x1080, 15 frames/s scene, looped and paced at real time (as a
live camera would deliver it; the detector drops frames it cannot keep up with and counts them):
by default all the same scene in lockstep, so every violation's evidence (JPEG burst, H.264 clip)
lands on every camera at the same moment, the worst case; ``--distinct`` gives each camera its
own scene (seeds SEED, SEED+1, ...), as independent cameras are. For N = 1, 2, ...: a fresh
broker, the service started with N cameras, a warm-up, then ``--seconds`` of measurement.
Reported per N: frames dropped during the measurement (the test: none), CPU (cores used, per
camera), CPU the hypervisor took, peak and final RSS, and per camera the violations found against
its scene's truth (recall and false ones over the whole run). Each scene's recall with nothing
else running (``stopline detect`` on the file) is the reference: the answer is the largest N with
no drops and no camera below its scene's reference.

    python bench/edge_cameras.py --cameras 1 2 3 4 5 6 --seconds 120 --json bench/results/edge_cameras.json
    python bench/edge_cameras.py --cameras 1 2 --seconds 30          # a quick check
    python bench/edge_cameras.py --cameras 3 4 --all --distinct      # independent cameras

Scenes are rendered once into ``--work`` (``stopline sim --size 1920x1080 --fps 15``, busy:
``--red-runners 0.9 --arrivals 900``). Needs mosquitto; loopback only. Raising N stops at the
first N that drops frames (``--all`` runs every N given).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

SITE = "bench"


def render_scene(work: Path, seed: int, duration: float) -> Path:
    scene = work / f"scene-1080p15-{seed}-{int(duration)}"
    if not (scene / "truth.json").is_file():
        subprocess.run([sys.executable, "-m", "stopline", "sim", "--seed", str(seed), "--duration", str(duration),
                        "--size", "1920x1080", "--fps", "15", "--red-runners", "0.9", "--arrivals", "900",
                        "--out", str(scene)], check=True, stdout=subprocess.DEVNULL)
    return scene


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_stat(pid: int) -> tuple[float, float]:
    """(CPU seconds user + system, RSS MB) of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    return cpu, rss


def stolen_s() -> float:
    """CPU seconds the hypervisor gave to others, all cores together (/proc/stat "steal"): on a
    shared VM, cores that were not there for the cameras."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()
    return int(fields[8]) / os.sysconf("SC_CLK_TCK")


def fresh_health(path: Path, timeout_s: float = 30.0) -> dict:
    """The next health write (every 5 s), read as soon as it lands: a window between two of them
    counts each frame once."""
    m0 = path.stat().st_mtime_ns
    deadline = time.monotonic() + timeout_s
    while path.stat().st_mtime_ns == m0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{path}: no health write in {timeout_s:.0f} s")
        time.sleep(0.05)
    time.sleep(0.05)  # written by replace: complete once it is there
    return json.loads(path.read_text())


class Candidates:
    """Every candidate published on the site's candidate topics: (camera, video time)."""

    def __init__(self, port: int):
        import paho.mqtt.client as mqtt

        from stopline.shared import topics

        self.got: list[tuple[str, float]] = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = self._on
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topics.camera_topic(SITE, "+", topics.CANDIDATE), qos=1)
        self.client.loop_start()

    def _on(self, client, userdata, msg) -> None:
        from stopline.shared.messages import decode

        cand = decode(msg.payload).message.candidate
        with self.lock:
            self.got.append((cand.camera, cand.video_time_s))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def score_camera(found: list[float], truth_times: list[float], period_s: float, played_s: float,
                 tolerance_s: float = 1.0) -> dict:
    """Found violations (looped video time) against the truth repeated every ``period_s``."""
    expected = [t + k * period_s for k in range(int(played_s // period_s) + 1) for t in truth_times
                if t + k * period_s <= played_s - tolerance_s]
    free = sorted(found)
    tp = 0
    for t in expected:
        hit = next((f for f in free if abs(f - t) <= tolerance_s), None)
        if hit is not None:
            free.remove(hit)
            tp += 1
    # violations found after the last expected one could be ones whose truth lies past the window
    fp = sum(1 for f in free if f <= played_s - tolerance_s)
    return {"expected": len(expected), "tp": tp, "fp": fp,
            "recall": round(tp / len(expected), 3) if expected else None}


def offline_recall(scene: Path) -> float | None:
    """The scene's recall with nothing else running (``stopline detect`` on the file, default
    settings, scored like a live camera): what "recall unchanged" is measured against."""
    from stopline.sim.truth import load_truth

    out = scene / "detect-offline"
    subprocess.run([sys.executable, "-m", "stopline", "detect", str(scene / "video.mp4"), "--camera",
                    str(scene / "camera.yaml"), "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    truth = load_truth(scene / "truth.json")
    found = [json.loads(line)["video_time_s"] for line in (out / "violations.jsonl").read_text().splitlines() if line]
    period = truth.n_frames / truth.fps
    return score_camera(found, [v.time_s for v in truth.violations], period, period)["recall"]


def one_round(n: int, scenes: list[Path], seconds: float, warmup_s: float, work: Path, extra: dict) -> dict:
    """N cameras, camera k playing ``scenes[k % len(scenes)]``."""
    from stopline.sim.truth import load_truth

    scene_of = [scenes[k % len(scenes)] for k in range(n)]
    truths = {sc: load_truth(sc / "truth.json") for sc in set(scene_of)}
    port = free_port()
    conf = work / f"mosquitto-{n}.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    broker = subprocess.Popen([shutil.which("mosquitto") or "mosquitto", "-c", str(conf)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = work / f"state-{n}"
    shutil.rmtree(state, ignore_errors=True)
    cams = []
    for k, scene in enumerate(scene_of):
        cam = yaml.safe_load((scene / "camera.yaml").read_text())
        cams.append(dict(cam, id=f"cam{k + 1}", source=str((scene / "video.mp4").resolve()), loop=True))
    site = {"site": SITE, "mqtt": {"host": "127.0.0.1", "port": port}, "state_dir": str(state),
            "cameras": cams, "services": {"vehicle_detector": {"realtime": True, **extra}}}
    site_path = work / f"site-{n}.yaml"
    site_path.write_text(yaml.safe_dump(site))
    health_path = state / "health" / "vehicle-detector-bench.json"
    proc = None
    try:
        time.sleep(0.5)
        got = Candidates(port)
        env = {**os.environ, "STOPLINE_INSTANCE": "bench"}
        log = open(work / f"detector-{n}.log", "w")
        proc = subprocess.Popen([sys.executable, "-m", "stopline", "serve", "vehicle-detector", "--config",
                                 str(site_path)], stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 180
        while not (health_path.is_file() and json.loads(health_path.read_text()).get("cameras")):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the detector did not start: see {log.name}")
            time.sleep(0.5)
        time.sleep(warmup_s)
        h0 = fresh_health(health_path)
        cpu0, _ = proc_stat(proc.pid)
        steal0 = stolen_s()
        t0 = time.monotonic()
        peak = 0.0
        while time.monotonic() - t0 < seconds:
            time.sleep(1.0)
            if proc.poll() is not None:
                raise RuntimeError(f"the detector exited: see {log.name}")
            peak = max(peak, proc_stat(proc.pid)[1])
        h1 = fresh_health(health_path)  # the window ends on a health write, >= ``seconds`` long
        cpu1, rss = proc_stat(proc.pid)
        wall = time.monotonic() - t0
        stolen = stolen_s() - steal0
        peak = max(peak, rss)
        load = os.getloadavg()
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
        broker.terminate()
        broker.wait(10)
    got.close()
    before = {c["camera"]: c for c in h0["cameras"]}
    per_cam = []
    for c in h1["cameras"]:
        b = before[c["camera"]]
        scene = scene_of[int(c["camera"].removeprefix("cam")) - 1]
        truth = truths[scene]
        period = truth.n_frames / truth.fps
        found = [vt for cam_id, vt in got.got if cam_id == c["camera"]]
        per_cam.append({"camera": c["camera"], "scene": scene.name,
                        "dropped": c["dropped"] - b["dropped"],
                        "decoded": c["decoded"] - b["decoded"], "frames": c["frames"] - b["frames"],
                        "video_time_s": c["video_time_s"],
                        **score_camera(found, [v.time_s for v in truth.violations], period, c["video_time_s"])})
    cpu = cpu1 - cpu0
    return {"cameras": n, "seconds": round(wall, 1), "dropped": sum(c["dropped"] for c in per_cam),
            "frames_per_s_per_camera": round(sum(c["frames"] for c in per_cam) / n / wall, 2),
            "cores_used": round(cpu / wall, 2), "cores_per_camera": round(cpu / wall / n, 3),
            "rss_mb": round(rss, 1), "peak_rss_mb": round(peak, 1), "rss_mb_per_camera": round(rss / n, 1),
            "recall": [c["recall"] for c in per_cam], "false": sum(c["fp"] for c in per_cam),
            "loadavg": [round(x, 1) for x in load], "stolen_cores": round(stolen / wall, 2), "per_camera": per_cam}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 3, 4, 5, 6])
    ap.add_argument("--seconds", type=float, default=120.0, help="measurement per N (after the warm-up)")
    ap.add_argument("--warmup", type=float, default=10.0, help="seconds after start-up before measuring")
    ap.add_argument("--scene", type=Path, help="a `stopline sim` folder (default: rendered into --work)")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--duration", type=float, default=60.0, help="scene length, s (it loops)")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "stopline-edge-cameras")
    ap.add_argument("--all", action="store_true", help="run every N even after one drops frames")
    ap.add_argument("--process-every", type=int, default=1)
    ap.add_argument("--frame-buffer-s", type=float, default=None,
                    help="services.vehicle_detector.frame_buffer_s (default: the service's)")
    ap.add_argument("--distinct", action="store_true",
                    help="one scene per camera (seeds SEED, SEED+1, ...): independent cameras, whose "
                         "violations (and their evidence) do not all come at the same moment")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if shutil.which("mosquitto") is None:
        print("mosquitto is not installed (scripts/system-deps.sh)", file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    if args.scene:
        scenes = [args.scene]
    elif args.distinct:  # independent cameras: their own traffic, violations at their own times
        scenes = [render_scene(args.work, args.seed + k, args.duration) for k in range(max(args.cameras))]
    else:  # every camera the same scene in lockstep: each violation's evidence on all at once
        scenes = [render_scene(args.work, args.seed, args.duration)]
    extra: dict = {"process_every": args.process_every}
    if args.frame_buffer_s is not None:
        extra["frame_buffer_s"] = args.frame_buffer_s
    rounds = []
    for n in args.cameras:
        r = one_round(n, scenes, args.seconds, args.warmup, args.work, extra)
        rounds.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "per_camera"}), flush=True)
        if r["dropped"] and not args.all:
            break
    # recall unchanged: no camera below its scene's recall with nothing else running
    alone = {sc.name: offline_recall(sc) for sc in scenes}
    held = [r["cameras"] for r in rounds if r["dropped"] == 0
            and all(c["recall"] is not None and c["recall"] >= (alone[c["scene"]] or 0.0) for c in r["per_camera"])]
    for r in rounds[1:]:  # what one more camera costs: the first carries the process and the model
        r["rss_mb_per_added_camera"] = round((r["rss_mb"] - rounds[0]["rss_mb"]) / (r["cameras"] - rounds[0]["cameras"]), 1)
    summary = {"scenes": [str(sc) for sc in scenes], "settings": extra, "recall_alone": alone,
               "seconds": args.seconds, "cpu_count": os.cpu_count(),
               "max_cameras_no_drops_recall_unchanged": max(held) if held else 0, "rounds": rounds}
    print(json.dumps({k: v for k, v in summary.items() if k != "rounds"}))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
