"""Health signal: each service instance rewrites a small JSON file every few seconds.

Probes (Docker, Kubernetes, systemd) run ``stopline health --config site.yaml --service NAME``,
which exits 0 when a fresh file says the instance is connected to the broker.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import asdict
from pathlib import Path

from stopline.shared.bus import Bus

STALE_AFTER_S = 30.0


def health_dir(state_dir: str | Path) -> Path:
    return Path(state_dir) / "health"


def health_file(state_dir: str | Path, service: str, instance: str) -> Path:
    return health_dir(state_dir) / f"{service}-{instance}.json"


class HealthWriter:
    """Writes ``bus.stats`` (plus extra fields from ``extra()``) every ``every_s`` seconds."""

    def __init__(self, state_dir: str | Path, bus: Bus, extra=None, every_s: float = 5.0):
        self.path = health_file(state_dir, bus.service, bus.instance)
        self.bus = bus
        self.extra = extra or (lambda: {})
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)

    def start(self) -> "HealthWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.write(stopped=True)

    def write(self, stopped: bool = False) -> None:
        data = {"service": self.bus.service, "instance": self.bus.instance, "pid": os.getpid(),
                "at": time.time(), "healthy": self.bus.healthy and not stopped, "stopped": stopped,
                **asdict(self.bus.stats), **self.extra()}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.write()
            self._stop.wait(self.every_s)


def check(state_dir: str | Path, service: str, instance: str | None = None) -> tuple[bool, str]:
    """(healthy, reason) from the freshest health file of ``service`` (or one instance)."""
    pattern = f"{service}-{instance}.json" if instance else f"{service}-*.json"
    files = sorted(health_dir(state_dir).glob(pattern), key=lambda p: p.stat().st_mtime)
    if not files:
        return False, f"no health file for {service} in {health_dir(state_dir)}"
    data = json.loads(files[-1].read_text())
    age = time.time() - data.get("at", 0)
    if data.get("stopped"):
        return False, f"{service} stopped"
    if age > STALE_AFTER_S:
        return False, f"{service} health file is {age:.0f}s old"
    if not data.get("healthy"):
        return False, f"{service} not connected to the broker"
    return True, f"{service} healthy (handled {data.get('handled', 0)}, published {data.get('published', 0)})"
