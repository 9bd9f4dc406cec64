"""Service tables: API keys, datasets, jobs (the queue) and job events.

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


def _id(name: str = "id", *args: object, **kwargs: object) -> sa.Column:
    return sa.Column(name, sa.String(32), *args, **kwargs)  # type: ignore[arg-type]


def _time(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        _id(primary_key=True),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("tenant", sa.String(64), nullable=False),
        _time("created_at"),
        _time("revoked_at", nullable=True),
    )
    op.create_table(
        "datasets",
        _id(primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        _time("created_at"),
        sa.UniqueConstraint("tenant", "content_hash", name="uq_dataset_content"),
    )
    op.create_index("ix_datasets_tenant", "datasets", ["tenant"])
    op.create_table(
        "jobs",
        _id(primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        _id("key_id", nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        _id("dataset_id", nullable=True),
        sa.Column("progress", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("worker_id", sa.String(100), nullable=True),
        _time("lease_expires_at", nullable=True),
        _time("heartbeat_at", nullable=True),
        sa.Column("export_files", sa.JSON, nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("finished_at", nullable=True),
    )
    op.create_index("ix_jobs_tenant", "jobs", ["tenant"])
    op.create_index("ix_jobs_state", "jobs", ["state"])
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _id("job_id", sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        _time("created_at"),
    )
    op.create_index("ix_job_events_job_id", "job_events", ["job_id", "id"])


def downgrade() -> None:
    for table in ("job_events", "jobs", "datasets", "api_keys"):
        op.drop_table(table)
