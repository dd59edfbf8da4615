"""Evidence-package samples for the desk tests: a signed violation whose stills carry a stop
line and amber, its real (encoded) clip, and an approved copy."""

from __future__ import annotations

import cv2
import numpy as np

from stopline.services.vehicle_detector.clip import ClipJob, clip_message, encode_clip
from stopline.services.vehicle_detector.evidence import BufferedFrame
from stopline.services.violation_desk.ingest import ingest
from stopline.services.violation_desk.review import approve, claim
from stopline.services.violation_desk.samples import CameraKeyPair, make_result
from stopline.shared.config import EvidenceConfig
from stopline.shared.messages import PlateResult, ViolationClip


def signed_result(key: CameraKeyPair | None, camera: str = "cam1", plate: str = "AB123CD", **kw) -> tuple[PlateResult, dict[str, bytes]]:
    result, blobs = make_result(plate, camera=camera, fresh_images=True, **kw)
    cand = result.candidate
    cand.amber_s, cand.stop_line = 3.52, [(0.0, 218.0), (640.0, 218.0)]
    if key is not None:
        key.sign(cand)
    return result, blobs


def clip_for(result: PlateResult, key: CameraKeyPair | None, seconds: float = 2.0,
             codec: str = "h264") -> tuple[ViolationClip, dict[str, bytes]]:
    """A real clip (a car driving down a drawn road) for ``result``'s event."""
    config = EvidenceConfig(clip_codec=codec, clip_fps=10)  # type: ignore[arg-type]
    cand = result.candidate
    frames = []
    for k in range(int(seconds * 10)):
        img = np.full((180, 320, 3), 100, np.uint8)
        cv2.line(img, (0, 110), (320, 110), (240, 240, 240), 3)
        y = 20 + 6 * k
        cv2.rectangle(img, (120, y), (170, y + 40), (30, 30, 160), -1)
        t = cand.crossed_at - seconds / 2 + k / 10
        frames.append(BufferedFrame(k, t, t, img, {7: (120.0, float(y), 170.0, float(y + 40))}))
    job = ClipJob(7, cand.crossed_at, frames[-1].t, frames, event_id=cand.event_id, site=cand.site,
                  camera=cand.camera, crossed_at=cand.crossed_at)
    data = encode_clip(frames, job.boxes, config)
    msg = clip_message(job, data, config, (320, 180))
    if key is not None:
        key.sign(msg.clip)  # type: ignore[arg-type]
    return msg, {msg.clip.name: data}


def approved_violation(desk, key: CameraKeyPair, reviewer: str = "rita") -> int:
    """A signed violation with its clip, assigned to a registered owner and approved."""
    from sqlalchemy import select

    from stopline.services.violation_desk.clips import ingest_clips
    from stopline.services.violation_desk.models import User

    result, blobs = signed_result(key)
    vid = ingest(desk, result, blobs).violation_id
    ingest_clips(desk, [clip_for(result, key)])
    with desk.session() as s, s.begin():
        user = s.scalar(select(User).where(User.username == reviewer))
        claim(s, vid, user)
        approve(s, vid, user)
    return vid
