"""Frame sources: files (truncated, corrupt, looped), image folders, an HTTP camera that drops or
stalls mid-run, and the decode thread's drop-rather-than-lag behaviour."""

from __future__ import annotations

import os
import time

import cv2
import numpy as np
import pytest

from det_mjpeg import MjpegServer
from stopline.shared.vision.sources import (
    FolderSource, FrameSource, SourceError, ThreadedSource, VideoSource, open_source)


def _write_avi(path, n=60, fps=25.0):
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (320, 240))
    for i in range(n):
        img = np.full((240, 320, 3), 80, np.uint8)
        cv2.putText(img, str(i), (50, 120), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        w.write(img)
    w.release()
    return path.read_bytes()


def test_file_frames_have_index_and_video_time(tmp_path):
    _write_avi(tmp_path / "v.avi", n=30)
    src = VideoSource(str(tmp_path / "v.avi"))
    frames = list(src)
    assert len(frames) == 30 and src.stats.decoded == 30
    assert [f.index for f in frames] == list(range(30))
    assert frames[25].video_time_s == pytest.approx(1.0)
    assert frames[25].timestamp - frames[0].timestamp == pytest.approx(1.0)


def test_corrupt_frame_is_skipped_and_counted(tmp_path):
    data = bytearray(_write_avi(tmp_path / "v.avi"))
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    data[starts[30]:starts[30] + 400] = os.urandom(400)  # garble frame 30's JPEG
    (tmp_path / "bad.avi").write_bytes(bytes(data))
    src = VideoSource(str(tmp_path / "bad.avi"))
    frames = list(src)
    assert src.stats.corrupt == 1 and len(frames) == 59
    assert 30 not in [f.index for f in frames] and frames[-1].index == 59  # indices stay true


def test_truncated_file_ends_cleanly_with_what_it_has(tmp_path):
    data = _write_avi(tmp_path / "v.avi")
    (tmp_path / "cut.avi").write_bytes(data[: int(len(data) * 0.6)])
    src = VideoSource(str(tmp_path / "cut.avi"))
    frames = list(src)
    assert 30 <= len(frames) < 60 and src.stats.corrupt > 0


def test_loop_restarts_and_keeps_time_increasing(tmp_path):
    _write_avi(tmp_path / "v.avi", n=10)
    src = VideoSource(str(tmp_path / "v.avi"), loop=True)
    frames = []
    for f in src:
        frames.append(f)
        if len(frames) == 25:
            break
    src.close()
    assert src.stats.loops == 2
    times = [f.video_time_s for f in frames]
    assert times == sorted(times) and times[-1] == pytest.approx(24 / 25)


def test_folder_source_skips_unreadable_images(tmp_path):
    for i in range(5):
        cv2.imwrite(str(tmp_path / f"{i:03d}.png"), np.full((20, 30, 3), i * 40, np.uint8))
    (tmp_path / "002.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("ignored")
    src = FolderSource(str(tmp_path), fps=5)
    frames = list(src)
    assert [f.index for f in frames] == [0, 1, 3, 4] and src.stats.corrupt == 1
    assert frames[-1].video_time_s == pytest.approx(0.8)


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(SourceError, match="no such video file"):
        open_source(str(tmp_path / "missing.mp4"))
    (tmp_path / "junk.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(SourceError, match="junk.mp4: cannot be decoded"):
        open_source(str(tmp_path / "junk.mp4"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / "empty"))


def test_http_stream_that_drops_reconnects_and_goes_on():
    with MjpegServer(fps=50, frames_per_connection=20) as cam:
        src = VideoSource(cam.url, reconnect_min_s=0.1, read_timeout_s=2)
        got = []
        for f in src:
            got.append(f)
            if len(got) == 70:
                break
        src.close()
    assert src.stats.reconnects >= 3 and cam.connections >= 4
    assert [f.index for f in got] == list(range(70))
    stamps = [f.timestamp for f in got]
    assert stamps == sorted(stamps)


def test_truncated_jpeg_on_a_live_mjpeg_stream_is_skipped_and_counted():
    with MjpegServer(fps=50, corrupt_every=5) as cam:
        src = VideoSource(cam.url, reconnect_min_s=0.1, read_timeout_s=2)
        got = []
        deadline = time.monotonic() + 20
        for f in src:
            got.append(f)
            if len(got) == 40 or time.monotonic() > deadline:
                break
        src.close()
    # 4 good frames in 5 reach the detector; the cut ones are counted, none is a half-grey frame
    assert src.stats.corrupt >= 9 and src.stats.decoded == 40, src.stats
    assert all(f.image.shape == (240, 320, 3) for f in got)
    assert all(abs(float(f.image[230:, :].mean()) - 90) < 10 for f in got)  # bottom rows: the grey fill, not grey 128


def test_http_stream_that_stalls_is_reopened():
    with MjpegServer(fps=50, frames_per_connection=10, stall_s=30) as cam:
        src = VideoSource(cam.url, reconnect_min_s=0.1, read_timeout_s=1.0)
        got = 0
        t0 = time.monotonic()
        for _ in src:
            got += 1
            if got == 15:
                break
        src.close()
    assert src.stats.reconnects >= 1 and time.monotonic() - t0 < 20


class _Burst(FrameSource):
    """Produces frames as fast as it can (a camera far faster than the consumer)."""

    live = True

    def frames(self):
        from stopline.shared.vision.sources import Frame

        img = np.zeros((8, 8, 3), np.uint8)
        for i in range(200):
            if self._closed.is_set():
                return
            self.stats.decoded += 1
            yield Frame(img, i, float(i), float(i))
            time.sleep(0.001)


def test_threaded_source_drops_oldest_when_consumer_is_slow_and_counts_it():
    src = ThreadedSource(_Burst(), buffer=2)
    seen = []
    for f in src:
        seen.append(f.index)
        time.sleep(0.01)
    assert src.stats.dropped > 50
    assert len(seen) + src.stats.dropped == 200
    assert seen == sorted(seen) and seen[-1] == 199  # always the newest, never lagging


def test_threaded_source_without_drop_delivers_everything():
    src = ThreadedSource(_Burst(), drop=False, buffer=2)
    seen = [f.index for f in src]
    assert seen == list(range(200)) and src.stats.dropped == 0
