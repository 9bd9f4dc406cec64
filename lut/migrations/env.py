"""Alembic environment for the LUT database; run through `lut.migrate.migrate(engine)`."""

from __future__ import annotations

from alembic import context

from lut.db import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through lut.migrate.migrate(engine)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
