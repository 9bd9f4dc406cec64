"""The service's tables (SQLAlchemy Core), in the same database as the LUT: API keys, uploaded
datasets, jobs (the job queue itself) and their progress events. Created by migration 0002."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

ID_CHARS = 32  # uuid4 hex

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(ID_CHARS), primary_key=True),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("tenant", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", String(ID_CHARS), primary_key=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("name", String(200), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("format", String(10), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("summary", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("tenant", "content_hash", name="uq_dataset_content"),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", String(ID_CHARS), primary_key=True),
    Column("tenant", String(64), nullable=False, index=True),
    Column("key_id", String(ID_CHARS), nullable=False),
    Column("state", String(20), nullable=False, index=True),
    Column("request", JSON, nullable=False),
    Column("dataset_id", String(ID_CHARS), nullable=True),
    Column("progress", JSON, nullable=False),
    Column("metrics", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("cancel_requested", Boolean, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker_id", String(100), nullable=True),
    Column("lease_expires_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    Column("export_files", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=True),
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", String(ID_CHARS), ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("type", String(32), nullable=False),
    Column("data", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
