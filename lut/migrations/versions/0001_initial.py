"""Initial LUT schema: devices, measurements, end-to-end measurements, calibrations.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _device_fk() -> sa.Column:
    return sa.Column(
        "device_id", sa.Integer, sa.ForeignKey("devices.id", ondelete="CASCADE"), nullable=False
    )


def _created(name: str = "created_at") -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "devices",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("backend", sa.String(50), nullable=False),
        sa.Column("fingerprint_hash", sa.String(40), nullable=False),
        sa.Column("fingerprint", sa.JSON, nullable=False),
        sa.Column("fixed_costs", sa.JSON, nullable=True),
        _created(),
        sa.UniqueConstraint("name", "fingerprint_hash", name="uq_device_fingerprint"),
    )
    op.create_index("ix_devices_name", "devices", ["name"])
    op.create_table(
        "measurements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _device_fk(),
        sa.Column("op_key", sa.String(40), nullable=False),
        sa.Column("opspec", sa.JSON, nullable=False),
        sa.Column("median_ms", sa.Float, nullable=False),
        sa.Column("mean_ms", sa.Float, nullable=False),
        sa.Column("p10_ms", sa.Float, nullable=False),
        sa.Column("p90_ms", sa.Float, nullable=False),
        sa.Column("std_ms", sa.Float, nullable=False),
        sa.Column("n", sa.Integer, nullable=False),
        sa.Column("warmup", sa.Integer, nullable=False),
        sa.Column("peak_memory_bytes", sa.BigInteger, nullable=True),
        sa.Column("samples_ms", sa.JSON, nullable=False),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("profiler_version", sa.String(20), nullable=False),
        _created(),
        sa.UniqueConstraint("device_id", "op_key", name="uq_measurement_op"),
    )
    op.create_index("ix_measurements_device_id", "measurements", ["device_id"])
    op.create_table(
        "e2e_measurements",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _device_fk(),
        sa.Column("arch_key", sa.String(40), nullable=False),
        sa.Column("arch", sa.Text, nullable=False),
        sa.Column("space", sa.String(100), nullable=False),
        sa.Column("median_ms", sa.Float, nullable=False),
        sa.Column("samples_ms", sa.JSON, nullable=False),
        sa.Column("warmup", sa.Integer, nullable=False),
        sa.Column("peak_memory_bytes", sa.BigInteger, nullable=True),
        _created(),
        sa.UniqueConstraint("device_id", "arch_key", name="uq_e2e_arch"),
    )
    op.create_index("ix_e2e_measurements_device_id", "e2e_measurements", ["device_id"])
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _device_fk(),
        sa.Column("space", sa.String(100), nullable=False),
        sa.Column("coefficients", sa.JSON, nullable=False),
        _created("fitted_at"),
        sa.UniqueConstraint("device_id", "space", name="uq_calibration_space"),
    )
    op.create_index("ix_calibrations_device_id", "calibrations", ["device_id"])


def downgrade() -> None:
    for table in ("calibrations", "e2e_measurements", "measurements", "devices"):
        op.drop_table(table)
