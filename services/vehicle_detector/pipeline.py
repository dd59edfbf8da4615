"""The edge path for one camera: detect -> track -> signal -> rule -> evidence burst -> candidate.

``DetectorPipeline.process`` takes one decoded frame and returns the violation candidates that
became complete with it (a candidate waits for its ``inside`` frames, a fraction of a second
after the crossing). ``flush`` completes what is pending at the end of a stream.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from stopline.services.vehicle_detector.clip import ClipJob, ClipMaker, ClipRing
from stopline.services.vehicle_detector.evidence import (
    BufferedFrame, BurstEncoder, FrameRing, PendingBurst, roles_for)
from stopline.services.vehicle_detector.rules import Crossing, CrossingRule
from stopline.services.vehicle_detector.signal import MqttSignal, SignalProvider, make_signal
from stopline.shared.config import CameraConfig, VehicleDetectorConfig
from stopline.shared.messages import Candidate, ViolationCandidate, ViolationClip, new_event_id
from stopline.shared.records import ViolationRecord
from stopline.shared.vision.detections import MOTION_CLASS, Detections, box_inside, box_iou, class_label
from stopline.shared.vision.frame_guard import FrameGuard
from stopline.shared.vision.motion import MotionDetector, MotionGate
from stopline.shared.vision.safety_net import MotionSafetyNet
from stopline.shared.vision.tracking import Tracker

log = logging.getLogger(__name__)

XYXY = tuple[float, float, float, float]
Clock = Literal["video", "epoch"]


@dataclass
class _Event:
    crossing: Crossing
    frame_index: int
    video_time_s: float
    phase: str
    time_into_red: float
    vehicle_class: str
    burst: PendingBurst
    turn_watch: bool = False  # waiting to see whether it turns into an exempt zone
    amber_s: float | None = None  # the amber before this red, when measured
    clip: ClipJob | None = None


def build_detector(config: VehicleDetectorConfig, camera: CameraConfig, scale: tuple[float, float]):
    """The configured detector: ``detect(frame) -> Detections``."""
    if config.backend == "onnx":
        from stopline.models import vehicle_model
        from stopline.shared.vision.yolo import shared_detector

        # every camera of the process runs the same session (decode is per camera, inference is
        # not repeated per thread: one set of weights, one thread pool)
        return shared_detector(config.model or vehicle_model(), conf=config.floor)
    sx, sy = scale
    roi = [[(x * sx, y * sy) for x, y in ln.polygon] for ln in camera.lanes] or None
    return MotionDetector(roi_polygons=roi)


class DetectorPipeline:
    """One camera's detector. Not thread-safe: call ``process`` from one thread.

    ``clock``: "video" measures rule times (grace, speed, schedule) on the source's own time
    axis (files, the simulator); "epoch" uses wall-clock timestamps (live cameras, mqtt signal).
    """

    def __init__(self, camera: CameraConfig, detector: VehicleDetectorConfig, site: str, signer=None,
                 *, clock: Clock | None = None, frame_size: tuple[int, int] | None = None,
                 inside_step_s: float = 0.2, approach_step_s: float = 0.5, fps: float | None = None,
                 clips: bool = False):
        self.camera, self.config, self.site, self.signer = camera, detector, site, signer
        self.clock: Clock = clock or ("epoch" if camera.signal.mode == "mqtt" else "video")
        self.fps = fps or camera.fps or 25.0
        self.inside_step_s = inside_step_s
        self.approach_step_s = approach_step_s
        self.encoder = BurstEncoder(camera.evidence)
        self.ring = FrameRing(span_s=2 * approach_step_s + 0.6)
        # evidence clips (``clips=True``: the service; take them with ``take_clips``)
        ev = camera.evidence
        self.clip_ring = ClipRing(ev.clip_before_s, ev.clip_fps, self.fps, max_width=ev.max_width)
        self.clip_jobs: list[ClipJob] = []
        self.clip_maker = ClipMaker(ev, signer) if clips and ev.clip_codec != "none" else None
        self.pending: list[_Event] = []
        # track -> (t, box at the crossing, latest box, lane) of every judged crossing
        self.flagged: dict[int, tuple[float, XYXY, XYXY, str | None, float]] = {}  # + when last seen
        self._records: dict[str, ViolationRecord] = {}
        self.stats = {"frames": 0, "inferred": 0, "skipped_static": 0, "crossings": 0, "violations": 0,
                      "exempt": 0, "creeping": 0, "grace": 0, "not_red": 0, "retreated": 0,
                      "duplicate": 0}
        self._frame_size = frame_size
        self.guard = FrameGuard(camera.id, self.fps)
        if frame_size is not None:
            self.guard.size = self.guard.fit(frame_size)
        self._ready = False
        self._last_det = Detections.empty()
        self._gate = MotionGate() if detector.backend == "onnx" else None
        self.signal: SignalProvider
        # an ONNX model is opened now, so a bad model path fails at start-up, not at frame one
        self._onnx = build_detector(detector, camera, (1.0, 1.0)) if detector.backend == "onnx" else None
        if frame_size is not None:
            self._setup(self.guard.size)  # type: ignore[arg-type]

    # -- setup once the frame size is known (geometry may be drawn for another size)
    def _setup(self, frame_size: tuple[int, int]) -> None:
        self._frame_size = frame_size
        geo = self.camera.frame_size
        scale = (frame_size[0] / geo[0], frame_size[1] / geo[1]) if geo else (1.0, 1.0)
        self._scale = scale
        self.detector = self._onnx or build_detector(self.config, self.camera, scale)
        start = self.config.confidence  # a track starts from these; lower boxes only keep one going
        self.tracker = Tracker(self.fps / self.config.process_every, activation=start, high_conf=start)
        self.rule = CrossingRule(self.camera, scale, frame_size=frame_size)
        self._net = None
        if self._onnx is not None and self.config.safety_net:
            roi = [[(x * scale[0], y * scale[1]) for x, y in ln.polygon] for ln in self.camera.lanes] or None
            # the net's boxes must be able to start a track
            self._net = MotionSafetyNet(tuple(self.camera.travel_direction), roi_polygons=roi,  # type: ignore[arg-type]
                                        score=max(0.6, self.config.confidence))
        self._last_tracks, self._last_classes = {}, {}
        self._model_class: dict[int, str] = {}  # track -> the model's last class for it
        self._motion_tracks: set[int] = set()  # tracks held by the safety net in the last frame
        # a new size (the camera was reconfigured) starts over: new track ids, the gate's and the
        # signal heads' crops at the new size; a controller's phases (mqtt) carry on
        self.flagged.clear()
        self._last_det = Detections.empty()
        self._gate = MotionGate() if self._gate is not None else None
        if not getattr(self, "signal", None) or not isinstance(self.signal, MqttSignal):
            self.signal = make_signal(self.camera.signal, frame_size, geo)
        self._signal_boxes: dict[str, list[XYXY]] = {}
        self._ready = True

    def on_signal_phase(self, group: str, phase: str, controller_time: float) -> None:
        """Feed a controller's phase change (``signal.mode: mqtt``); thread-safe."""
        if not getattr(self, "signal", None):
            self.signal = make_signal(self.camera.signal)
        if not isinstance(self.signal, MqttSignal):
            raise ValueError(f"camera {self.camera.id}: signal mode is {self.camera.signal.mode!r}, not mqtt")
        self.signal.on_phase(group, phase, controller_time)

    def signal_boxes(self, group: str) -> list[XYXY]:
        if group not in self._signal_boxes:
            sx, sy = self._scale
            boxes = self.signal.head_boxes(group) if self.camera.signal.heads else []
            self._signal_boxes[group] = [(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy) for b in boxes]
        return self._signal_boxes[group]

    # -- per frame
    def _detect(self, frame: np.ndarray, t: float) -> Detections:
        if self._gate is not None and not self._gate.moving(frame):
            self.stats["skipped_static"] += 1
            return self._last_det  # nothing moved: last boxes still hold
        self.stats["inferred"] += 1
        det = self.detector.detect(frame)
        if self._net is not None:
            # boxes the tracker holds for the model explain blobs too (the model flickers)
            held = [b for tid, b in self._last_tracks.items() if tid not in self._motion_tracks]
            det = self._net.update(frame, t, det, held, min_score=self.config.confidence)
            self.stats["motion_boxes"] = self._net.stats["added"]  # boxes only the net saw
        self._last_det = det
        return det

    def _class_of(self, tid: int, label: str) -> str:
        """A track keeps the model's class while the safety net bridges it (``motion`` only for
        a vehicle the model never named)."""
        if label != MOTION_CLASS:
            self._model_class[tid] = label
            while len(self._model_class) > 1000:
                del self._model_class[next(iter(self._model_class))]
            return label
        self._motion_tracks.add(tid)
        return self._model_class.get(tid, label)

    def process(self, frame_bgr: np.ndarray, frame_index: int, timestamp: float,
                video_time_s: float) -> list[tuple[ViolationCandidate, dict[str, bytes]]]:
        # a 1x1 frame is skipped, an 8K one scaled down, one of another size scaled to the
        # stream's until the new size lasts (frame_guard.py): logged, never raised
        admitted, new_size = self.guard.admit(frame_bgr, frame_index)
        if admitted is None:
            return []
        frame_bgr = admitted
        if new_size is not None and (not self._ready or new_size != self._frame_size):
            self._setup(new_size)
        self.stats["frames"] += 1
        t = video_time_s if self.clock == "video" else timestamp
        self.signal.update(frame_bgr, t)

        tracks: dict[int, XYXY] = {}
        classes: dict[int, str] = {}
        if frame_index % self.config.process_every == 0:
            det = self._detect(frame_bgr, t)
            xyxy, ids, cls, _ = self.tracker.update(det, t)
            self._motion_tracks = set()
            for b, tid, c in zip(xyxy, ids, cls):
                tracks[int(tid)] = tuple(map(float, b))  # type: ignore[assignment]
                classes[int(tid)] = self._class_of(int(tid), class_label(int(c)))
            self._last_tracks, self._last_classes = tracks, classes
        else:
            tracks, classes = self._last_tracks, self._last_classes

        main_phase = self.signal.phase("main")
        bf = BufferedFrame(frame_index, t, timestamp, frame_bgr, tracks, main_phase)
        for ev in self.pending:
            ev.burst.offer(bf)
        for tid in self.flagged.keys() & tracks.keys():
            t0, at_cross, _, lane, _ = self.flagged[tid]
            self.flagged[tid] = (t0, at_cross, tracks[tid], lane, t)
        self._watch_turns(tracks, t)
        for tid in [k for k, v in self.flagged.items() if t - v[0] > 10.0]:  # bounded memory
            del self.flagged[tid]
        if frame_index % self.config.process_every == 0:
            for c in self.rule.update(t, tracks, self.tracker.earlier):
                self._judge(c, bf, classes.get(c.track_id, "car"), video_time_s)
            self.rule.forget(set(tracks), t)
        self.ring.add(bf)
        if self.clip_maker is not None:
            self._clip_frame(bf)
        return self._emit(force=False)

    # -- evidence clips
    def _clip_frame(self, bf: BufferedFrame) -> None:
        kept = self.clip_ring.add(bf)
        keep = []
        for job in self.clip_jobs:
            if kept is not None:
                job.offer(kept)
            if job.cancelled:
                continue
            if job.complete(bf.t) and job.event_id is not None:
                self.clip_maker.submit(job)  # type: ignore[union-attr]
            else:
                keep.append(job)
        self.clip_jobs = keep

    def _start_clip(self, c: Crossing, bf: BufferedFrame) -> ClipJob | None:
        if self.clip_maker is None:
            return None
        # the ring's frames before this one (this frame joins the job if the ring keeps it)
        job = ClipJob(c.track_id, c.t, c.t + self.camera.evidence.clip_after_s, list(self.clip_ring.frames),
                      resolve=self.rule.resolve)
        self.clip_jobs.append(job)
        return job

    def take_clips(self) -> list[tuple[ViolationClip, dict[str, bytes]]]:
        """Evidence clips encoded since the last call (never blocks)."""
        return self.clip_maker.take() if self.clip_maker is not None else []

    def finish_clips(self, timeout_s: float = 60.0) -> list[tuple[ViolationClip, dict[str, bytes]]]:
        """End of stream (after ``flush``): encode the clips of every candidate with the frames
        there are, wait for them, and stop the encoder."""
        if self.clip_maker is None:
            return []
        for job in self.clip_jobs:
            if job.event_id is not None and not job.cancelled:
                self.clip_maker.submit(job)
        self.clip_jobs = []
        out = self.clip_maker.drain(timeout_s)
        self.clip_maker.close()
        self.clip_maker = None
        return out

    def _judge(self, c: Crossing, bf: BufferedFrame, vclass: str, video_time_s: float) -> None:
        self.stats["crossings"] += 1
        if self._duplicate(c, set(bf.boxes), vclass):
            self.stats["duplicate"] += 1
            return
        # every judged crossing is remembered, whatever the verdict: a fragment of this vehicle
        # crossing a moment later is the same vehicle
        self.flagged[c.track_id] = (c.t, c.box, c.box, c.lane, bf.t)
        rules = self.camera.rules
        phase = self.signal.phase(c.group)
        red_phases = ("red", "amber") if rules.amber_is_violation else ("red",)
        if phase not in red_phases:
            self.stats["not_red"] += 1
            return
        since = self.signal.red_since(c.group) if phase == "red" else c.t
        amber = self.signal.amber_before_red(c.group) if phase == "red" else None
        into = max(0.0, c.t - since) if since is not None and np.isfinite(since) else 0.0
        if since is not None and not np.isfinite(since):
            into = float("inf")
        if phase == "red" and into < rules.grace_s:
            self.stats["grace"] += 1
            return
        if c.speed_px_s < rules.min_speed_px_s:
            self.stats["creeping"] += 1
            return
        if c.growing:
            self.stats["growing"] = self.stats.get("growing", 0) + 1
            return
        if c.exempt:
            self.stats["exempt"] += 1
            return
        n_app, n_in = roles_for(self.camera.evidence.burst_size)
        approach = []
        for k in range(n_app, 0, -1):
            f = self.ring.nearest(c.t - k * self.approach_step_s, before=bf.t)
            if f is not None and all(f is not a for a in approach):
                approach.append(f)
        burst = PendingBurst(c.track_id, c.t, approach, bf,
                             [bf.t + (k + 1) * self.inside_step_s for k in range(n_in)])
        self.pending.append(_Event(c, bf.index, video_time_s, phase,
                                   into if np.isfinite(into) else 3600.0, vclass, burst,
                                   turn_watch=self.rule.needs_turn_watch(c), amber_s=amber,
                                   clip=self._start_clip(c, bf)))

    def _watch_turns(self, tracks: dict[int, XYXY], t: float) -> None:
        keep = []
        for ev in self.pending:
            tid = self.rule.resolve(ev.crossing.track_id)
            box = tracks.get(tid)
            if self.rule.retreated(ev.crossing, box):
                self.stats["retreated"] += 1
                _cancel(ev)
                self.flagged.pop(ev.crossing.track_id, None)
                self.rule.rearm(tid)
                continue
            if ev.turn_watch:
                status = self.rule.turn_status(ev.crossing, box, t)
                if status == "exempt":
                    self.stats["exempt"] += 1
                    _cancel(ev)
                    continue
                ev.turn_watch = status is None
            keep.append(ev)
        self.pending = keep

    def _duplicate(self, c: Crossing, tracks_alive: set[int], vclass: str = "car") -> bool:
        """A vehicle whose crossing was already judged, again: the same one under a new track id
        (ID switch), a fragment of it (motion splits dark or uniform bodies, night-time most of
        all), or a blob that swallowed it (two cars merged; that track is re-armed so the vehicle
        behind still counts when it crosses on its own). A motorcycle the model named, beside a
        judged vehicle still tracked in this frame, is its own vehicle: motorcycles ride two or
        three abreast in one lane and beside cars."""
        for tid, (t0, at_cross, latest, lane, seen) in self.flagged.items():
            if tid == c.track_id or c.t - t0 > 3.0:
                continue
            # the box at its crossing only matters just after it: the next car in the lane
            # crosses at the same place; its latest box only while it is still seen, or was a
            # moment ago (a big vehicle's last box near the camera covers half the frame, and the
            # next vehicle through it is not that one)
            boxes = (at_cross, latest) if c.t - t0 < 0.5 else (latest,) if c.t - seen <= 1.0 else ()
            same = any(box_iou(b, c.box) > 0.3 or box_inside(b, c.box) > 0.5 or box_inside(c.box, b) > 0.6 for b in boxes)
            # a fragment right beside it in the same lane, within a second and a half
            size = max(latest[2] - latest[0], latest[3] - latest[1], c.box[2] - c.box[0], c.box[3] - c.box[1])
            beside = c.t - t0 < 1.5 and c.lane == lane and _gap(latest, c.box) < 0.5 * size
            # vehicles in one lane cross its line in single file, never within 0.2 s of each other
            # (at night the two headlights of one car are often two blobs far apart)
            together = lane is not None and c.lane == lane and c.t - t0 < 0.2
            if vclass == "motorcycle" and tid in tracks_alive:
                beside = together = False
            if same or beside or together:
                self.rule.rearm(c.track_id)
                if tid not in tracks_alive:  # the judged vehicle goes on under this id
                    self.rule.successor[tid] = c.track_id
                return True
        return False

    def _emit(self, force: bool) -> list[tuple[ViolationCandidate, dict[str, bytes]]]:
        out = []
        keep = []
        for ev in self.pending:
            if ev.turn_watch and force:
                # the stream ended before we could tell a right turn on red from a straight run:
                # benefit of the doubt (a wrong fine is worse than a missed one)
                self.stats["undecided_turns"] = self.stats.get("undecided_turns", 0) + 1
                _cancel(ev)
            elif (ev.burst.complete and not ev.turn_watch) or force:
                out.append(self._candidate(ev))
            else:
                keep.append(ev)
        self.pending = keep
        return out

    def _candidate(self, ev: _Event) -> tuple[ViolationCandidate, dict[str, bytes]]:
        c, burst = ev.crossing, ev.burst
        images, blobs = self.encoder.encode(burst, self.signal_boxes(c.group))
        decided = burst.inside[-1] if burst.inside else burst.crossing
        cand = Candidate(
            event_id=new_event_id(), site=self.site, camera=self.camera.id, track_id=c.track_id,
            vehicle_class=ev.vehicle_class, vehicle_colour=_colour_name(burst.crossing.image, c.box),
            crossed_at=burst.crossing.timestamp - (burst.crossing.t - c.t),
            detected_at=decided.timestamp if self.clock == "video" else time.time(),
            frame_index=ev.frame_index, video_time_s=ev.video_time_s, signal_phase=ev.phase,  # type: ignore[arg-type]
            time_into_red_s=round(ev.time_into_red, 3), speed_px_s=round(c.speed_px_s, 1), lane=c.lane,
            evidence=images, amber_s=None if ev.amber_s is None else round(ev.amber_s, 3),
            stop_line=self._evidence_stop_line(burst.crossing.image.shape[1]),
            not_enforceable=self._not_enforceable(ev))
        if self.signer is not None:
            cand = self.signer(cand)
        if ev.clip is not None:
            ev.clip.event_id, ev.clip.site, ev.clip.camera = cand.event_id, cand.site, cand.camera
            ev.clip.crossed_at = cand.crossed_at
        self.stats["violations"] += 1
        decided_video = ev.video_time_s + (decided.t - burst.crossing.t)
        while len(self._records) >= 1000:  # a long-running service never asks for old ones
            del self._records[next(iter(self._records))]
        self._records[cand.event_id] = ViolationRecord(
            event_id=cand.event_id, camera=self.camera.id, track_id=c.track_id,
            vehicle_class=ev.vehicle_class, frame_index=ev.frame_index, video_time_s=ev.video_time_s,
            box=c.box, decided_video_s=decided_video, signal_phase=ev.phase,
            time_into_red_s=cand.time_into_red_s, evidence=list(blobs))
        return ViolationCandidate(candidate=cand), blobs

    def _evidence_stop_line(self, frame_width: int) -> list[tuple[float, float]]:
        """The stop line in the pixels of the evidence images (geometry scale, then the burst's)."""
        sx, sy = self._scale
        k = min(1.0, self.camera.evidence.max_width / frame_width)
        return [(round(x * sx * k, 1), round(y * sy * k, 1)) for x, y in self.camera.stop_line]

    def _not_enforceable(self, ev: _Event) -> str | None:
        """An amber shorter than ``rules.min_amber_s`` (or one not measured) makes a red-light
        violation unenforceable: a short amber is the signal's fault, not the driver's."""
        minimum = self.camera.rules.min_amber_s
        if minimum is None or ev.phase != "red":
            return None
        if ev.amber_s is None:
            return f"amber duration not measured (minimum {minimum:.1f} s)"
        if ev.amber_s < minimum:
            return f"amber {ev.amber_s:.2f} s shorter than the minimum {minimum:.1f} s"
        return None

    def flush(self) -> list[tuple[ViolationCandidate, dict[str, bytes]]]:
        """End of stream: finish pending bursts with the frames there are."""
        return self._emit(force=True)

    def record(self, event_id: str) -> ViolationRecord:
        """The ``violations.jsonl`` line for a candidate this pipeline produced."""
        return self._records[event_id]


def _cancel(ev: _Event) -> None:
    if ev.clip is not None:
        ev.clip.cancelled = True


def _gap(a: XYXY, b: XYXY) -> float:
    """Distance between two boxes (0 when they touch or overlap)."""
    return max(0.0, max(a[0], b[0]) - min(a[2], b[2]), max(a[1], b[1]) - min(a[3], b[3]))


_COLOURS = (("red", 0), ("orange", 15), ("yellow", 30), ("green", 60), ("blue", 110), ("purple", 140), ("red", 180))


def _colour_name(image: np.ndarray, box: XYXY) -> str | None:
    """Rough body colour from the middle of the box (white/grey/black when unsaturated)."""
    x1, y1, x2, y2 = (int(v) for v in box)
    w, h = x2 - x1, y2 - y1
    roi = image[max(0, y1 + h // 4):max(0, y2 - h // 4), max(0, x1 + w // 4):max(0, x2 - w // 4)]
    if roi.size == 0:
        return None
    hsv = cv2.cvtColor(roi, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.float32)
    s, v = np.median(hsv[:, 1]), np.median(hsv[:, 2])
    if s < 50:
        return "white" if v > 170 else "black" if v < 60 else "grey"
    hue = float(np.median(hsv[hsv[:, 1] >= 50, 0]))
    return min(_COLOURS, key=lambda c: abs(c[1] - hue))[0]
