"""``stopline serve violation-desk``: the MQTT consumer (plate results in, status out), the
service-status watcher, the review web server and the hourly retention purge, in one process."""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
from pathlib import Path

import uvicorn
from sqlalchemy.exc import DBAPIError, OperationalError

from stopline.shared import topics
from stopline.shared.bus import Bus, BusClosed, RetryLater
from stopline.shared.config import ConfigError, SiteConfig
from stopline.shared.messages import Envelope, PlateResult, ViolationClip, ViolationStatus
from stopline.shared.service import running_bus

from . import metrics
from .desk import Desk
from .ingest import ingest_batch
from .retention import purge_rejected
from .status_watch import StatusWatcher
from .web.app import create_app
from .web.security import normalise_origins

log = logging.getLogger(__name__)

SERVICE = "violation-desk"
PURGE_EVERY_S = 3600.0


def secret_key(site: SiteConfig) -> str:
    """The configured session key, else one kept in ``<state_dir>/desk-secret.key`` (0600)."""
    configured = site.services.violation_desk.secret_key
    if configured:
        return configured
    path = Path(site.state_dir) / "desk-secret.key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


MAX_BATCH = 100


def make_handler(desk: Desk, bus: Bus):
    """Batch handler: everything waiting (up to MAX_BATCH) is ingested in one transaction."""

    def handle(items: list[tuple[Envelope, str]]) -> None:
        for env, topic in items:
            if not isinstance(env.message, PlateResult):
                raise ValueError(f"expected a plate_read message on {topic}, got {type(env.message).__name__}")
        start = time.perf_counter()
        try:
            outcomes = ingest_batch(desk, [(env.message, env.blobs) for env, _ in items])  # type: ignore[misc]
        except RetryLater:
            metrics.INGEST_RETRIES.inc()
            raise
        metrics.INGEST_SECONDS.observe(time.perf_counter() - start)
        metrics.INGEST_BATCH.observe(len(items))
        for outcome in outcomes:
            metrics.INGESTED.labels(outcome.status, outcome.integrity or "").inc()
            status = outcome.queued_as if outcome.created else "duplicate"
            bus.publish(topics.camera_topic(bus.site, outcome.camera, topics.STATUS),
                        ViolationStatus(event_id=outcome.event_id, camera=outcome.camera, status=status))

    return handle


def make_clip_handler(desk: Desk):
    """Evidence clips (they follow their violations on their own topic): filed by event id."""
    from .clips import ingest_clips

    def handle(items: list[tuple[Envelope, str]]) -> None:
        for env, topic in items:
            if not isinstance(env.message, ViolationClip):
                raise ValueError(f"expected a violation_clip message on {topic}, got {type(env.message).__name__}")
        try:
            ingest_clips(desk, [(env.message, env.blobs) for env, _ in items])  # type: ignore[misc]
        except (OperationalError, DBAPIError) as e:
            raise RetryLater(f"database unavailable: {e}") from e

    return handle


class StatusPublisher:
    """Publishes reviewers' decisions from the web threads without blocking them on the broker."""

    def __init__(self, bus: Bus):
        self.bus = bus
        self.queue: queue.Queue[ViolationStatus | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="desk-status-publisher", daemon=True)

    def __call__(self, msg: ViolationStatus) -> None:
        self.queue.put(msg)

    def _run(self) -> None:
        while (msg := self.queue.get()) is not None:
            try:
                self.bus.publish(topics.camera_topic(self.bus.site, msg.camera, topics.STATUS), msg)
            except BusClosed:
                return
            except Exception:
                log.exception("could not publish status of %s", msg.event_id)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.queue.put(None)
        self.thread.join(5)


def _purge_loop(desk: Desk, stop: threading.Event) -> None:
    while not stop.wait(PURGE_EVERY_S if desk.retention_days else 3600 * 24):
        if desk.retention_days:
            try:
                report = purge_rejected(desk, desk.retention_days)
                if report.violations:
                    log.info("retention: purged %d rejected violations, %d files", report.violations, report.files)
            except Exception:
                log.exception("retention purge failed; will try again")


def run(site: SiteConfig, stop: threading.Event) -> int:
    cfg = site.services.violation_desk
    try:
        trusted = normalise_origins(cfg.trusted_origins)
    except ValueError as e:
        raise ConfigError(f"services.violation_desk.trusted_origins: {e}") from None
    desk = Desk.from_site(site)
    desk.upgrade()
    app = create_app(desk, secret_key(site), cookie_secure=cfg.cookie_secure, trusted_origins=tuple(trusted))
    server = uvicorn.Server(uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level="warning",
                                           access_log=False))
    web = threading.Thread(target=server.run, name="desk-web", daemon=True)
    purger = threading.Thread(target=_purge_loop, args=(desk, stop), name="desk-retention", daemon=True)
    watcher = StatusWatcher(site, desk)

    def subscribe(bus: Bus) -> None:
        # no $share group: Debian's mosquitto 2.0.11 forgets shared subscriptions on restart, and
        # the desk runs as one consumer that batches (ingestion is idempotent either way)
        bus.subscribe_batch(topics.any_camera(site.site, topics.READ), make_handler(desk, bus),
                            max_batch=MAX_BATCH)
        bus.subscribe_batch(topics.any_camera(site.site, topics.CLIP), make_clip_handler(desk), max_batch=20)

    try:
        with running_bus(site, SERVICE, subscribe=subscribe) as bus:
            publisher = StatusPublisher(bus)
            desk.on_status(publisher)
            publisher.start()
            watcher.start()
            web.start()
            purger.start()
            log.info("violation desk: review app on http://%s:%d/, consuming %s", cfg.host, cfg.port,
                     topics.any_camera(site.site, topics.READ))
            try:
                while not stop.wait(1.0):
                    if not web.is_alive():
                        log.error("review web server stopped (port %d in use?)", cfg.port)
                        return 1
                return 0
            finally:
                server.should_exit = True
                publisher.stop()
                watcher.stop()
                web.join(10)
    finally:
        desk.close()
