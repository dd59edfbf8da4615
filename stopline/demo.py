"""``stopline demo``: the whole system on one machine, from a synthetic intersection to the queue.

Renders a scene, starts an embedded MQTT broker, runs the four services as separate processes
(exactly as ``stopline serve`` runs them in production), streams the video at real time, shows
progress, and serves the review page. ``--exit-when-done --report r.json`` make it a scripted
check: the report compares the queue with the scene's truth.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import webbrowser
from pathlib import Path

import yaml

from stopline.children import child_env
from stopline.embedded_broker import EmbeddedBroker
from stopline.shared.health import health_dir
from stopline.shared.signing import generate_key, public_key_path

SERVICES = ("violation-desk", "plate-reader", "plate-finder", "vehicle-detector")
DEMO_USER = "demo"


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on a synthetic intersection")
    p.add_argument("--duration", type=float, default=120.0, help="seconds of scene to render and stream")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--night", action="store_true", help="a night scene")
    p.add_argument("--region", choices=("eu", "us", "mixed"), default="eu",
                   help="plate styles (US plates render at ~40 px here, below what reads reliably)")
    # 0.8: the default 120 s scene (seed 7) then holds 8 red-light runners, enough to measure
    # precision and recall on; 0.7 gave it one
    p.add_argument("--red-runners", type=float, default=0.8,
                   help="share of drivers first to face amber/red who run it")
    p.add_argument("--workdir", default=".demo", help="where the scene, database and logs go")
    p.add_argument("--port", type=int, default=8080, help="review page port on 127.0.0.1")
    p.add_argument("--exit-when-done", action="store_true", help="stop once the scene is processed")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--report", help="write the comparison with the scene's truth to this JSON file")
    p.add_argument("--settle", type=float, default=60.0, help="max seconds to wait for the queue to settle")
    p.set_defaults(func=run_demo)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stopline(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stopline", *args], check=True, env=child_env(), **kw)


def render_scene(scene: Path, seed: int, duration: float, night: bool, red_runners: float, region: str) -> None:
    truth = scene / "truth.json"
    stamp = scene / "scene.json"
    wanted = {"seed": seed, "duration": duration, "night": night, "red_runners": red_runners, "region": region}
    if truth.exists() and stamp.exists() and json.loads(stamp.read_text()) == wanted:
        print(f"scene: reusing {scene}")
        return
    print(f"scene: rendering {duration:.0f} s of a synthetic intersection (seed {seed}) into {scene}")
    extra = ["--night"] if night else []
    _stopline("sim", "--seed", str(seed), "--duration", str(duration), "--out", str(scene), "--preview",
              "--red-runners", str(red_runners), "--region", region, *extra)
    stamp.write_text(json.dumps(wanted))


def signed_camera(work: Path, scene: Path) -> Path:
    """The scene's camera with a signing key of its own (created now, like a camera's at
    installation): ``work/camera.yaml``, its key ``work/keys/<camera>.pem`` and ``.pub.pem``."""
    camera = yaml.safe_load((scene / "camera.yaml").read_text())
    key = (work / "keys" / f"{camera['id']}.pem").resolve()
    generate_key(key, overwrite=True)
    camera.setdefault("evidence", {})["signing_key"] = str(key)
    source = Path(camera.get("source") or "video.mp4")
    camera["source"] = str(source if source.is_absolute() else (scene / source).resolve())
    path = work / "camera.yaml"
    path.write_text(yaml.safe_dump(camera, sort_keys=False))
    return path.resolve()


def write_site(work: Path, scene: Path, mqtt_port: int, web_port: int) -> Path:
    site = {
        "site": "demo",
        "state_dir": str(work / "state"),
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "shared_subscriptions": False,
                 "reconnect_min_s": 0.5, "reconnect_max_s": 5},
        "database": {"url": f"sqlite:///{(work / 'desk.db').resolve()}"},
        "cameras": [{"file": str(signed_camera(work, scene)), "loop": False}],
        "services": {
            "vehicle_detector": {"realtime": True},
            "violation_desk": {"host": "127.0.0.1", "port": web_port,
                               "secret_key": secrets.token_hex(16)},
        },
    }
    path = work / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    return path


def prepare_desk(site_path: Path, scene: Path) -> str:
    """Migrate the database, seed the registry and create the demo login; returns its password."""
    password = secrets.token_urlsafe(9)
    _stopline("desk", "migrate", "--config", str(site_path))
    _stopline("desk", "import-registry", str(scene / "registry.csv"), "--config", str(site_path),
              stdout=subprocess.DEVNULL)
    # --password=...: a token may begin with "-", which argparse would take for an option
    _stopline("desk", "add-user", DEMO_USER, "--role", "supervisor", f"--password={password}",
              "--config", str(site_path), "--replace")
    # the camera's public key: its evidence shows as verified, and anything altered as tampered
    camera = yaml.safe_load((site_path.parent / "camera.yaml").read_text())
    public = public_key_path(camera["evidence"]["signing_key"])
    _stopline("desk", "add-camera", "--id", camera["id"], "--public-key", str(public), "--config", str(site_path),
              stdout=subprocess.DEVNULL)
    return password


def start_services(site_path: Path, logs: Path, procs: dict[str, subprocess.Popen]) -> None:
    """Start the four services into ``procs`` (filled as they start, so that a stop half-way
    through still finds every one started)."""
    logs.mkdir(parents=True, exist_ok=True)
    env = child_env({**os.environ, "STOPLINE_INSTANCE": "demo"})  # they stop when the demo does
    for name in SERVICES:
        log = open(logs / f"{name}.log", "w")
        procs[name] = subprocess.Popen([sys.executable, "-m", "stopline", "serve", name, "--config", str(site_path)],
                                       stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()


def stop_services(procs: dict[str, subprocess.Popen]) -> None:
    for name in reversed(SERVICES):  # producers first, so consumers drain what is in flight
        proc = procs.get(name)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _health(state: Path, service: str) -> dict:
    path = health_dir(state) / f"{service}-demo.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _queued_count(site_path: Path) -> int:
    from stopline.report import count_violations

    return count_violations(site_path)


def progress_line(detector_health: dict, queued: int, duration: float) -> str:
    """The demo's one-line progress. ``queued`` is counted in the desk's database as it is now;
    the detector's count of candidates sent comes from its health file, rewritten every few
    seconds, so it can lag: a candidate can be queued before the file says it was sent. Every
    queued candidate was sent, so sent is at least ``queued``."""
    det = detector_health
    sent = max(int(det.get("candidates", 0)), queued)
    return (f"\rvideo {float(det.get('video_time_s', 0.0)):6.1f}/{duration:.0f} s | candidates sent {sent:3d} | "
            f"queued for review {queued:3d} | dropped frames {det.get('dropped_frames', 0)}")


def wait_for_pipeline(site_path: Path, state: Path, procs: dict[str, subprocess.Popen], duration: float,
                      settle_s: float) -> None:
    """Progress until the detector finished the video and the queue holds all its candidates."""
    started = time.monotonic()
    done_at = None
    last_line = ""
    while True:
        for name, proc in procs.items():
            if proc.poll() is not None and not (name == "vehicle-detector" and proc.returncode == 0):
                raise RuntimeError(f"{name} exited with status {proc.returncode}; see its log")
        det = _health(state, "vehicle-detector")
        sent = int(det.get("candidates", 0))
        queued = _queued_count(site_path)
        finished = bool(det.get("finished")) and int(det.get("outbox", 0)) == 0
        line = progress_line(det, queued, duration)
        if line != last_line:
            print(line, end="", flush=True)
            last_line = line
        if finished:
            done_at = done_at or time.monotonic()
            if queued >= sent or time.monotonic() - done_at > settle_s:
                print()
                return
        if time.monotonic() - started > duration * 3 + settle_s + 120:
            print()
            raise TimeoutError("the pipeline did not finish in time; see the logs")
        time.sleep(0.5)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # Ctrl-C, kill/systemd/CI, closed terminal


def run_demo(args: argparse.Namespace) -> int:
    for sig in STOP_SIGNALS:  # each one as Ctrl-C: KeyboardInterrupt, then the clean-up below
        signal.signal(sig, signal.default_int_handler)
    work = Path(args.workdir).resolve()
    scene = work / "scene"
    work.mkdir(parents=True, exist_ok=True)
    for stale in ("desk.db", "state", "evidence"):
        p = work / stale
        if p.is_file():
            p.unlink()
        elif p.is_dir():
            import shutil

            shutil.rmtree(p)
    procs: dict[str, subprocess.Popen] = {}
    broker = None
    try:
        render_scene(scene, args.seed, args.duration, args.night, args.red_runners, args.region)
        broker = EmbeddedBroker(port=_free_port()).start()
        site_path = write_site(work, scene, broker.port, args.port)
        password = prepare_desk(site_path, scene)
        url = f"http://127.0.0.1:{args.port}/"
        print(f"review page: {url}  login: {DEMO_USER} / {password}")
        start_services(site_path, work / "logs", procs)
        if not args.no_browser:
            webbrowser.open(url)
        wait_for_pipeline(site_path, work / "state", procs, args.duration, args.settle)
        from stopline.report import compare_with_truth

        report = compare_with_truth(site_path, scene / "truth.json")
        lat = report["end_to_end_latency_s"]
        print(report["summary"])
        print(f"  end-to-end latency (crossing -> queued): p50 {lat['p50']:.2f}s  p95 {lat['p95']:.2f}s")
        if args.report:
            Path(args.report).write_text(json.dumps(report, indent=2))
        if not args.exit_when_done:
            print(f"\nthe scene is processed; review it at {url} (login {DEMO_USER} / {password}); Ctrl-C to stop")
            while all(p.poll() is None for n, p in procs.items() if n != "vehicle-detector"):
                time.sleep(1)
    except KeyboardInterrupt:
        print()
    finally:
        for sig in STOP_SIGNALS:  # the clean-up runs to its end: a second Ctrl-C or kill waits for it
            signal.signal(sig, signal.SIG_IGN)
        if procs:
            print("stopping the services", flush=True)
        stop_services(procs)
        if broker is not None:
            broker.stop()
    return 0
