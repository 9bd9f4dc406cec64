"""Profiler agents and their tasks.

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


def _device_fk() -> sa.Column:
    return sa.Column(
        "device_id", sa.Integer, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(100), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        _device_fk(),
        sa.Column("backend", sa.String(50), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("key_id", "device_id", name="uq_agent_key_device"),
    )
    op.create_index("ix_agents_key_id", "agents", ["key_id"])
    op.create_index("ix_agents_name", "agents", ["name"])
    op.create_index("ix_agents_device_id", "agents", ["device_id"])
    op.create_table(
        "agent_tasks",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("dedupe_key", sa.String(64), nullable=False, unique=True),
        _device_fk(),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("job_id", sa.String(64), nullable=True),
        sa.Column("claimed_by", sa.String(32), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_agent_tasks_device_id", "agent_tasks", ["device_id"])
    op.create_index("ix_agent_tasks_status", "agent_tasks", ["status"])


def downgrade() -> None:
    op.drop_table("agent_tasks")
    op.drop_table("agents")
