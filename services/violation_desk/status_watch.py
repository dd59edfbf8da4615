"""Keeps the ``service_status`` table in step with the retained online/offline messages on
``stopline/<site>/status/<service>/<instance>`` (a plain, non-shared subscription: retained
messages are not delivered to shared subscriptions, and these payloads are not envelopes)."""

from __future__ import annotations

import logging
import ssl
import time
import uuid

import paho.mqtt.client as mqtt

from stopline.shared import topics
from stopline.shared.config import SiteConfig

from .desk import Desk
from .models import ServiceStatus

log = logging.getLogger(__name__)


def record_status(desk: Desk, topic: str, payload: bytes, at: float | None = None) -> bool:
    """Store one status message; False when the topic or payload is not a service status."""
    parts = topic.split("/")
    if len(parts) != 5 or parts[0] != topics.ROOT or parts[2] != "status":
        return False
    state = payload.decode("utf-8", "replace").strip().lower()
    if state.startswith("unhealthy:"):  # "unhealthy: <why>" (stopline.shared.health)
        state = "unhealthy"
    if state not in ("online", "offline", "unhealthy"):
        return False
    with desk.session() as s, s.begin():
        s.merge(ServiceStatus(service=parts[3][:64], instance=parts[4][:128], state=state,
                              updated_at=time.time() if at is None else at))
    return True


class StatusWatcher:
    def __init__(self, site: SiteConfig, desk: Desk):
        self.site, self.desk = site, desk
        cfg = site.mqtt
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"stopline-{site.site}-desk-status-{uuid.uuid4().hex[:8]}",
                                  clean_session=True)
        if cfg.username:
            self.client.username_pw_set(cfg.username, cfg.password)
        if cfg.tls is not None:
            self.client.tls_set(ca_certs=cfg.tls.ca_file, certfile=cfg.tls.cert_file, keyfile=cfg.tls.key_file,
                                cert_reqs=ssl.CERT_REQUIRED)
            self.client.tls_insecure_set(cfg.tls.insecure)
        self.client.reconnect_delay_set(1, max(1, int(cfg.reconnect_max_s)))
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message

    def _on_connect(self, client, userdata, flags, reason_code, properties=None) -> None:
        if not reason_code.is_failure:
            client.subscribe(topics.all_service_status(self.site.site), qos=1)

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        try:
            record_status(self.desk, msg.topic, bytes(msg.payload))
        except Exception:  # database away: the next retained message or reconnect refreshes it
            log.exception("could not record service status from %s", msg.topic)

    def start(self) -> None:
        self.client.connect_async(self.site.mqtt.host, self.site.mqtt.port, keepalive=self.site.mqtt.keepalive_s)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
