"""Initial desk schema: cameras and keys, registry, users, violations, evidence, lookup
candidates, reviews and the append-only audit log.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

_AUDIT_GUARDS_SQLITE = [
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
]
_AUDIT_GUARDS_PG = [
    "CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$",
    "CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()",
]


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_table(
        "camera_keys",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("camera_id", sa.String(64), sa.ForeignKey("cameras.id", ondelete="CASCADE"), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False, unique=True),
        sa.Column("public_key_pem", sa.Text, nullable=False),
        sa.Column("added_at", sa.Double, nullable=False),
        sa.Column("revoked_at", sa.Double, nullable=True),
    )
    op.create_index("ix_camera_keys_camera_id", "camera_keys", ["camera_id"])
    op.create_table(
        "vehicles",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("plate_norm", sa.String(16), nullable=False),
        sa.Column("plate", sa.String(32), nullable=False),
        sa.Column("region", sa.String(16), nullable=False),
        sa.Column("make", sa.String(64), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("colour", sa.String(32), nullable=False),
        sa.Column("vehicle_class", sa.String(32), nullable=False),
        sa.Column("owner_name", sa.String(200), nullable=False),
        sa.Column("owner_address", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.UniqueConstraint("plate_norm", "region", name="uq_vehicles_plate_region"),
    )
    op.create_index("ix_vehicles_plate_norm", "vehicles", ["plate_norm"])
    op.create_table(
        "registry_keys",
        sa.Column("key", sa.String(16), primary_key=True),
        sa.Column("vehicle_id", BigId, sa.ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True),
    )
    op.create_table(
        "users",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("session_version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.CheckConstraint("role IN ('reviewer', 'supervisor', 'admin')", name="ck_users_role"),
    )
    op.create_table(
        "violations",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("camera_id", sa.String(64), sa.ForeignKey("cameras.id"), nullable=False),
        sa.Column("track_id", sa.Integer, nullable=False),
        sa.Column("vehicle_class", sa.String(32), nullable=False),
        sa.Column("vehicle_colour", sa.String(32), nullable=True),
        sa.Column("lane", sa.String(32), nullable=True),
        sa.Column("crossed_at", sa.Double, nullable=False),
        sa.Column("detected_at", sa.Double, nullable=False),
        sa.Column("read_at", sa.Double, nullable=True),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("frame_index", sa.Integer, nullable=False),
        sa.Column("video_time_s", sa.Double, nullable=True),
        sa.Column("signal_phase", sa.String(16), nullable=False),
        sa.Column("time_into_red_s", sa.Double, nullable=False),
        sa.Column("speed_px_s", sa.Double, nullable=True),
        sa.Column("plate_read", sa.String(32), nullable=True),
        sa.Column("plate_confidence", sa.Double, nullable=True),
        sa.Column("plate_region", sa.String(16), nullable=True),
        sa.Column("read_engine", sa.String(32), nullable=True),
        sa.Column("plate_norm", sa.String(16), nullable=True),
        sa.Column("plate_corrected", sa.Boolean, nullable=False),
        sa.Column("vehicle_id", BigId, sa.ForeignKey("vehicles.id", ondelete="SET NULL"), nullable=True),
        sa.Column("match_kind", sa.String(16), nullable=False),
        sa.Column("clone_flag", sa.Boolean, nullable=False),
        sa.Column("clone_reason", sa.Text, nullable=True),
        sa.Column("integrity", sa.String(16), nullable=False),
        sa.Column("integrity_detail", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reject_reason", sa.Text, nullable=True),
        sa.Column("decided_at", sa.Double, nullable=True),
        sa.Column("decided_by", BigId, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("claimed_by", BigId, sa.ForeignKey("users.id"), nullable=True),
        sa.Column("claimed_until", sa.Double, nullable=True),
        sa.Column("message_json", sa.Text, nullable=False),
        sa.CheckConstraint("status IN ('queued', 'approved', 'rejected', 'escalated')", name="ck_violations_status"),
        sa.CheckConstraint("integrity IN ('verified', 'unverified', 'tampered')", name="ck_violations_integrity"),
    )
    op.create_index("ix_violations_queue", "violations", ["status", "crossed_at", "id"])
    op.create_index("ix_violations_camera", "violations", ["camera_id", "crossed_at", "id"])
    op.create_index("ix_violations_time", "violations", ["crossed_at", "id"])
    # pattern ops: the queue's plate filter is a prefix LIKE, whatever the collation
    op.create_index("ix_violations_plate", "violations", ["plate_norm", "crossed_at", "id"],
                    postgresql_ops={"plate_norm": "varchar_pattern_ops"})
    op.create_table(
        "evidence",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("violation_id", BigId, sa.ForeignKey("violations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(32), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("declared_sha256", sa.String(64), nullable=True),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("intact", sa.Boolean, nullable=False),
        sa.Column("meta_json", sa.Text, nullable=False),
        sa.UniqueConstraint("violation_id", "position", name="uq_evidence_position"),
    )
    op.create_index("ix_evidence_sha256", "evidence", ["sha256"])
    op.create_table(
        "lookup_candidates",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("violation_id", BigId, sa.ForeignKey("violations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("vehicle_id", BigId, sa.ForeignKey("vehicles.id", ondelete="CASCADE"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("score", sa.Double, nullable=False),
    )
    op.create_index("ix_lookup_candidates_violation_id", "lookup_candidates", ["violation_id"])
    op.create_table(
        "reviews",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("violation_id", BigId, sa.ForeignKey("violations.id", ondelete="CASCADE"), nullable=False),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("from_status", sa.String(16), nullable=False),
        sa.Column("to_status", sa.String(16), nullable=False),
        sa.Column("at", sa.Double, nullable=False),
    )
    op.create_index("ix_reviews_violation_id", "reviews", ["violation_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("user_id", sa.Integer, nullable=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(32), nullable=False),
        sa.Column("object_id", sa.String(64), nullable=False),
        sa.Column("before_json", sa.Text, nullable=True),
        sa.Column("after_json", sa.Text, nullable=True),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_object", "audit_log", ["object_type", "object_id"])
    guards = _AUDIT_GUARDS_PG if op.get_bind().dialect.name == "postgresql" else _AUDIT_GUARDS_SQLITE
    for statement in guards:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log")
        op.execute("DROP TRIGGER IF EXISTS audit_log_no_change ON audit_log")
        op.execute("DROP FUNCTION IF EXISTS audit_log_append_only()")
    for table in ("audit_log", "reviews", "lookup_candidates", "evidence", "violations", "users",
                  "registry_keys", "vehicles", "camera_keys", "cameras"):
        op.drop_table(table)
