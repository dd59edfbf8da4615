"""Health signal: each service instance rewrites a small JSON file every few seconds.

Probes (Docker, Kubernetes, systemd) run ``stopline health --config site.yaml --service NAME``,
which exits 0 when a fresh file says the instance is connected to the broker and its consumer is
not stalled (``Bus.health``). The same writer keeps the retained status topic in step
(``online`` / ``unhealthy: <why>``) and writes the bus's Prometheus metrics next to the JSON
file (``<service>-<instance>.prom``, for node_exporter's textfile collector); in a process that
serves ``/metrics`` (the desk) they are in the default registry as well.
"""

from __future__ import annotations

import json
import os
import threading
import time
import weakref
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry, write_to_textfile
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from stopline.shared.bus import ONLINE, Bus

STALE_AFTER_S = 30.0

# why a bus is unhealthy, as the ``reason`` label of stopline_bus_unhealthy
REASONS = {"not connected": "disconnected", "consumer worker": "worker_stopped",
           "stalled: a message unacknowledged": "unacked_too_long", "stalled:": "no_progress"}


def health_dir(state_dir: str | Path) -> Path:
    return Path(state_dir) / "health"


def health_file(state_dir: str | Path, service: str, instance: str) -> Path:
    return health_dir(state_dir) / f"{service}-{instance}.json"


def ledger_file(state_dir: str | Path, service: str, instance: str) -> Path:
    """The bus's attempt ledger of one service instance (see ``stopline.shared.ledger``)."""
    return Path(state_dir) / "bus" / f"{service}-{instance}.sqlite"


def reason_label(reason: str) -> str:
    return next((label for prefix, label in REASONS.items() if reason.startswith(prefix)), "other")


class BusCollector(Collector):
    """Prometheus metrics of the given buses (read from their stats at scrape time)."""

    def __init__(self, buses) -> None:
        self._buses = buses  # a callable returning the buses to report

    def collect(self) -> Iterator[Metric]:
        labels = ["service", "instance"]
        healthy = GaugeMetricFamily("stopline_bus_healthy", "1 when connected and the consumer is not stalled",
                                    labels=labels)
        unhealthy = GaugeMetricFamily("stopline_bus_unhealthy", "1 with the reason the bus is unhealthy",
                                      labels=[*labels, "reason"])
        waiting = GaugeMetricFamily("stopline_bus_unacked_messages", "Messages received and not yet acknowledged",
                                    labels=labels)
        oldest = GaugeMetricFamily("stopline_bus_oldest_unacked_seconds", "Age of the oldest unacknowledged message",
                                   labels=labels)
        idle = GaugeMetricFamily("stopline_bus_seconds_since_progress",
                                 "Seconds since a message was last finished, while messages wait", labels=labels)
        outcomes = CounterMetricFamily("stopline_bus_messages", "Messages by outcome",
                                       labels=[*labels, "outcome"])
        retries = CounterMetricFamily("stopline_bus_retries", "Handler runs that ended in RetryLater",
                                      labels=labels)
        for bus in self._buses():
            ids = [bus.service, bus.instance]
            ok, why = bus.health()
            healthy.add_metric(ids, 1.0 if ok else 0.0)
            for label in sorted(set(REASONS.values())):
                unhealthy.add_metric([*ids, label], 1.0 if not ok and reason_label(why) == label else 0.0)
            n, oldest_s, idle_s = bus.backlog()
            waiting.add_metric(ids, n)
            oldest.add_metric(ids, oldest_s if n else 0.0)
            idle.add_metric(ids, idle_s if n else 0.0)
            st = bus.stats
            for outcome, value in (("handled", st.handled), ("duplicate", st.duplicates),
                                   ("dead_letter", st.dead_letters), ("poison", st.poison)):
                outcomes.add_metric([*ids, outcome], value)
            retries.add_metric(ids, st.retries)
        yield from (healthy, unhealthy, waiting, oldest, idle, outcomes, retries)


_LIVE: weakref.WeakSet[Bus] = weakref.WeakSet()
REGISTRY.register(BusCollector(lambda: list(_LIVE)))  # the desk's /metrics serves the default registry


class HealthWriter:
    """Writes ``bus.stats`` and ``bus.health()`` (plus extra fields from ``extra()``) every
    ``every_s`` seconds, sets the retained status to match, and writes the Prometheus file."""

    def __init__(self, state_dir: str | Path, bus: Bus, extra=None, every_s: float = 5.0):
        self.path = health_file(state_dir, bus.service, bus.instance)
        self.metrics_path = self.path.with_suffix(".prom")
        self.bus = bus
        self.extra = extra or (lambda: {})
        self.every_s = every_s
        self._registry = CollectorRegistry(auto_describe=True)
        self._registry.register(BusCollector(lambda: [bus]))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)

    def start(self) -> "HealthWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        _LIVE.add(self.bus)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        _LIVE.discard(self.bus)
        self.write(stopped=True)

    def write(self, stopped: bool = False) -> None:
        ok, reason = self.bus.health()
        waiting, oldest_s, idle_s = self.bus.backlog()
        data = {"service": self.bus.service, "instance": self.bus.instance, "pid": os.getpid(),
                "at": time.time(), **asdict(self.bus.stats), **self.extra(),
                "healthy": ok and not stopped, "reason": "stopped" if stopped else reason, "stopped": stopped,
                "unacked": waiting, "oldest_unacked_s": round(oldest_s, 1) if waiting else 0.0,
                "since_progress_s": round(idle_s, 1) if waiting else 0.0}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.path)
        write_to_textfile(str(self.metrics_path), self._registry)
        if not stopped:
            self.bus.announce(ONLINE if ok else f"unhealthy: {reason}"[:200].encode())

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.write()
            except OSError as e:  # a full disk must not end the health thread
                self.bus.announce(f"unhealthy: cannot write health file: {e}"[:200].encode())
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
        return False, f"{service} unhealthy: {data.get('reason') or 'not connected to the broker'}"
    return True, (f"{service} healthy (handled {data.get('handled', 0)}, published {data.get('published', 0)}, "
                  f"dead letters {data.get('dead_letters', 0)})")
