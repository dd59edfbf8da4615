"""Frame sources: video files (optionally looped), RTSP/HTTP streams, USB cameras, image folders.

Every source yields :class:`Frame` objects. :class:`ThreadedSource` decodes on its own thread
and, for live input, keeps only the newest frames: when the consumer falls behind, older frames
are dropped (and counted) rather than building up lag. Streams reconnect with exponential
backoff when they drop or stall; an undecodable frame is skipped and counted.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


class SourceError(Exception):
    """A source that cannot be opened at all (missing file, bad spec); the text says which."""


@dataclass
class Frame:
    image: np.ndarray  # BGR uint8
    index: int  # frame number in the source (gaps where frames were dropped or corrupt)
    timestamp: float  # epoch seconds of capture (stream time where the stream has it)
    video_time_s: float  # seconds since the start of the source


@dataclass
class SourceStats:
    decoded: int = 0
    dropped: int = 0  # decoded but discarded because the consumer was behind
    corrupt: int = 0  # undecodable or malformed frames, skipped
    reconnects: int = 0
    loops: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"decoded": self.decoded, "dropped": self.dropped, "corrupt": self.corrupt,
                "reconnects": self.reconnects, "loops": self.loops}


def source_kind(spec: str) -> str:
    """``stream``, ``device``, ``folder`` or ``file`` for a source string."""
    if "://" in spec:
        return "stream"
    if spec.isdigit():
        return "device"
    if os.path.isdir(spec):
        return "folder"
    return "file"


class FrameSource:
    """Base: iterate to get frames; ``close()`` stops; ``stats`` counts what happened."""

    fps: float | None = None
    frame_size: tuple[int, int] | None = None  # (width, height)
    live: bool = False  # frames arrive in real time (drop rather than lag)

    def __init__(self) -> None:
        self.stats = SourceStats()
        self._closed = threading.Event()

    def frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        self._closed.set()

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _valid(image: np.ndarray | None, size: tuple[int, int] | None) -> bool:
    if image is None or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        return False
    return size is None or (image.shape[1], image.shape[0]) == size


def _fourcc(cap: cv2.VideoCapture) -> str:
    code = int(cap.get(cv2.CAP_PROP_FOURCC))
    return code.to_bytes(4, "little").decode("ascii", "replace")


def decode_jpeg_packet(packet: np.ndarray | None) -> np.ndarray | None:
    """A whole JPEG (start and end-of-image markers present) decoded, else None (corrupt)."""
    if packet is None or packet.size < 4:
        return None
    data = packet.reshape(-1)
    end = len(data)
    while end > 2 and data[end - 1] == 0:  # some cameras pad parts with zeros
        end -= 1
    if data[0] != 0xFF or data[1] != 0xD8 or data[end - 2] != 0xFF or data[end - 1] != 0xD9:
        return None
    return cv2.imdecode(data[:end], cv2.IMREAD_COLOR)


class VideoSource(FrameSource):
    """A file, stream URL or camera index through OpenCV (FFmpeg backend for files/streams).

    Files: ``loop`` restarts at the end; ``realtime`` paces frames at the file's fps. A read
    failure before the file's known frame count is a corrupt frame (skipped, counted); more than
    ``max_corrupt_run`` in a row ends the file. Streams and devices: a failed or stalled read
    closes the capture and reopens it with exponential backoff, until ``close()``.
    """

    def __init__(self, spec: str, *, loop: bool = False, realtime: bool = False,
                 reconnect_min_s: float = 0.5, reconnect_max_s: float = 30.0,
                 read_timeout_s: float = 5.0, max_corrupt_run: int = 25,
                 max_reconnects: int | None = None):
        super().__init__()
        self.spec = spec
        self.kind = source_kind(spec)
        if self.kind == "folder":
            raise SourceError(f"{spec}: is a folder; use FolderSource")
        if self.kind == "file" and not os.path.isfile(spec):
            raise SourceError(f"{spec}: no such video file")
        self.loop = loop
        self.realtime = realtime
        self.live = self.kind in ("stream", "device")
        self.reconnect_min_s = reconnect_min_s
        self.reconnect_max_s = reconnect_max_s
        self.read_timeout_s = read_timeout_s
        self.max_corrupt_run = max_corrupt_run
        self.max_reconnects = max_reconnects
        self._cap: cv2.VideoCapture | None = None
        self._frame_count = 0
        self._raw_jpeg = False
        if self.kind == "file":
            self._cap = self._open()
            if self._cap is None:
                raise SourceError(f"{spec}: cannot be decoded as video")

    def _open(self) -> cv2.VideoCapture | None:
        if self.kind == "device":
            cap = cv2.VideoCapture(int(self.spec))
        else:
            ms = int(self.read_timeout_s * 1000)
            params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            cap = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            cap.release()
            return None
        # MJPEG streams: take the raw JPEG of each frame and decode it here. FFmpeg's decoder turns
        # a truncated JPEG into a half-grey frame and reports success; we can see the cut.
        self._raw_jpeg = (self.kind == "stream" and _fourcc(cap) == "MJPG"
                          and cap.set(cv2.CAP_PROP_FORMAT, -1))
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else self.fps
        w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        self.frame_size = (w, h) if w > 0 and h > 0 else self.frame_size
        self._frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if self.kind == "file" else 0
        return cap

    def _reopen_with_backoff(self) -> cv2.VideoCapture | None:
        delay = self.reconnect_min_s
        attempts = 0
        while not self._closed.is_set():
            if self.max_reconnects is not None and attempts >= self.max_reconnects:
                return None
            attempts += 1
            cap = self._open()
            if cap is not None:
                self.stats.reconnects += 1
                log.info("%s: reconnected (attempt %d)", self.spec, attempts)
                return cap
            log.warning("%s: cannot open, retrying in %.1fs", self.spec, delay)
            self._closed.wait(delay)
            delay = min(delay * 2, self.reconnect_max_s)
        return None

    def frames(self) -> Iterator[Frame]:
        if self._cap is None:
            self._cap = self._open() if self.kind != "file" else None
            if self._cap is None and self.kind != "file":
                self._cap = self._reopen_with_backoff()
                self.stats.reconnects = max(0, self.stats.reconnects - 1)  # first open is no reconnect
        index = 0  # frames since start, across loops / reconnects
        pos = 0  # position within the current file pass
        t0_wall = time.time()
        t0_mono = time.monotonic()
        time_base = 0.0  # video time at the start of the current loop / connection
        corrupt_run = 0
        stream_t0: float | None = None
        last_ts = 0.0
        while not self._closed.is_set() and self._cap is not None:
            ok, image = self._cap.read()
            if ok and self._raw_jpeg:
                image = decode_jpeg_packet(image)
            if ok and _valid(image, None):
                corrupt_run = 0
                self.stats.decoded += 1
                fps = self.fps or 25.0
                if self.kind == "file":
                    vt = time_base + pos / fps
                    ts = t0_wall + vt
                else:
                    # Stream time where the stream carries it (RTSP/RTP, MJPEG gives 0).
                    msec = self._cap.get(cv2.CAP_PROP_POS_MSEC)
                    now = time.time()
                    if msec and msec > 0:
                        # anchor stream time to the wall clock; re-anchor if it drifts away
                        # (a camera with a wrong fps header, a restarted stream)
                        if stream_t0 is None or abs(stream_t0 + msec / 1000.0 - now) > 2.0:
                            stream_t0 = now - msec / 1000.0
                        ts = stream_t0 + msec / 1000.0
                    else:
                        ts = now
                    ts = max(ts, last_ts + 1e-6)  # never backwards, whatever the stream says
                    last_ts = ts
                    vt = ts - t0_wall
                if self.realtime and self.kind == "file":
                    delay = (t0_mono + vt) - time.monotonic()
                    if delay > 0 and self._closed.wait(delay):
                        break
                yield Frame(image, index, ts, vt)
                index += 1
                pos += 1
                continue
            # read failed
            if self.kind == "file":
                if ok or (self._frame_count and pos < self._frame_count - 1 and corrupt_run < self.max_corrupt_run):
                    # a frame the decoder could not produce: skip it and count it
                    self.stats.corrupt += 1
                    corrupt_run += 1
                    pos += 1
                    index += 1
                    continue
                if self.loop and pos > 0:
                    self.stats.loops += 1
                    time_base += pos / (self.fps or 25.0)
                    pos = 0
                    self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    continue
                break
            # stream / device dropped or stalled: reconnect
            if ok:
                self.stats.corrupt += 1
                continue
            log.warning("%s: read failed or stalled; reconnecting", self.spec)
            self._cap.release()
            self._cap = self._reopen_with_backoff()
            stream_t0 = None
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def close(self) -> None:
        super().close()


class FolderSource(FrameSource):
    """Images in a folder, in name order; unreadable images are skipped and counted."""

    def __init__(self, folder: str, *, fps: float = 10.0, loop: bool = False, realtime: bool = False):
        super().__init__()
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise SourceError(f"{folder}: not a folder")
        self.files = sorted(p for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise SourceError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
        self.fps = fps
        self.loop = loop
        self.realtime = realtime
        first = next((cv2.imread(str(p)) for p in self.files if cv2.imread(str(p)) is not None), None)
        self.frame_size = (first.shape[1], first.shape[0]) if first is not None else None

    def frames(self) -> Iterator[Frame]:
        t0_wall, t0_mono, index = time.time(), time.monotonic(), 0
        while not self._closed.is_set():
            for path in self.files:
                if self._closed.is_set():
                    return
                vt = index / self.fps
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if not _valid(image, None):
                    self.stats.corrupt += 1
                    log.warning("%s: not a readable image, skipped", path)
                    index += 1
                    continue
                self.stats.decoded += 1
                if self.realtime:
                    delay = (t0_mono + vt) - time.monotonic()
                    if delay > 0 and self._closed.wait(delay):
                        return
                yield Frame(image, index, t0_wall + vt, vt)
                index += 1
            if not self.loop:
                return
            self.stats.loops += 1


def open_source(spec: str, *, loop: bool = False, realtime: bool = False, fps: float | None = None,
                **kwargs: float) -> FrameSource:
    """The right source for ``spec``: a folder, a stream URL, a device index or a video file."""
    if not spec:
        raise SourceError("empty source")
    if source_kind(spec) == "folder":
        return FolderSource(spec, fps=fps or 10.0, loop=loop, realtime=realtime)
    return VideoSource(spec, loop=loop, realtime=realtime, **kwargs)  # type: ignore[arg-type]


class ThreadedSource(FrameSource):
    """Decode ``inner`` on a background thread.

    ``drop=True`` (live input, or a file paced in real time): a bounded buffer of the newest
    ``buffer`` frames; when it is full the oldest frame is discarded and counted in
    ``stats.dropped``, so processing never lags behind the camera. ``drop=False``: the decoder
    waits for the consumer (offline processing of a file, every frame counts).
    """

    def __init__(self, inner: FrameSource, *, drop: bool | None = None, buffer: int = 2):
        super().__init__()
        self.inner = inner
        self.stats = inner.stats  # one set of counters
        self.fps, self.frame_size = inner.fps, inner.frame_size
        self.live = inner.live
        self.drop = (inner.live or getattr(inner, "realtime", False)) if drop is None else drop
        self._buf: deque[Frame] = deque()
        self._cap = max(1, buffer)
        self._cond = threading.Condition()
        self._done = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="frame-decoder", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for frame in self.inner.frames():
                with self._cond:
                    if self.drop:
                        while len(self._buf) >= self._cap:
                            self._buf.popleft()
                            self.stats.dropped += 1
                    else:
                        while len(self._buf) >= self._cap and not self._closed.is_set():
                            self._cond.wait(0.1)
                    if self._closed.is_set():
                        break
                    self._buf.append(frame)
                    self._cond.notify_all()
        except BaseException as e:  # surfaced to the consumer
            self._error = e
        finally:
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def frames(self) -> Iterator[Frame]:
        while True:
            with self._cond:
                while not self._buf and not self._done and not self._closed.is_set():
                    self._cond.wait(0.1)
                if self._buf:
                    frame = self._buf.popleft()
                    self._cond.notify_all()
                elif self._error is not None:
                    raise self._error
                else:
                    return
            yield frame

    def close(self) -> None:
        super().close()
        self.inner.close()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout=5)
