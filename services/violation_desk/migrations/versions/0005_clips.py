"""Evidence clips: the camera's short video of each violation, filed by event id (it arrives
after the violation's stills, on its own topic). A violation may be ``not_enforceable`` (the
camera marks one after an amber shorter than its minimum).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
STATUSES = "'queued', 'approved', 'rejected', 'escalated'"


def _statuses(old: str, new: str) -> None:
    """Widen (or narrow back) the status CHECK. PostgreSQL: drop and re-add. SQLite: rewrite
    the table's schema text in place (SQLite's documented way to change a CHECK constraint):
    re-creating the table, as Alembic's batch mode does, would cascade-delete the evidence."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        op.drop_constraint("ck_violations_status", "violations", type_="check")
        op.create_check_constraint("ck_violations_status", "violations", f"status IN ({new})")
        return
    sql = bind.exec_driver_sql("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'violations'").scalar()
    before, after = f"status IN ({old})", f"status IN ({new})"
    if sql.count(before) != 1:
        raise RuntimeError(f"violations: status CHECK not found as {before!r}; not changing the schema")
    version = bind.exec_driver_sql("PRAGMA schema_version").scalar()
    bind.exec_driver_sql("PRAGMA writable_schema = ON")
    bind.exec_driver_sql("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = 'violations'",
                         (sql.replace(before, after),))
    bind.exec_driver_sql(f"PRAGMA schema_version = {int(version) + 1}")
    bind.exec_driver_sql("PRAGMA writable_schema = OFF")


def upgrade() -> None:
    _statuses(STATUSES, STATUSES + ", 'not_enforceable'")
    op.create_table(
        "clips",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("camera_id", sa.String(64), nullable=False),
        sa.Column("received_at", sa.Double, nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("declared_sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("integrity", sa.String(16), nullable=False),
        sa.Column("integrity_detail", sa.Text, nullable=False),
        sa.Column("meta_json", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("clips")
    op.execute("UPDATE violations SET status = 'rejected' WHERE status = 'not_enforceable'")
    _statuses(STATUSES + ", 'not_enforceable'", STATUSES)
