"""Wire format: schemas round-trip; bad payloads are refused with a reason."""

import json
import struct

import pytest
from support.samples import candidate, jpeg

from stopline.shared.messages import (MAGIC, PlateCandidates, PlateImage, PlateRead, PlateResult,
                                      MessageError, SignalPhase, ViolationStatus, decode, encode,
                                      sha256_hex)


def test_candidate_round_trip_keeps_binary_jpegs():
    msg, blobs = candidate()
    payload = encode(msg, blobs)
    assert b"base64" not in payload and blobs["frame0.jpg"] in payload  # raw bytes, not text
    env = decode(payload)
    assert env.message == msg
    assert env.blobs == blobs
    assert env.message.candidate.evidence[1].role == "crossing"


def test_plate_result_round_trip():
    msg, blobs = candidate()
    crop = jpeg(120, 40, seed=5)
    plate = PlateImage(name="plate0.jpg", source="frame1.jpg", box=(1, 2, 30, 12), score=0.8,
                       sha256=sha256_hex(crop))
    read = PlateRead(text="7ABC123", confidence=0.93, char_confidences=[0.9] * 7, region="us",
                     engine="rapidocr", source="plate0.jpg")
    result = PlateResult(candidate=msg.candidate, plates=[plate], read=read, reads=[read])
    env = decode(encode(result, {**blobs, "plate0.jpg": crop}))
    assert env.message.read.text == "7ABC123"
    assert env.blobs["plate0.jpg"] == crop
    pc = decode(encode(PlateCandidates(candidate=msg.candidate, plates=[plate]), {**blobs, "plate0.jpg": crop}))
    assert pc.message.plates[0].source == "frame1.jpg"


@pytest.mark.parametrize("msg", [
    ViolationStatus(event_id="e1", camera="cam1", status="queued"),
    SignalPhase(group="main", phase="red", at=12.5),
])
def test_small_messages_round_trip(msg):
    assert decode(encode(msg)).message == msg


def _with_header(header: dict, body: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return MAGIC + struct.pack(">I", len(raw)) + raw + body


def test_rejects_garbage_and_truncation():
    with pytest.raises(MessageError, match="magic"):
        decode(b"hello world")
    msg, blobs = candidate()
    payload = encode(msg, blobs)
    with pytest.raises(MessageError, match="past the end"):
        decode(payload[:-100])


def test_rejects_tampered_attachment():
    msg, blobs = candidate()
    payload = bytearray(encode(msg, blobs))
    payload[-10] ^= 0xFF
    with pytest.raises(MessageError, match="SHA-256"):
        decode(bytes(payload))


def test_rejects_evidence_without_attachment_and_oversize():
    msg, blobs = candidate()
    blobs.pop("frame2.jpg")
    with pytest.raises(MessageError, match="frame2.jpg"):
        decode(encode(msg, blobs))
    msg, blobs = candidate()
    with pytest.raises(MessageError, match="exceeds"):
        decode(encode(msg, blobs), max_bytes=1000)


def test_rejects_unknown_version_and_unknown_fields():
    with pytest.raises(MessageError, match="unsupported schema version"):
        decode(_with_header({"schema": "violation_candidate/2", "candidate": {}}))
    with pytest.raises(MessageError, match="surprise: Extra inputs"):
        decode(_with_header({"schema": "violation_status/1", "event_id": "e", "camera": "c",
                             "status": "queued", "surprise": 1}))
    with pytest.raises(MessageError, match="status"):
        decode(_with_header({"schema": "violation_status/1", "event_id": "e", "camera": "c",
                             "status": "maybe"}))
