"""Evidence clips: the seconds around a violation as a short video with the offender's box drawn.

The pipeline keeps a ring of recent frames (``clip_fps``, ``clip_before_s`` long). A
crossing judged a violation starts a ``ClipJob`` with the ring's frames; the job takes the
frames that follow until ``clip_after_s`` after the crossing. A finished job is encoded on a
background thread (``ClipMaker``), so the frame loop never waits for the encoder and the
candidate, which leaves as soon as its stills are in, never waits for the clip. The clip is a
``ViolationClip`` message of its own, signed with the camera's key.

Codec: H.264 in MP4 (libx264 through PyAV) by default, or VP8 in WebM; see docs/evidence.md for
the choice and the measured size per second. The bit rate is capped so that a clip of the
configured length stays under ``clip_max_bytes``.
"""

from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from stopline.services.vehicle_detector.evidence import BufferedFrame
from stopline.shared.config import EvidenceConfig
from stopline.shared.messages import EvidenceClip, ViolationClip, sha256_hex

log = logging.getLogger(__name__)

XYXY = tuple[float, float, float, float]

# codec -> (FFmpeg encoder, container, MIME type, file extension, encoder options)
CODECS: dict[str, tuple[str, str, str, str, dict[str, str]]] = {
    # one encoder thread: a clip is a few seconds of video, and the cameras' frames come first
    "h264": ("libx264", "mp4", "video/mp4", "mp4", {"crf": "23", "profile": "main", "threads": "1"}),
    "vp8": ("libvpx", "webm", "video/webm", "webm",
            {"deadline": "realtime", "cpu-used": "8", "crf": "12", "threads": "1"}),
}
OFFENDER_BGR = (0, 0, 255)


class ClipRing:
    """The recent past at the clip's frame rate: one frame per ``1 / fps`` slot (the first frame
    within half a source frame of its slot), over the last ``span_s``. Frames wider than the
    clip (``max_width``) are kept at the clip's size, boxes scaled with them: a 1080p camera's
    ring would otherwise hold ~6 MB per frame for pixels the clip never shows."""

    def __init__(self, span_s: float, fps: float, source_fps: float, max_width: int | None = None):
        self.span_s, self.period, self.eps = span_s, 1.0 / fps, 0.5 / source_fps
        self.max_width = max_width
        self.frames: deque[BufferedFrame] = deque()
        self._due = float("-inf")

    def add(self, f: BufferedFrame) -> BufferedFrame | None:
        """Keep ``f`` if its slot has come; the frame as kept (maybe smaller), else None."""
        if f.t + self.eps < self._due:
            return None
        # slots on a fixed grid (no drift), re-anchored after a gap in the stream
        self._due = self._due + self.period if f.t - self._due < self.period else f.t + self.period
        kept = self._at_clip_size(f)
        self.frames.append(kept)
        while f.t - self.frames[0].t > self.span_s + self.eps:
            self.frames.popleft()
        return kept

    def _at_clip_size(self, f: BufferedFrame) -> BufferedFrame:
        h, w = f.image.shape[:2]
        if self.max_width is None or w <= self.max_width:
            return f
        k = self.max_width / w
        # INTER_AREA is 5x slower than bilinear at a non-integer ratio (1080p -> 720p: ~11 ms a
        # frame); below a halving bilinear loses nothing a clip shows
        method = cv2.INTER_LINEAR if k >= 0.5 else cv2.INTER_AREA
        image = cv2.resize(f.image, (_even(w * k), _even(h * k)), interpolation=method)
        sx, sy = image.shape[1] / w, image.shape[0] / h
        boxes = {tid: (b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy) for tid, b in f.boxes.items()}
        return replace(f, image=image, boxes=boxes)


@dataclass
class ClipJob:
    """One violation's clip while its frames come in."""

    track_id: int
    t_cross: float
    end_t: float
    frames: list[BufferedFrame]
    resolve: Callable[[int], int] = field(default=lambda tid: tid)  # the track's id now (ID switches)
    event_id: str | None = None  # set when the candidate leaves
    site: str = ""
    camera: str = ""
    crossed_at: float = 0.0
    cancelled: bool = False
    boxes: list[XYXY | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.boxes = [f.boxes.get(self.track_id) for f in self.frames]

    def offer(self, f: BufferedFrame) -> None:
        """A frame the ring kept after the crossing; taken up to ``end_t``."""
        if f.t <= self.end_t:
            self.frames.append(f)
            self.boxes.append(f.boxes.get(self.resolve(self.track_id)))

    def complete(self, t: float) -> bool:
        return t >= self.end_t


def _even(v: float) -> int:
    return max(2, int(v) // 2 * 2)


def _utc_ms(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def draw_frame(img: np.ndarray, box: XYXY | None, scale: float, label: str) -> np.ndarray:
    """A copy of ``img`` at ``scale`` with the offender's box and a time stamp."""
    h, w = img.shape[:2]
    out = cv2.resize(img, (_even(w * scale), _even(h * scale)), interpolation=cv2.INTER_AREA) \
        if scale != 1.0 or w % 2 or h % 2 else img.copy()
    sx, sy = out.shape[1] / w, out.shape[0] / h
    thick = max(2, out.shape[1] // 400)
    if box is not None:
        x1, y1, x2, y2 = int(box[0] * sx), int(box[1] * sy), int(box[2] * sx), int(box[3] * sy)
        cv2.rectangle(out, (x1, y1), (x2, y2), OFFENDER_BGR, thick)
        cv2.putText(out, "OFFENDER", (x1, max(14, y1 - 6)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * thick / 2 + 0.2,
                    OFFENDER_BGR, thick, cv2.LINE_AA)
    fs = max(0.45, out.shape[1] / 1800)
    (tw, th), _ = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
    cv2.rectangle(out, (0, 0), (tw + 12, th + 12), (0, 0, 0), -1)
    cv2.putText(out, label, (6, th + 6), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def encode_clip(frames: list[BufferedFrame], boxes: list[XYXY | None], config: EvidenceConfig) -> bytes:
    """The frames as a video (``config.clip_codec``), timed by their own clock, boxes drawn."""
    if not frames:
        raise ValueError("a clip needs at least one frame")
    encoder, container, _, _, options = CODECS[config.clip_codec]
    h, w = frames[0].image.shape[:2]
    scale = min(1.0, config.max_width / w)
    duration = max(frames[-1].t - frames[0].t, 0.0) + 1.0 / config.clip_fps
    # the cap: 90 % of the budget over the clip's length (the container's own bytes are the rest)
    rate = int(config.clip_max_bytes * 8 * 0.9 / max(duration, config.clip_before_s + config.clip_after_s, 1.0))
    # a temporary file, not memory: MP4's "faststart" (index first, so playback starts at once)
    # rewrites the file when it is closed
    with tempfile.TemporaryDirectory(prefix="stopline-clip-") as tmp:
        path = Path(tmp) / f"clip.{container}"
        preset = {"preset": config.clip_preset} if encoder == "libx264" else {}
        _write(path, frames, boxes, config, encoder, container,
               {**options, **preset, **_rate_options(encoder, rate)}, scale, rate)
        return path.read_bytes()


def _rate_options(encoder: str, rate: int) -> dict[str, str]:
    if encoder == "libx264":  # constant quality, capped by the VBV (one second of buffer)
        return {"maxrate": str(rate), "bufsize": str(rate)}
    return {"b": str(rate)}


def _write(path: Path, frames: list[BufferedFrame], boxes: list[XYXY | None], config: EvidenceConfig,
           encoder: str, container: str, opts: dict[str, str], scale: float, rate: int) -> None:
    import av  # PyAV: FFmpeg's encoders (libx264, libvpx) in-process

    h, w = frames[0].image.shape[:2]
    with av.open(str(path), "w", format=container,
                 options={"movflags": "+faststart"} if container == "mp4" else {}) as out:
        stream = out.add_stream(encoder, rate=Fraction(config.clip_fps).limit_denominator(1000), options=opts)
        stream.width, stream.height = _even(w * scale), _even(h * scale)
        stream.pix_fmt = "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        if encoder == "libvpx":
            stream.bit_rate = rate
        t0, last_pts = frames[0].t, -1
        for f, box in zip(frames, boxes):
            pts = max(last_pts + 1, int(round((f.t - t0) * 1000)))
            # OpenCV's BGR -> I420 (BT.601, video range, as FFmpeg's own) is 2.5x faster than the
            # encoder's conversion of a BGR frame: a sixth of the clip's CPU
            yuv = cv2.cvtColor(draw_frame(f.image, box, scale, _utc_ms(f.timestamp)), cv2.COLOR_BGR2YUV_I420)
            vf = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            vf.pts, vf.time_base, last_pts = pts, Fraction(1, 1000), pts
            for packet in stream.encode(vf):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def clip_message(job: ClipJob, data: bytes, config: EvidenceConfig, size: tuple[int, int]) -> ViolationClip:
    _, _, mime, ext, _ = CODECS[config.clip_codec]
    span = job.frames[-1].t - job.frames[0].t
    clip = EvidenceClip(
        event_id=job.event_id or "", site=job.site, camera=job.camera, name=f"clip.{ext}", content_type=mime,  # type: ignore[arg-type]
        codec=config.clip_codec, width=size[0], height=size[1],
        fps=round((len(job.frames) - 1) / span, 3) if span > 0 else config.clip_fps, frames=len(job.frames),
        start_at=job.frames[0].timestamp, end_at=job.frames[-1].timestamp, crossed_at=job.crossed_at,
        vehicle_boxes=sum(b is not None for b in job.boxes), sha256=sha256_hex(data))
    return ViolationClip(clip=clip)


CLIP_NICENESS = 10  # the encoder thread yields the cores to the cameras' frame loops


def lower_thread_priority(by: int) -> None:
    """Make the calling thread ``by`` nicer (Linux schedules threads apart: the rest of the process
    keeps its priority). Where threads cannot be reniced this does nothing."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + by))
    except (AttributeError, OSError) as e:
        log.debug("clip encoder keeps its priority: %s", e)


class ClipMaker:
    """Encodes finished clip jobs on one background thread; ``take`` collects what is done."""

    def __init__(self, config: EvidenceConfig, signer: Callable | None = None):
        self.config, self.signer = config, signer
        self._todo: queue.Queue[ClipJob | None] = queue.Queue()
        self._done: queue.Queue[tuple[ViolationClip, dict[str, bytes]]] = queue.Queue()
        self._busy = 0
        self._lock = threading.Condition()
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="clip-encoder", daemon=True)
        self._thread.start()

    def submit(self, job: ClipJob) -> None:
        with self._lock:
            self._busy += 1
        self._todo.put(job)

    def _run(self) -> None:
        lower_thread_priority(CLIP_NICENESS)
        while (job := self._todo.get()) is not None:
            try:
                data = encode_clip(job.frames, job.boxes, self.config)
                h, w = job.frames[0].image.shape[:2]
                scale = min(1.0, self.config.max_width / w)
                msg = clip_message(job, data, self.config, (_even(w * scale), _even(h * scale)))
                if self.signer is not None:
                    msg.clip = self.signer(msg.clip)
                self._done.put((msg, {msg.clip.name: data}))
            except Exception:  # a clip that cannot be made must not stop the camera
                self.failed += 1
                log.exception("evidence clip of %s could not be encoded", job.event_id)
            finally:
                with self._lock:
                    self._busy -= 1
                    self._lock.notify_all()

    def take(self) -> list[tuple[ViolationClip, dict[str, bytes]]]:
        out = []
        while True:
            try:
                out.append(self._done.get_nowait())
            except queue.Empty:
                return out

    def drain(self, timeout_s: float = 60.0) -> list[tuple[ViolationClip, dict[str, bytes]]]:
        """Wait until every submitted clip is encoded (or ``timeout_s``), then ``take``."""
        with self._lock:
            self._lock.wait_for(lambda: self._busy == 0, timeout_s)
        return self.take()

    def close(self) -> None:
        self._todo.put(None)
        self._thread.join(5)
