"""Evidence bundles: a violation's images are stored as one file (one file created per violation
instead of one per image); each evidence row names its file and its byte range in it. Rows
written before this revision keep their own files (``file_sha256 = sha256``, offset 0).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("evidence") as batch:
        batch.add_column(sa.Column("file_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("file_offset", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE evidence SET file_sha256 = sha256")
    with op.batch_alter_table("evidence") as batch:
        batch.alter_column("file_sha256", existing_type=sa.String(64), nullable=False)
        batch.alter_column("file_offset", existing_type=sa.Integer, server_default=None)
        batch.drop_index("ix_evidence_sha256")  # retention now looks files up by file_sha256
        batch.create_index("ix_evidence_file_sha256", ["file_sha256"])


def downgrade() -> None:
    bundled = op.get_bind().execute(sa.text(
        "SELECT count(*) FROM evidence WHERE file_sha256 <> sha256 OR file_offset <> 0")).scalar()
    if bundled:
        raise RuntimeError(f"{bundled} evidence rows live in bundles; revision 0002 cannot read them")
    with op.batch_alter_table("evidence") as batch:
        batch.drop_index("ix_evidence_file_sha256")
        batch.create_index("ix_evidence_sha256", ["sha256"])
        batch.drop_column("file_offset")
        batch.drop_column("file_sha256")
