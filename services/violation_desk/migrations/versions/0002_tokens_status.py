"""REST API tokens, last-seen service status, and the indexes retention/export and the queue's
camera + status filter use.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("user_id", BigId, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("revoked_at", sa.Double, nullable=True),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "service_status",
        sa.Column("service", sa.String(64), primary_key=True),
        sa.Column("instance", sa.String(128), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_index("ix_violations_decided", "violations", ["status", "decided_at"])
    op.create_index("ix_violations_camera_status", "violations", ["camera_id", "status", "crossed_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_violations_camera_status", table_name="violations")
    op.drop_index("ix_violations_decided", table_name="violations")
    op.drop_table("service_status")
    op.drop_table("api_tokens")
