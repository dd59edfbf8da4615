"""``stopline serve vehicle-detector``: every configured camera -> candidates on the bus.

Per camera a worker thread reads the source (decoding on its own thread, dropping frames when
behind for live input or real-time files), runs the pipeline and puts each candidate into the
durable outbox *before* it is published; the outbox sender publishes and deletes rows once the
broker acknowledged them, and resends whatever is left after a crash or outage.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from stopline.services.vehicle_detector.pipeline import DetectorPipeline
from stopline.shared import topics
from stopline.shared.bus import Bus
from stopline.shared.config import CameraConfig, ConfigError, SiteConfig, VehicleDetectorConfig
from stopline.shared.messages import Envelope, SignalPhase, encode
from stopline.shared.outbox import Outbox, OutboxSender
from stopline.shared.service import running_bus
from stopline.shared.signing import SigningError, load_private_key, sign_candidate
from stopline.shared.vision.sources import SourceError, ThreadedSource, open_source, source_kind
from stopline.shared.vision.yolo import ModelError

log = logging.getLogger(__name__)

SERVICE = "vehicle-detector"


def make_signer(camera: CameraConfig, base: Path):
    """``candidate -> signed candidate`` for a camera with a key, else None."""
    if not camera.evidence.signing_key:
        return None
    path = Path(camera.evidence.signing_key)
    path = path if path.is_absolute() else base / path
    try:
        key = load_private_key(path)
    except SigningError as e:
        raise ConfigError(f"camera {camera.id}: {e}") from None
    return lambda cand: sign_candidate(cand, key)


class CameraWorker:
    def __init__(self, site: SiteConfig, camera: CameraConfig, config: VehicleDetectorConfig,
                 outbox: Outbox, stop: threading.Event):
        if not camera.source:
            raise ConfigError(f"camera {camera.id}: no source configured")
        self.site, self.camera, self.config, self.outbox, self.stop = site, camera, config, outbox, stop
        try:
            inner = open_source(camera.source, loop=camera.loop, realtime=config.realtime, fps=camera.fps,
                                reconnect_min_s=site.mqtt.reconnect_min_s, reconnect_max_s=site.mqtt.reconnect_max_s)
        except SourceError as e:
            raise ConfigError(f"camera {camera.id}: {e}") from None
        live = source_kind(camera.source) in ("stream", "device")
        try:
            self.pipeline = DetectorPipeline(
                camera, config, site.site, make_signer(camera, Path(site.state_dir)),
                clock="epoch" if live or camera.signal.mode == "mqtt" else "video",
                fps=inner.fps or camera.fps, clips=True)
        except ModelError as e:
            raise ConfigError(f"camera {camera.id}: {e}") from None
        # a burst of work (a crossing's evidence on this or another camera) is absorbed, not
        # dropped: 2 frames (133 ms at 15 frames/s) dropped frames with a core to spare, 0.5 s
        # dropped one frame in 2 minutes of four independent 1080p cameras, 1 s none
        fps = inner.fps or camera.fps or 25.0
        self.source = ThreadedSource(inner, buffer=max(2, round(fps * config.frame_buffer_s)))  # starts decoding
        self.topic = topics.camera_topic(site.site, camera.id, topics.CANDIDATE)
        self.clip_topic = topics.camera_topic(site.site, camera.id, topics.CLIP)
        self.published = 0
        self.clips = 0
        self.video_time_s = 0.0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name=f"camera-{camera.id}", daemon=True)

    def on_phase(self, env: Envelope, topic: str) -> None:
        msg = env.message
        if not isinstance(msg, SignalPhase):
            raise ValueError(f"expected a signal phase on {topic}, got {type(msg).__name__}")
        self.pipeline.on_signal_phase(msg.group, msg.phase, msg.at)

    def _put(self, results) -> None:
        for vc, blobs in results:
            self.outbox.put(self.topic, encode(vc, blobs))
            self.published += 1
            log.info("camera %s: violation %s (track %d, %.2fs into red)", self.camera.id,
                     vc.event_id, vc.candidate.track_id, vc.candidate.time_into_red_s)

    def _put_clips(self, clips) -> None:
        for msg, blobs in clips:  # after their candidates: a clip is cut once its last frame is in
            self.outbox.put(self.clip_topic, encode(msg, blobs))
            self.clips += 1

    def _run(self) -> None:
        try:
            for f in self.source:
                if self.stop.is_set():
                    break
                self._put(self.pipeline.process(f.image, f.index, f.timestamp, f.video_time_s))
                self._put_clips(self.pipeline.take_clips())
                self.video_time_s = f.video_time_s or 0.0
            self._put(self.pipeline.flush())
            self._put_clips(self.pipeline.finish_clips())
        except BaseException as e:  # reported by run()
            self.error = e
            log.exception("camera %s: worker failed", self.camera.id)
        finally:
            self.source.close()

    @property
    def finished(self) -> bool:
        """The source ended (a file without loop) and everything it produced is in the outbox."""
        return self.thread.ident is not None and not self.thread.is_alive()

    def health(self) -> dict[str, Any]:
        return {"camera": self.camera.id, "candidates": self.published, "clips": self.clips, "finished": self.finished,
                "video_time_s": round(self.video_time_s, 2), **self.source.stats.as_dict(),
                **{k: v for k, v in self.pipeline.stats.items() if k in ("frames", "inferred", "violations")}}


def run(site: SiteConfig, stop: threading.Event) -> int:
    config = site.services.vehicle_detector
    if not site.cameras:
        raise ConfigError("vehicle-detector: the site has no cameras")
    outbox_path = Path(config.outbox)
    outbox = Outbox(outbox_path if outbox_path.is_absolute() else Path(site.state_dir) / outbox_path)
    workers: list[CameraWorker] = []
    try:
        for cam in site.cameras:
            workers.append(CameraWorker(site, cam, config, outbox, stop))
    except BaseException:
        for w in workers:
            w.source.close()
        outbox.close()
        raise

    def subscribe(bus: Bus) -> None:
        for w in workers:
            if w.camera.signal.mode == "mqtt":
                topic = w.camera.signal.mqtt_topic or topics.camera_topic(site.site, w.camera.id, topics.SIGNAL)
                bus.subscribe(topic, w.on_phase)  # every detector needs every phase: no group

    def health() -> dict[str, Any]:
        cams = [w.health() for w in workers]
        return {"cameras": cams, "outbox": len(outbox), "candidates": sum(c["candidates"] for c in cams),
                "finished": all(c["finished"] for c in cams),
                "video_time_s": min(c["video_time_s"] for c in cams),
                "dropped_frames": sum(c["dropped"] for c in cams)}

    with running_bus(site, SERVICE, extra_health=health, subscribe=subscribe) as bus:
        sender = OutboxSender(outbox, bus).start()
        for w in workers:
            w.thread.start()
        # A finite file without loop ends by itself; the service stays up until stopped.
        while not stop.wait(0.5):
            pass
        for w in workers:
            w.source.close()
        for w in workers:
            w.thread.join(timeout=10)
        sender.stop(drain_s=10)
    outbox.close()
    failed = [w for w in workers if w.error is not None]
    return 1 if failed else 0
