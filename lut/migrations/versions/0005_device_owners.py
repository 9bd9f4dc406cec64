"""Device ownership: every device name belongs to one tenant (`device_owners`), which may share
it with others (`device_shares`); agent tasks record the tenant whose job asked for them.

Existing names go to the tenant of their earliest agent, or to the operator's tenant ("default")
when only the command line profiled them; existing tasks take their job's tenant.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

OPERATOR_TENANT = "default"  # lut.store.OPERATOR_TENANT when this revision was written


def upgrade() -> None:
    owners = op.create_table(
        "device_owners",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "device_shares",
        sa.Column(
            "name",
            sa.String(100),
            sa.ForeignKey("device_owners.name", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("tenant", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", "tenant", name="pk_device_shares"),
    )
    with op.batch_alter_table("agent_tasks") as batch:
        batch.add_column(sa.Column("tenant", sa.String(64), nullable=True))

    connection = op.get_bind()
    devices = sa.table("devices", sa.column("name"))
    agents = sa.table("agents", sa.column("name"), sa.column("tenant"), sa.column("created_at"))
    first_agent: dict[str, str] = {}
    for name, tenant in connection.execute(
        sa.select(agents.c.name, agents.c.tenant).order_by(agents.c.created_at)
    ):
        first_agent.setdefault(name, tenant)
    now = datetime.now(UTC)
    rows = [
        {"name": name, "tenant": first_agent.get(name, OPERATOR_TENANT), "created_at": now}
        for name in connection.execute(sa.select(devices.c.name).distinct()).scalars()
    ]
    if rows:
        op.bulk_insert(owners, rows)

    tasks = sa.table("agent_tasks", sa.column("tenant"), sa.column("job_id"))
    jobs = sa.table("jobs", sa.column("id"), sa.column("tenant"))
    job_tenant = sa.select(jobs.c.tenant).where(jobs.c.id == tasks.c.job_id).scalar_subquery()
    connection.execute(
        sa.update(tasks).where(tasks.c.job_id.is_not(None)).values(tenant=job_tenant)
    )


def downgrade() -> None:
    with op.batch_alter_table("agent_tasks") as batch:
        batch.drop_column("tenant")
    op.drop_table("device_shares")
    op.drop_table("device_owners")
