"""Process lifecycle shared by the services: signals, logging, the bus and its health file."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from stopline.shared.bus import Bus, default_instance
from stopline.shared.config import SiteConfig
from stopline.shared.deadletters import store_dir
from stopline.shared.health import HealthWriter, ledger_file

log = logging.getLogger(__name__)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: services finish in-flight work and leave."""
    stop = threading.Event()

    def _handler(signum, frame):
        log.info("received %s; shutting down", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, _handler)
    signal.signal(signal.SIGINT, _handler)
    return stop


@contextmanager
def running_bus(site: SiteConfig, service: str, instance: str | None = None,
                extra_health: Callable[[], dict] | None = None,
                subscribe: Callable[[Bus], None] | None = None) -> Iterator[Bus]:
    """A started bus with its health file and its attempt ledger (``state_dir/bus/``); stopped
    (offline status published) on exit."""
    instance = instance or default_instance()
    bus = Bus(site, service, instance, ledger=ledger_file(site.state_dir, service, instance),
              deadletters=store_dir(site.state_dir, service))
    if subscribe is not None:
        subscribe(bus)
    bus.start(wait_s=10)
    health = HealthWriter(site.state_dir, bus, extra_health).start()
    try:
        yield bus
    finally:
        bus.stop()
        health.stop()
