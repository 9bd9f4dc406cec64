"""Bring a LUT database to the newest schema with Alembic, safely from several processes."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

MIGRATIONS = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 0x6877_6E61  # "hwna": serialises concurrent migrations on PostgreSQL


def current_revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


@cache
def head_revision() -> str:
    """The newest revision in `migrations/versions` (one linear chain: 0001, 0002_..., ...)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations under {MIGRATIONS}")
    return head


def migrate(engine: Engine) -> None:
    """Upgrade to head. One transaction: BEGIN IMMEDIATE on SQLite, an advisory lock on
    PostgreSQL, so a second process waits and then finds the schema current."""
    with engine.connect() as probe:
        if current_revision(probe) == head_revision():
            return
    from alembic import command
    from alembic.config import Config

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        if current_revision(connection) == head_revision():
            return
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
