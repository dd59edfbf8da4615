"""Versioned message schemas and their binary wire format.

A message on the wire is an *envelope*::

    b"STL1" | u32 big-endian header length | header JSON (UTF-8) | attachment bytes ...

The header is a pydantic model (``kind`` and ``version`` name the schema); images travel as
raw JPEG bytes after it, listed in ``header.attachments`` with offset, length and SHA-256.
MQTT 3.1.1 has no message properties, so everything a consumer needs is in the payload.
"""

from __future__ import annotations

import hashlib
import json
import struct
import time
import uuid
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from stopline.shared.config import HeaderLimits
from stopline.shared.header_scan import HeaderLimitError, check_header

MAGIC = b"STL1"
_LEN = struct.Struct(">I")
DEFAULT_LIMITS = HeaderLimits()


class MessageError(ValueError):
    """A payload that is not a valid stopline message; the text says why."""


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_event_id() -> str:
    return uuid.uuid4().hex


class Strict(BaseModel):
    # no infinities or NaN: JSON has none, but Python's parser turns 1e999 into inf
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class Attachment(Strict):
    name: str
    content_type: str = "image/jpeg"
    offset: int = Field(ge=0)
    length: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


XYXY = tuple[float, float, float, float]


class EvidenceImage(Strict):
    """One frame of a violation's evidence burst (the JPEG is the attachment ``name``)."""

    name: str
    role: Literal["approach", "crossing", "inside", "signal", "vehicle"]
    frame_index: int
    captured_at: float
    vehicle_box: XYXY | None = None
    signal_box: XYXY | None = None
    signal_state: str | None = None
    sha256: str


class Candidate(Strict):
    """The vehicle detector's claim: this track crossed the stop line on red."""

    event_id: str
    site: str
    camera: str
    track_id: int
    vehicle_class: str
    vehicle_colour: str | None = None
    crossed_at: float = Field(description="epoch seconds of the front crossing the stop line")
    detected_at: float = Field(description="epoch seconds when the detector decided")
    frame_index: int
    video_time_s: float | None = Field(default=None, description="time in the source video, when known")
    signal_phase: Literal["red", "amber", "green", "unknown"]
    time_into_red_s: float
    speed_px_s: float | None = None
    lane: str | None = None
    evidence: list[EvidenceImage] = Field(min_length=1)
    signature: str | None = Field(default=None, description="Ed25519 over signed_bytes(), hex")
    key_id: str | None = None
    amber_s: float | None = Field(default=None, description="the amber before this red, s (None: not measured)")
    stop_line: list[tuple[float, float]] | None = Field(
        default=None, description="the stop line in the pixels of the approach/crossing/inside images")
    not_enforceable: str | None = Field(
        default=None, description="why the violation cannot be enforced (e.g. an amber shorter than the minimum)")

    def signed_bytes(self) -> bytes:
        """Canonical bytes the camera signs: the header without the signature, sorted keys.
        Fields added after version 1 are left out while unset, so older signatures still verify."""
        data = self.model_dump(mode="json", exclude={"signature"})
        for name in _ADDED_TO_CANDIDATE:
            if data.get(name) is None:
                data.pop(name, None)
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


_ADDED_TO_CANDIDATE = ("amber_s", "stop_line", "not_enforceable")


class EvidenceClip(Strict):
    """The video around a violation, cut at the camera; signed like a candidate (same key)."""

    event_id: str = Field(description="the candidate this clip belongs to")
    site: str
    camera: str
    name: str = Field(description="attachment name of the video")
    content_type: Literal["video/mp4", "video/webm"]
    codec: str
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    fps: float = Field(gt=0)
    frames: int = Field(ge=1)
    start_at: float = Field(description="epoch seconds of the first frame")
    end_at: float = Field(description="epoch seconds of the last frame")
    crossed_at: float
    vehicle_boxes: int = Field(ge=0, description="frames with the offender's box drawn")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    signature: str | None = Field(default=None, description="Ed25519 over signed_bytes(), hex")
    key_id: str | None = None

    def signed_bytes(self) -> bytes:
        data = self.model_dump(mode="json", exclude={"signature"})
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


class PlateImage(Strict):
    name: str
    source: str = Field(description="evidence image the crop came from")
    box: XYXY = Field(description="plate box in the source evidence image")
    score: float
    sha256: str


class PlateRead(Strict):
    text: str
    confidence: float = Field(ge=0, le=1)
    char_confidences: list[float]
    region: str
    engine: str
    source: str | None = Field(default=None, description="plate image it was read from, or 'vote'")
    crop: str | None = Field(default=None, description="attachment name of the rectified crop")
    box: XYXY | None = None


class Message(Strict):
    kind: ClassVar[str] = ""
    version: ClassVar[int] = 1
    attachments: list[Attachment] = Field(default_factory=list)


class ViolationCandidate(Message):
    kind: ClassVar[str] = "violation_candidate"
    schema_: Literal["violation_candidate/1"] = Field(default="violation_candidate/1", alias="schema")
    candidate: Candidate

    @property
    def event_id(self) -> str:
        return self.candidate.event_id


class PlateCandidates(Message):
    """The plate finder's choice of plate images (evidence passes through for the desk)."""

    kind: ClassVar[str] = "plate_candidates"
    schema_: Literal["plate_candidates/1"] = Field(default="plate_candidates/1", alias="schema")
    candidate: Candidate
    plates: list[PlateImage]

    @property
    def event_id(self) -> str:
        return self.candidate.event_id


class PlateResult(Message):
    """The plate reader's result: the voted read, the per-image reads, and the evidence."""

    kind: ClassVar[str] = "plate_read"
    schema_: Literal["plate_read/1"] = Field(default="plate_read/1", alias="schema")
    candidate: Candidate
    plates: list[PlateImage] = Field(default_factory=list)
    read: PlateRead | None = Field(default=None, description="None: no plate could be read")
    reads: list[PlateRead] = Field(default_factory=list)
    read_at: float = Field(default_factory=time.time)

    @property
    def event_id(self) -> str:
        return self.candidate.event_id


class ViolationStatus(Message):
    kind: ClassVar[str] = "violation_status"
    schema_: Literal["violation_status/1"] = Field(default="violation_status/1", alias="schema")
    event_id: str
    camera: str
    status: Literal["queued", "approved", "rejected", "escalated", "duplicate", "not_enforceable"]
    at: float = Field(default_factory=time.time)


class SignalPhase(Message):
    """A signal controller's phase change."""

    kind: ClassVar[str] = "signal_phase"
    schema_: Literal["signal_phase/1"] = Field(default="signal_phase/1", alias="schema")
    group: str = "main"
    phase: Literal["red", "amber", "green"]
    at: float = Field(description="controller clock, epoch seconds")


class ViolationClip(Message):
    """The evidence clip of a violation, sent by the camera once its last frame is in (after the
    candidate, which does not wait for it); the desk files it with the violation."""

    kind: ClassVar[str] = "violation_clip"
    schema_: Literal["violation_clip/1"] = Field(default="violation_clip/1", alias="schema")
    clip: EvidenceClip


class DeadLetter(Message):
    kind: ClassVar[str] = "dead_letter"
    schema_: Literal["dead_letter/1"] = Field(default="dead_letter/1", alias="schema")
    service: str
    topic: str
    reason: str
    payload_bytes: int
    payload_head: str = Field(description="first bytes of the payload, hex")
    stored: str | None = Field(default=None, description="SHA-256 of the payload kept on disk by the "
                               "refusing service (state_dir/deadletters/<service>/<sha256>.msg); None if not kept")
    at: float = Field(default_factory=time.time)


AnyMessage = Annotated[
    Union[ViolationCandidate, PlateCandidates, PlateResult, ViolationStatus, SignalPhase, DeadLetter,
          ViolationClip],
    Field(discriminator="schema_"),
]
_ANY = TypeAdapter(AnyMessage)


class Envelope:
    """A decoded message: the validated header and its attachments by name."""

    def __init__(self, message: Message, blobs: dict[str, bytes]):
        self.message = message
        self.blobs = blobs

    def __repr__(self) -> str:
        return f"Envelope({type(self.message).__name__}, blobs={list(self.blobs)})"


def encode(message: Message, blobs: dict[str, bytes] | None = None) -> bytes:
    """Serialise a message with its binary attachments (the attachment list is rebuilt)."""
    blobs = blobs or {}
    atts, offset = [], 0
    for name, data in blobs.items():
        atts.append(Attachment(name=name, offset=offset, length=len(data), sha256=sha256_hex(data),
                               content_type=_content_type(name)))
        offset += len(data)
    message.attachments = atts
    header = message.model_dump_json(by_alias=True).encode()
    return MAGIC + _LEN.pack(len(header)) + header + b"".join(blobs.values())


def _content_type(name: str) -> str:
    return _CONTENT_TYPES.get(name.rsplit(".", 1)[-1].lower(), "image/jpeg")


_CONTENT_TYPES = {"png": "image/png", "mp4": "video/mp4", "webm": "video/webm"}


def decode(payload: bytes, max_bytes: int | None = None, limits: HeaderLimits = DEFAULT_LIMITS) -> Envelope:
    """Parse and validate a payload; raises MessageError with a reason a person can act on.

    The header's raw bytes are checked against ``limits`` (size, nesting, number digits, string
    length, number of values) before they are parsed, so no payload can make the parser recurse
    without bound or spend quadratic time on one number."""
    if max_bytes is not None and len(payload) > max_bytes:
        raise MessageError(f"payload of {len(payload)} bytes exceeds the limit of {max_bytes}")
    if len(payload) < 8 or payload[:4] != MAGIC:
        raise MessageError("not a stopline envelope (bad magic)")
    (hlen,) = _LEN.unpack_from(payload, 4)
    if 8 + hlen > len(payload):
        raise MessageError(f"header length {hlen} does not fit the payload")
    header = payload[8 : 8 + hlen]
    try:
        check_header(header, limits)
    except HeaderLimitError as e:
        raise MessageError(str(e)) from None
    try:
        raw = json.loads(header)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise MessageError(f"header is not JSON: {e}") from None
    if not isinstance(raw, dict) or "schema" not in raw:
        raise MessageError("header has no schema field")
    schema = str(raw["schema"])
    if schema.split("/")[0] in _KNOWN_KINDS and schema not in _KNOWN_SCHEMAS:
        raise MessageError(f"unsupported schema version {schema!r} (this build reads {sorted(_KNOWN_SCHEMAS)})")
    try:
        message: Message = _ANY.validate_python(raw)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors()[:5])
        raise MessageError(f"invalid {schema}: {problems}") from None
    body = payload[8 + hlen :]
    declared = sum(att.length for att in message.attachments)
    if declared > len(body):  # so each byte is hashed once at most
        raise MessageError(f"attachments run past the end of the payload ({declared} bytes declared, "
                           f"{len(body)} present)")
    blobs: dict[str, bytes] = {}
    for att in message.attachments:
        if att.offset + att.length > len(body):
            raise MessageError(f"attachment {att.name!r} runs past the end of the payload")
        data = body[att.offset : att.offset + att.length]
        if sha256_hex(data) != att.sha256:
            raise MessageError(f"attachment {att.name!r} fails its SHA-256 check")
        blobs[att.name] = data
    _check_references(message, blobs)
    return Envelope(message, blobs)


def _check_references(message: Message, blobs: dict[str, bytes]) -> None:
    candidate: Candidate | None = getattr(message, "candidate", None)
    if candidate is not None:
        checked = {att.name: att.sha256 for att in message.attachments}  # verified against the bytes
        for ev in candidate.evidence:
            if ev.name not in blobs:
                raise MessageError(f"evidence {ev.name!r} has no attachment")
            if checked[ev.name] != ev.sha256:
                raise MessageError(f"evidence {ev.name!r} does not match its SHA-256")
    for plate in getattr(message, "plates", []) or []:
        if plate.name not in blobs:
            raise MessageError(f"plate image {plate.name!r} has no attachment")


_SCHEMAS = (ViolationCandidate, PlateCandidates, PlateResult, ViolationStatus, SignalPhase, DeadLetter, ViolationClip)
_KNOWN_SCHEMAS = {m.model_fields["schema_"].default for m in _SCHEMAS}
_KNOWN_KINDS = {s.split("/")[0] for s in _KNOWN_SCHEMAS}


def to_json(message: BaseModel) -> dict[str, Any]:
    return message.model_dump(mode="json", by_alias=True)
