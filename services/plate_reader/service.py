"""``stopline serve plate-reader``: plate images in, plate reads out (gateway).

Replicas share the work through the ``$share/plate-reader/...`` subscription."""

from __future__ import annotations

import threading

from stopline.shared import topics
from stopline.shared.bus import Bus
from stopline.shared.config import SiteConfig
from stopline.shared.messages import Envelope, PlateCandidates
from stopline.shared.plates import PlateReader
from stopline.shared.service import running_bus
from stopline.shared.plates.reading import read_plates

SERVICE = "plate-reader"


def run(site: SiteConfig, stop: threading.Event) -> int:
    config = site.services.plate_reader
    reader = PlateReader(engine=config.engine, model=config.model, threads=config.threads)
    regions = {cam.id: cam.region for cam in site.cameras}

    def subscribe(bus: Bus) -> None:
        def handle(env: Envelope, topic: str) -> None:
            if not isinstance(env.message, PlateCandidates):
                raise ValueError(f"expected plate candidates, got {env.message.schema_}")
            cam = env.message.candidate.camera
            out, blobs = read_plates(env.message, env.blobs, reader, regions.get(cam, "auto"))
            bus.publish(topics.camera_topic(site.site, cam, topics.READ), out, blobs)

        bus.subscribe(topics.any_camera(site.site, topics.PLATES), handle, group=SERVICE)

    with running_bus(site, SERVICE, subscribe=subscribe):
        stop.wait()
    return 0
