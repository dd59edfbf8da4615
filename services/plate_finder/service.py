"""``stopline serve plate-finder``: candidates in, chosen plate images out (edge)."""

from __future__ import annotations

import threading

from stopline.shared import topics
from stopline.shared.bus import Bus
from stopline.shared.config import PlateFinderConfig, SiteConfig
from stopline.shared.messages import Envelope, ViolationCandidate
from stopline.shared.plates import FirstFound, PlateFinder, TextDetLocaliser, YoloLocaliser
from stopline.shared.service import running_bus
from stopline.shared.plates.choose import choose_plates

SERVICE = "plate-finder"


def build_finder(config: PlateFinderConfig) -> PlateFinder:
    """The configured localiser; a bad model path fails here, at start-up."""
    if config.localiser == "textdet":
        return PlateFinder("textdet")
    from stopline.models import plate_model

    return PlateFinder(FirstFound(YoloLocaliser(config.model or plate_model()), TextDetLocaliser()))


def run(site: SiteConfig, stop: threading.Event) -> int:
    config = site.services.plate_finder
    finder = build_finder(config)
    cameras = {cam.id: cam for cam in site.cameras}  # their ignore_zones: overlay text is no plate

    def subscribe(bus: Bus) -> None:
        def handle(env: Envelope, topic: str) -> None:
            if not isinstance(env.message, ViolationCandidate):
                raise ValueError(f"expected a violation candidate, got {env.message.schema_}")
            cam = env.message.candidate.camera
            out, blobs = choose_plates(env.message, env.blobs, config, finder, cameras.get(cam))
            bus.publish(topics.camera_topic(site.site, cam, topics.PLATES), out, blobs)

        bus.subscribe(topics.any_camera(site.site, topics.CANDIDATE), handle, group=SERVICE)

    with running_bus(site, SERVICE, subscribe=subscribe):
        stop.wait()
    return 0
