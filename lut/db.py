"""The LUT database schema (SQLAlchemy 2) and the engine factory.

SQLite is the embedded default: WAL journal, a busy timeout, and every transaction opened with
`BEGIN IMMEDIATE` so that two writers queue on the write lock instead of deadlocking on a
read-to-write lock upgrade. PostgreSQL is reached through the same URL setting.
"""

from __future__ import annotations

import random
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SQLITE_BUSY_TIMEOUT_MS = 30_000


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class DeviceRow(Base):
    """One LUT: a named target with one fingerprint (runtime, version, provider, threads...)."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("name", "fingerprint_hash", name="uq_device_fingerprint"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    backend: Mapped[str] = mapped_column(String(50))
    fingerprint_hash: Mapped[str] = mapped_column(String(40))
    fingerprint: Mapped[dict[str, Any]] = mapped_column(JSON)
    fixed_costs: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeviceOwnerRow(Base):
    """The tenant a device name belongs to: the first to register it (an agent) or profile it
    (the command line, as the operator's tenant). Every LUT of the name (one per fingerprint)
    shares it, so it is keyed by name and claimed atomically (insert-or-ignore) with the LUT."""

    __tablename__ = "device_owners"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DeviceShareRow(Base):
    """A device its owner shared with another tenant: that tenant's jobs may ask the device's
    agents to profile it and to time their models. Its agents stay the owner's."""

    __tablename__ = "device_shares"
    __table_args__ = (PrimaryKeyConstraint("name", "tenant", name="pk_device_shares"),)

    name: Mapped[str] = mapped_column(ForeignKey("device_owners.name", ondelete="CASCADE"))
    tenant: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MeasurementRow(Base):
    """The latency of one OpSpec on one device. Raw samples are kept."""

    __tablename__ = "measurements"
    __table_args__ = (UniqueConstraint("device_id", "op_key", name="uq_measurement_op"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    op_key: Mapped[str] = mapped_column(String(40))
    opspec: Mapped[dict[str, Any]] = mapped_column(JSON)
    median_ms: Mapped[float] = mapped_column(Float)
    mean_ms: Mapped[float] = mapped_column(Float)
    p10_ms: Mapped[float] = mapped_column(Float)
    p90_ms: Mapped[float] = mapped_column(Float)
    std_ms: Mapped[float] = mapped_column(Float)
    n: Mapped[int] = mapped_column(Integer)
    warmup: Mapped[int] = mapped_column(Integer)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    samples_ms: Mapped[list[float]] = mapped_column(JSON)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    profiler_version: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EndToEndRow(Base):
    """A whole network measured on a device: what calibrations are fitted on."""

    __tablename__ = "e2e_measurements"
    __table_args__ = (UniqueConstraint("device_id", "arch_key", name="uq_e2e_arch"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    arch_key: Mapped[str] = mapped_column(String(40))
    arch: Mapped[str] = mapped_column(Text)
    space: Mapped[str] = mapped_column(String(100))
    median_ms: Mapped[float] = mapped_column(Float)
    samples_ms: Mapped[list[float]] = mapped_column(JSON)
    warmup: Mapped[int] = mapped_column(Integer)
    peak_memory_bytes: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    extra: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class CalibrationRow(Base):
    """Per-device (and per-space) correction of the LUT sum, fitted on end-to-end runs."""

    __tablename__ = "calibrations"
    __table_args__ = (UniqueConstraint("device_id", "space", name="uq_calibration_space"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"), index=True)
    space: Mapped[str] = mapped_column(String(100))
    coefficients: Mapped[dict[str, Any]] = mapped_column(JSON)
    fitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and immediate transactions."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True, future=True)


def _sqlite_engine(url: str) -> Engine:
    path = url.split("///", 1)[1] if "///" in url else ""
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _switch_to_wal(cursor: Any) -> None:
    """`PRAGMA journal_mode=WAL`, retried while the database is locked, up to the busy timeout.

    The first switch of a file rewrites its header: SQLite reads it, then upgrades to a write
    lock, and when another connection holds that lock (one switching at the same moment, or a
    migration) it answers SQLITE_BUSY at once without calling the busy handler, since waiting
    while holding a read lock could deadlock. Processes opening a new database together (two
    workers started at once) meet this, so the switch is retried after a short random pause.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(random.uniform(0.005, 0.05))
