"""Evidence clips: cut from the edge's frame ring around the crossing, the offender's box drawn,
hashed, signed with the camera key, size-capped, and sent after the candidate."""

from __future__ import annotations

import io
import os
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from det_scene import Car, camera, frames
from stopline.services.vehicle_detector.clip import encode_clip
from stopline.services.vehicle_detector.evidence import BufferedFrame
from stopline.services.vehicle_detector.pipeline import DetectorPipeline
from stopline.shared.config import EvidenceConfig, VehicleDetectorConfig
from stopline.shared.messages import decode, encode, sha256_hex
from stopline.shared.signing import generate_key, public_pem, sign_candidate, verify_candidate

FPS = 25
DATA = Path(os.environ.get("STOPLINE_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def _decoded(data: bytes) -> list[np.ndarray]:
    with av.open(io.BytesIO(data)) as c:
        return [f.to_ndarray(format="bgr24") for f in c.decode(video=0)]


@pytest.mark.parametrize("codec", ["h264", "vp8"])
def test_clip_spans_before_and_after_the_crossing_with_the_offender_boxed_and_signed(tmp_path, codec):
    key = generate_key(tmp_path / "cam.pem")
    cam = camera(evidence={"burst_size": 4, "clip_before_s": 1.5, "clip_after_s": 1.0, "clip_fps": 10,
                           "clip_codec": codec})
    p = DetectorPipeline(cam, VehicleDetectorConfig(backend="motion"), "site1",
                         lambda c: sign_candidate(c, key), clips=True)
    car = Car(1.0, 200, 150)  # crosses at 2.4 s
    out, clips = [], []
    for i, t, img, _ in frames(6.0, FPS, [car], lambda t: "red"):
        new = p.process(img, i, 1_700_000_000 + t, t)
        if new:
            assert not clips and t < 3.2  # the candidate never waits for its clip
        out += new
        clips += p.take_clips()
    out += p.flush()
    clips += p.finish_clips()
    assert len(out) == 1 and len(clips) == 1
    cand = out[0][0].candidate
    msg, blobs = clips[0]
    clip = msg.clip
    assert clip.event_id == cand.event_id and clip.camera == "cam1"
    assert clip.content_type == ("video/mp4" if codec == "h264" else "video/webm")
    data = blobs[clip.name]
    assert sha256_hex(data) == clip.sha256 and verify_candidate(clip, public_pem(key))
    assert not verify_candidate(clip.model_copy(update={"sha256": sha256_hex(data + b"x")}), public_pem(key))
    assert clip.start_at == pytest.approx(cand.crossed_at - 1.5, abs=0.15)
    assert clip.end_at == pytest.approx(cand.crossed_at + 1.0, abs=0.15)
    assert 23 <= clip.frames <= 27 and clip.vehicle_boxes >= clip.frames - 12  # the car enters at 1.0 s
    back = decode(encode(msg, blobs))
    assert back.blobs[clip.name] == data and back.message.attachments[0].content_type == clip.content_type
    video = _decoded(data)
    assert len(video) == clip.frames and video[0].shape == (360, 640, 3)
    # the box: pure red lines around the car in the frame of the crossing
    crossing = video[15]
    red = (crossing[:, :, 2] > 180) & (crossing[:, :, 1] < 80) & (crossing[:, :, 0] < 80)
    ys, xs = np.nonzero(red)
    assert len(xs) > 200 and 180 < np.median(xs) < 290  # the car spans x 200..270


def test_no_clip_for_a_crossing_that_turns_out_exempt_or_without_clips():
    p = DetectorPipeline(camera(), VehicleDetectorConfig(backend="motion"), "site1")
    assert p.clip_maker is None and p.take_clips() == [] and p.finish_clips() == []
    none = camera(evidence={"burst_size": 4, "clip_codec": "none"})
    assert DetectorPipeline(none, VehicleDetectorConfig(backend="motion"), "s", clips=True).clip_maker is None


def _real_frames(n: int) -> list[BufferedFrame]:
    video = DATA / "video" / "redlight_demo1.mp4"
    if not video.exists():
        pytest.skip(f"{video} is not here (the shared data folder)")
    cap = cv2.VideoCapture(str(video))
    step = max(1, round(cap.get(cv2.CAP_PROP_FPS) / 10))
    out, i = [], 0
    while len(out) < n:
        ok, img = cap.read()
        if not ok:
            break
        if i % step == 0:
            img = cv2.resize(img, (1280, 720))
            out.append(BufferedFrame(i, len(out) / 10, 1_700_000_000 + len(out) / 10, img, {}))
        i += 1
    return out


def test_a_six_second_720p_clip_of_a_real_street_stays_under_the_cap():
    frames_ = _real_frames(60)
    config = EvidenceConfig()
    data = encode_clip(frames_, [(500.0, 300.0, 700.0, 450.0)] * len(frames_), config)
    assert len(data) <= config.clip_max_bytes
    assert len(_decoded(data)) == len(frames_)
    tight = EvidenceConfig(clip_max_bytes=300_000)  # the cap is a cap
    assert len(encode_clip(frames_, [None] * len(frames_), tight)) <= 300_000 * 1.1


def test_ring_keeps_wide_frames_at_the_clips_size_with_boxes_scaled():
    import numpy as np

    from stopline.services.vehicle_detector.clip import ClipRing
    from stopline.services.vehicle_detector.evidence import BufferedFrame

    ring = ClipRing(1.0, 10.0, 15.0, max_width=1280)
    frame = BufferedFrame(0, 0.0, 0.0, np.zeros((1080, 1920, 3), np.uint8), {7: (960.0, 540.0, 1440.0, 810.0)})
    kept = ring.add(frame)
    assert kept is not None and kept.image.shape == (720, 1280, 3)
    assert kept.boxes[7] == pytest.approx((640.0, 360.0, 960.0, 540.0))
    small = BufferedFrame(1, 0.1, 0.1, np.zeros((720, 1280, 3), np.uint8), {})
    assert ring.add(small) is small  # already the clip's size: kept as is, no copy


def test_the_clip_encoder_thread_yields_to_the_cameras():
    """Clips are encoded on a thread niced by CLIP_NICENESS (one encoder thread): a burst of
    violations does not take the cores from the cameras' frame loops, whose priority is kept."""
    from stopline.services.vehicle_detector.clip import CLIP_NICENESS, ClipJob, ClipMaker

    before = os.getpriority(os.PRIO_PROCESS, 0)
    maker = ClipMaker(EvidenceConfig())
    shots = [BufferedFrame(i, i / 10, 1_700_000_000 + i / 10, np.full((96, 128, 3), 40 * i, np.uint8), {})
             for i in range(4)]
    job = ClipJob(1, 0.1, 0.3, shots)
    job.event_id = "e1"
    maker.submit(job)
    done = maker.drain()
    assert len(done) == 1 and maker.failed == 0  # the clip was made on the niced thread
    assert os.getpriority(os.PRIO_PROCESS, maker._thread.native_id) == min(19, before + CLIP_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before
    maker.close()


def test_the_h264_preset_is_the_configured_one():
    """``clip_preset`` reaches x264 (its settings travel in the stream): superfast by default,
    others on request."""
    shots = [BufferedFrame(i, i / 10, 1_700_000_000 + i / 10, np.full((96, 128, 3), 40 * i, np.uint8), {})
             for i in range(4)]
    fast = encode_clip(shots, [None] * 4, EvidenceConfig())
    assert b"subme=1" in fast and b"threads=1" in fast
    assert b"subme=7" in encode_clip(shots, [None] * 4, EvidenceConfig(clip_preset="medium"))
    with pytest.raises(ValueError):
        EvidenceConfig(clip_preset="placebo")
