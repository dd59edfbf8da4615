"""Run the four services as separate processes against a broker, as in production."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

SERVICES = ("violation-desk", "plate-reader", "plate-finder", "vehicle-detector")


def stopline(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stopline", *args], check=True, **kw)


def render_scene(out: Path, seed: int, duration: float, *extra: str) -> Path:
    if not (out / "truth.json").exists():
        stopline("sim", "--seed", str(seed), "--duration", str(duration), "--out", str(out), *extra,
                 stdout=subprocess.DEVNULL)
    return out


def write_site(work: Path, scene: Path, host: str, port: int, *, realtime: bool = False,
               database_url: str | None = None, **services) -> Path:
    site = {
        "site": "e2e",
        "state_dir": str(work / "state"),
        "mqtt": {"host": host, "port": port, "reconnect_min_s": 0.2, "reconnect_max_s": 2},
        "database": {"url": database_url or f"sqlite:///{work / 'desk.db'}"},
        "cameras": [{"file": str(scene / "camera.yaml"), "loop": False}],
        "services": {"vehicle_detector": {"realtime": realtime},
                     "violation_desk": {"host": "127.0.0.1", "port": _free_port()}, **services},
    }
    path = work / "site.yaml"
    path.write_text(yaml.safe_dump(site, sort_keys=False))
    return path


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_desk(site: Path, scene: Path) -> None:
    stopline("desk", "migrate", "--config", str(site))
    stopline("desk", "import-registry", str(scene / "registry.csv"), "--config", str(site),
             stdout=subprocess.DEVNULL)


class Pipeline:
    def __init__(self, site: Path, logs: Path):
        self.site = site
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen] = {}
        self.state = Path(yaml.safe_load(site.read_text())["state_dir"])

    def start(self, service: str, instance: str = "t1") -> subprocess.Popen:
        log = open(self.logs / f"{service}-{instance}.log", "a")
        env = {**os.environ, "STOPLINE_INSTANCE": instance}
        proc = subprocess.Popen([sys.executable, "-m", "stopline", "serve", service, "--config", str(self.site)],
                                stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs[f"{service}/{instance}"] = proc
        return proc

    def start_all(self) -> None:
        for s in SERVICES:
            self.start(s)

    def kill(self, service: str, instance: str = "t1") -> None:
        proc = self.procs.pop(f"{service}/{instance}")
        proc.kill()
        proc.wait()

    def health(self, service: str, instance: str = "t1") -> dict:
        try:
            return json.loads((self.state / "health" / f"{service}-{instance}.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_online(self, service: str, instance: str = "t1", timeout: float = 120) -> bool:
        """This process (not an earlier one's stale health file) says it is connected."""
        pid = self.procs[f"{service}/{instance}"].pid

        def ok() -> bool:
            h = self.health(service, instance)
            return h.get("pid") == pid and bool(h.get("connected"))

        return wait_until(ok, timeout, step=0.2)

    def detector_done(self) -> bool:
        h = self.health("vehicle-detector")
        return bool(h.get("finished")) and int(h.get("outbox", 1)) == 0

    def stop(self) -> None:
        for key in reversed(list(self.procs)):
            proc = self.procs[key]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.send_signal(signal.SIGCONT)  # a process a test froze stops too
        for proc in self.procs.values():
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.procs.clear()

    def log_tail(self, n: int = 40) -> str:
        out = []
        for f in sorted(self.logs.glob("*.log")):
            lines = f.read_text(errors="replace").splitlines()[-n:]
            out.append(f"--- {f.name}\n" + "\n".join(lines))
        return "\n".join(out)


def wait_until(cond, timeout: float, step: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return False
