"""The service's tables, in the same database as the LUT: API keys, uploaded datasets, jobs (the
job queue itself) and their progress events (SQLAlchemy Core, migration 0002); profiler agents
bound to the key that registered them and the tasks they pull — OpSpecs to measure, fixed costs,
or a whole exported model to time end to end (ORM, migrations 0003 and 0005)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

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
from sqlalchemy.orm import Mapped, mapped_column

from lut.db import Base, utcnow

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


TASK_KINDS = ("opspecs", "fixed_costs", "model")
TASK_STATES = ("pending", "claimed", "done", "failed")


class AgentRow(Base):
    """One running `hwnas agent`: a device LUT (name + fingerprint) measured by one key."""

    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("key_id", "device_id", name="uq_agent_key_device"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    tenant: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100), index=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    backend: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgentTaskRow(Base):
    """Work for the agents of one device LUT. `dedupe_key` makes creating a task idempotent."""

    __tablename__ = "agent_tasks"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(64), unique=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The tenant whose job asked for it: a model task goes only to agents serving that tenant.
    tenant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    claimed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
