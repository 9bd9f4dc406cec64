"""End-to-end measurements keep their `extra` (how they were taken: backend, cache file, the
drift reference's raw sample pairs), as op measurements do.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("e2e_measurements") as batch:
        batch.add_column(sa.Column("extra", sa.JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("e2e_measurements") as batch:
        batch.drop_column("extra")
