"""Real-looking messages for tests: JPEG evidence encoded with OpenCV."""

from __future__ import annotations

import time

import cv2
import numpy as np

from stopline.shared.messages import Candidate, EvidenceImage, ViolationCandidate, new_event_id, sha256_hex


def jpeg(width: int = 320, height: int = 180, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    cv2.rectangle(img, (40, 40), (200, 140), (0, 0, 255), -1)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def candidate(event_id: str | None = None, camera: str = "cam1", site: str = "test",
              frames: int = 3) -> tuple[ViolationCandidate, dict[str, bytes]]:
    blobs, evidence = {}, []
    roles = ["approach", "crossing", "inside"]
    for i in range(frames):
        data = jpeg(seed=i)
        name = f"frame{i}.jpg"
        blobs[name] = data
        evidence.append(EvidenceImage(name=name, role=roles[min(i, 2)], frame_index=100 + i,
                                      captured_at=time.time(), vehicle_box=(40, 40, 200, 140),
                                      sha256=sha256_hex(data)))
    cand = Candidate(event_id=event_id or new_event_id(), site=site, camera=camera, track_id=7,
                     vehicle_class="car", crossed_at=time.time(), detected_at=time.time(),
                     frame_index=101, signal_phase="red", time_into_red_s=2.5, evidence=evidence)
    return ViolationCandidate(candidate=cand), blobs
