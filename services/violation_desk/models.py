"""The desk's tables (SQLAlchemy 2). The schema itself is created by the Alembic migrations in
``migrations/versions``; these classes must stay in step with them (a test compares the two).

Times are epoch seconds (double precision) so that ordering, keyset pagination and the
violations-per-hour chart are the same arithmetic on SQLite and PostgreSQL.
"""

from __future__ import annotations

import time

from sqlalchemy import (
    BigInteger,
    Boolean,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets BIGINT (1e9+ violations).
BigId = BigInteger().with_variant(Integer(), "sqlite")
# A normalised plate (A-Z, 0-9): byte order on PostgreSQL (migration 0006), SQLite's is byte order already.
PlateText = String(16).with_variant(String(16, collation="C"), "postgresql")

ROLES = ("reviewer", "supervisor", "admin")
STATUSES = ("queued", "approved", "rejected", "escalated", "not_enforceable")
INTEGRITY = ("verified", "unverified", "tampered")
MAX_ID = 2**63 - 1  # the largest id a BIGINT (or SQLite INTEGER) holds: anything above is no row of ours


def now() -> float:
    return time.time()


class Base(DeclarativeBase):
    pass


class Camera(Base):
    __tablename__ = "cameras"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[float] = mapped_column(Double, default=now)

    keys: Mapped[list[CameraKey]] = relationship(back_populates="camera", cascade="all, delete-orphan")


class CameraKey(Base):
    """A camera's registered Ed25519 public key (several while keys rotate)."""

    __tablename__ = "camera_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), index=True)
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    public_key_pem: Mapped[str] = mapped_column(Text)
    added_at: Mapped[float] = mapped_column(Double, default=now)
    revoked_at: Mapped[float | None] = mapped_column(Double, nullable=True)

    camera: Mapped[Camera] = relationship(back_populates="keys")


class Vehicle(Base):
    """One registration in the vehicle/owner registry."""

    __tablename__ = "vehicles"
    __table_args__ = (UniqueConstraint("plate_norm", "region", name="uq_vehicles_plate_region"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    plate_norm: Mapped[str] = mapped_column(PlateText)  # indexed by the unique (plate_norm, region)
    plate: Mapped[str] = mapped_column(String(32))
    region: Mapped[str] = mapped_column(String(16))
    make: Mapped[str] = mapped_column(String(64), default="")
    model: Mapped[str] = mapped_column(String(64), default="")
    colour: Mapped[str] = mapped_column(String(32), default="")
    vehicle_class: Mapped[str] = mapped_column(String(32), default="")
    owner_name: Mapped[str] = mapped_column(String(200))
    owner_address: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[float] = mapped_column(Double, default=now)


class RegistryKey(Base):
    """Symmetric-delete index: the plate and each of its one-character deletions. Two plates
    within one edit share at least one key, so the fuzzy lookup is a handful of index probes."""

    __tablename__ = "registry_keys"

    key: Mapped[str] = mapped_column(PlateText, primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True)


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    session_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[float] = mapped_column(Double, default=now)


class Violation(Base):
    __tablename__ = "violations"
    __table_args__ = (
        Index("ix_violations_queue", "status", "crossed_at", "id"),
        Index("ix_violations_camera", "camera_id", "crossed_at", "id"),
        Index("ix_violations_time", "crossed_at", "id"),
        Index("ix_violations_plate", "plate_norm", "crossed_at", "id",
              postgresql_ops={"plate_norm": "varchar_pattern_ops"}),
        Index("ix_violations_decided", "status", "decided_at"),
        Index("ix_violations_camera_status", "camera_id", "status", "crossed_at", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    site: Mapped[str] = mapped_column(String(64))
    camera_id: Mapped[str] = mapped_column(ForeignKey("cameras.id"))
    track_id: Mapped[int] = mapped_column(Integer)
    vehicle_class: Mapped[str] = mapped_column(String(32))
    vehicle_colour: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lane: Mapped[str | None] = mapped_column(String(32), nullable=True)
    crossed_at: Mapped[float] = mapped_column(Double)
    detected_at: Mapped[float] = mapped_column(Double)
    read_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    received_at: Mapped[float] = mapped_column(Double, default=now)
    frame_index: Mapped[int] = mapped_column(Integer)
    video_time_s: Mapped[float | None] = mapped_column(Double, nullable=True)
    signal_phase: Mapped[str] = mapped_column(String(16))
    time_into_red_s: Mapped[float] = mapped_column(Double)
    speed_px_s: Mapped[float | None] = mapped_column(Double, nullable=True)
    # the plate as read (never changed) and the plate in force (corrected by a reviewer)
    plate_read: Mapped[str | None] = mapped_column(String(32), nullable=True)
    plate_confidence: Mapped[float | None] = mapped_column(Double, nullable=True)
    plate_region: Mapped[str | None] = mapped_column(String(16), nullable=True)
    read_engine: Mapped[str | None] = mapped_column(String(32), nullable=True)
    plate_norm: Mapped[str | None] = mapped_column(String(16), nullable=True)
    plate_corrected: Mapped[bool] = mapped_column(Boolean, default=False)
    vehicle_id: Mapped[int | None] = mapped_column(ForeignKey("vehicles.id", ondelete="SET NULL"), nullable=True)
    # exact | manual | none; "unregistered": approved on the reviewer's "no registration found" decision
    match_kind: Mapped[str] = mapped_column(String(16), default="none")
    clone_flag: Mapped[bool] = mapped_column(Boolean, default=False)
    clone_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    integrity: Mapped[str] = mapped_column(String(16))
    integrity_detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="queued")
    reject_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[float | None] = mapped_column(Double, nullable=True)
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    claimed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    claimed_until: Mapped[float | None] = mapped_column(Double, nullable=True)
    message_json: Mapped[str] = mapped_column(Text, default="")

    vehicle: Mapped[Vehicle | None] = relationship(foreign_keys=[vehicle_id])
    claimer: Mapped[User | None] = relationship(foreign_keys=[claimed_by])
    decider: Mapped[User | None] = relationship(foreign_keys=[decided_by])
    evidence: Mapped[list[Evidence]] = relationship(
        back_populates="violation", cascade="all, delete-orphan", order_by="Evidence.position"
    )
    candidates: Mapped[list[LookupCandidate]] = relationship(
        cascade="all, delete-orphan", order_by="LookupCandidate.score.desc()"
    )


class Evidence(Base):
    """One image of a violation. Its bytes are ``size`` bytes at ``file_offset`` in the evidence
    store's file ``file_sha256``: the violation's bundle (all its images, one file) since
    revision 0003, the image's own file (offset 0) before. Missing images: ``"0" * 64``."""

    __tablename__ = "evidence"
    __table_args__ = (UniqueConstraint("violation_id", "position", name="uq_evidence_position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # evidence | plate | crop
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sha256: Mapped[str] = mapped_column(String(64))  # of the bytes received
    file_sha256: Mapped[str] = mapped_column(String(64), index=True)
    file_offset: Mapped[int] = mapped_column(Integer, default=0)
    declared_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    content_type: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    intact: Mapped[bool] = mapped_column(Boolean)
    meta_json: Mapped[str] = mapped_column(Text, default="{}")

    violation: Mapped[Violation] = relationship(back_populates="evidence")


class LookupCandidate(Base):
    """A registration within one OCR confusion or one edit of the plate, for the reviewer."""

    __tablename__ = "lookup_candidates"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="CASCADE"), index=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("vehicles.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # exact | confusion | edit
    score: Mapped[float] = mapped_column(Double)

    vehicle: Mapped[Vehicle] = relationship()


class Review(Base):
    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    violation_id: Mapped[int] = mapped_column(ForeignKey("violations.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    from_status: Mapped[str] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    at: Mapped[float] = mapped_column(Double, default=now)

    user: Mapped[User] = relationship()


class AuditEntry(Base):
    """Append-only (database triggers refuse UPDATE and DELETE): who did what, when, before/after."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_object", "object_type", "object_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Double, default=now, index=True)
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # no FK: outlives anything
    username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    before_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    after_json: Mapped[str | None] = mapped_column(Text, nullable=True)


class ApiToken(Base):
    """A bearer token for the REST API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[float] = mapped_column(Double, default=now)
    revoked_at: Mapped[float | None] = mapped_column(Double, nullable=True)

    user: Mapped[User] = relationship()


class WebSession(Base):
    """One logged-in browser session; the cookie holds the random id, this row its SHA-256.
    Deleting the row ends the session (logout, deactivation, password change)."""

    __tablename__ = "web_sessions"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[float] = mapped_column(Double, default=now)
    expires_at: Mapped[float] = mapped_column(Double, index=True)
    address: Mapped[str] = mapped_column(String(64), default="")


class Clip(Base):
    """A violation's evidence clip, filed by event id: the camera sends it after the candidate,
    so it may arrive before or after the violation itself. Its bytes are the store's file
    ``sha256``; ``integrity`` is its own verdict (camera signature, SHA-256)."""

    __tablename__ = "clips"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    camera_id: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[float] = mapped_column(Double, default=now)
    name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))  # of the bytes received (their file in the store)
    declared_sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    integrity: Mapped[str] = mapped_column(String(16))
    integrity_detail: Mapped[str] = mapped_column(Text, default="")
    meta_json: Mapped[str] = mapped_column(Text, default="{}")


class ServiceStatus(Base):
    """Last retained online/offline status seen per service instance."""

    __tablename__ = "service_status"

    service: Mapped[str] = mapped_column(String(64), primary_key=True)
    instance: Mapped[str] = mapped_column(String(128), primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[float] = mapped_column(Double, default=now)
