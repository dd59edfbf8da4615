"""Registry plates in byte order on PostgreSQL, without a redundant index.

- PostgreSQL: ``vehicles.plate_norm`` and ``registry_keys.key`` compare in byte order
  (``COLLATE "C"``). They hold A-Z and 0-9 only, where byte order is alphabetical order; a
  database created under a language locale (``en_US.UTF-8``, even ``C.UTF-8``) would otherwise
  sort and index them with the much slower locale comparison (registry imports sort millions).
- ``ix_vehicles_plate_norm`` goes: the unique (plate_norm, region) index starts with the same
  column and serves every query that used it.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _collate(collation: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite compares TEXT byte by byte already (BINARY)
    op.execute(f'ALTER TABLE vehicles ALTER COLUMN plate_norm TYPE varchar(16) COLLATE "{collation}"')
    op.execute(f'ALTER TABLE registry_keys ALTER COLUMN key TYPE varchar(16) COLLATE "{collation}"')


def upgrade() -> None:
    op.drop_index("ix_vehicles_plate_norm", table_name="vehicles")
    _collate("C")


def downgrade() -> None:
    _collate("default")
    op.create_index("ix_vehicles_plate_norm", "vehicles", ["plate_norm"])
