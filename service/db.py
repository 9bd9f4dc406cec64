"""Engines of the API process. Writes go through the LUT store's engine (on SQLite every
transaction there begins IMMEDIATE, taking the write lock); reads of the REST routes use a
second engine whose SQLite connections run each SELECT on its own WAL snapshot, so polling
clients never queue behind writers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event

from lut.db import SQLITE_BUSY_TIMEOUT_MS


def read_engine(url: str, write_engine: Engine) -> Engine:
    """A read-only engine for `url` on SQLite; the write engine itself elsewhere (PostgreSQL
    readers do not block on writers)."""
    if not url.startswith("sqlite"):
        return write_engine
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # autocommit: no BEGIN, no lock held
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA query_only=ON")
        cursor.close()

    return engine
