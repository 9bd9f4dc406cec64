"""Bring a LUT database to the newest schema with Alembic, safely from several processes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0001"
_PG_LOCK_ID = 0x6877_6E61  # "hwna": serialises concurrent migrations on PostgreSQL


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine: Engine) -> None:
    """Upgrade to head. One transaction: BEGIN IMMEDIATE on SQLite, an advisory lock on
    PostgreSQL, so a second process waits and then finds the schema current."""
    with engine.connect() as probe:
        if current_revision(probe) == HEAD:
            return
    from alembic import command
    from alembic.config import Config

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        if current_revision(connection) == HEAD:
            return
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
