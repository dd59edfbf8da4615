"""Synthetic but well-formed plate results (real JPEGs, optionally Ed25519-signed) for the desk's
tests, benchmarks and screenshots. Nothing here is used on the ingestion path."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

import cv2
import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stopline.shared.messages import Candidate, EvidenceImage, PlateImage, PlateRead, PlateResult, new_event_id, sha256_hex

from .integrity import key_id_of

ROLES = ("approach", "crossing", "inside", "signal")


def scene_jpeg(label: str, width: int = 640, height: int = 352, seed: int = 0, plate: str | None = None) -> bytes:
    """A drawn street scene: road, stop line, a red signal, a car with a plate."""
    rng = np.random.default_rng(seed)
    img = np.full((height, width, 3), (90, 90, 90), np.uint8)
    img[: height // 3] = (200, 170, 140)
    cv2.line(img, (0, int(height * 0.62)), (width, int(height * 0.62)), (255, 255, 255), 4)
    cv2.rectangle(img, (width - 60, 20), (width - 30, 100), (30, 30, 30), -1)
    cv2.circle(img, (width - 45, 38), 10, (0, 0, 255), -1)
    x = int(rng.integers(80, width - 280))
    y = int(height * 0.45 + rng.integers(-20, 40))
    colour = tuple(int(c) for c in rng.integers(40, 220, 3))
    cv2.rectangle(img, (x, y), (x + 200, y + 110), colour, -1)
    if plate:
        cv2.rectangle(img, (x + 55, y + 75), (x + 145, y + 98), (245, 245, 245), -1)
        cv2.putText(img, plate[:8], (x + 58, y + 93), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, label, (10, height - 12), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return buf.tobytes()


def plate_jpeg(plate: str, width: int = 180, height: int = 48) -> bytes:
    img = np.full((height, width, 3), 245, np.uint8)
    cv2.rectangle(img, (1, 1), (width - 2, height - 2), (0, 0, 0), 2)
    cv2.putText(img, plate[:10], (8, height - 14), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2, cv2.LINE_AA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    assert ok
    return buf.tobytes()


def tagged(jpeg: bytes, tag: str) -> bytes:
    """The same JPEG with a COM segment carrying ``tag`` (a distinct file, same picture)."""
    body = tag.encode()[:60000]
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


@dataclass
class CameraKeyPair:
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> "CameraKeyPair":
        return cls(Ed25519PrivateKey.generate())

    @property
    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    @property
    def key_id(self) -> str:
        return key_id_of(self.private.public_key())

    def sign(self, candidate: Candidate) -> None:
        candidate.key_id = self.key_id
        candidate.signature = self.private.sign(candidate.signed_bytes()).hex()


_BASE: dict[str, bytes] = {}


def make_result(
    plate: str | None = "AB123CD",
    *,
    event_id: str | None = None,
    site: str = "test",
    camera: str = "cam1",
    confidence: float = 0.95,
    region: str = "eu",
    vehicle_class: str = "car",
    colour: str | None = "red",
    crossed_at: float | None = None,
    time_into_red_s: float = 1.8,
    key: CameraKeyPair | None = None,
    n_evidence: int = 4,
    fresh_images: bool = False,
) -> tuple[PlateResult, dict[str, bytes]]:
    """A plate result as the plate reader would publish it, with its blobs."""
    event_id = event_id or new_event_id()
    crossed_at = time.time() - 60 if crossed_at is None else crossed_at
    blobs: dict[str, bytes] = {}
    evidence = []
    for i in range(n_evidence):
        if fresh_images:
            data = scene_jpeg(f"{camera} {event_id[:8]} #{i}", seed=int(sha256_hex(event_id.encode())[:6], 16) + i, plate=plate)
        else:
            if f"scene{i}" not in _BASE:
                _BASE[f"scene{i}"] = scene_jpeg(f"evidence #{i}", seed=i, plate="PLATE")
            base = _BASE[f"scene{i}"]
            data = tagged(base, f"{event_id}/{i}")
        name = f"{event_id}_{i}.jpg"
        blobs[name] = data
        evidence.append(EvidenceImage(name=name, role=ROLES[i % len(ROLES)], frame_index=100 + i * 3,
                                      captured_at=crossed_at - 0.4 + i * 0.25, vehicle_box=(120, 150, 320, 260),
                                      signal_box=(580, 20, 610, 100), signal_state="red", sha256=sha256_hex(data)))
    cand = Candidate(event_id=event_id, site=site, camera=camera, track_id=7, vehicle_class=vehicle_class,
                     vehicle_colour=colour, crossed_at=crossed_at, detected_at=crossed_at + 0.5, frame_index=103,
                     video_time_s=4.2, signal_phase="red", time_into_red_s=time_into_red_s, speed_px_s=140.0,
                     lane="1", evidence=evidence)
    if key is not None:
        key.sign(cand)
    plates, read, reads = [], None, []
    if plate is not None:
        if fresh_images:
            crop = plate_jpeg(plate)
        else:
            if "plate" not in _BASE:
                _BASE["plate"] = plate_jpeg("PLATE")
            crop = tagged(_BASE["plate"], event_id)
        pname = f"{event_id}_plate.jpg"
        blobs[pname] = crop
        plates.append(PlateImage(name=pname, source=evidence[1].name, box=(175, 225, 265, 248), score=0.9,
                                 sha256=sha256_hex(crop)))
        read = PlateRead(text=plate, confidence=confidence, char_confidences=[confidence] * len(plate),
                         region=region, engine="rapidocr", source="vote", crop=pname)
        reads = [read.model_copy(update={"source": pname})]
    return PlateResult(candidate=cand, plates=plates, read=read, reads=reads, read_at=crossed_at + 1.0), blobs
