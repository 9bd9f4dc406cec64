"""The SQLite engine on real files: processes opening one new database at once all succeed."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from multiprocessing.synchronize import Barrier
from pathlib import Path

from lut.db import make_engine

ROUNDS, PROCESSES = 40, 4


def _journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


def test_switch_to_wal_waits_for_a_writer_instead_of_failing(tmp_path: Path) -> None:
    """A connection switching a file to WAL while another holds its write lock gets
    SQLITE_BUSY at once from SQLite (no busy handler); the engine waits for the lock."""
    path = tmp_path / "lut.db"
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("CREATE TABLE t (x INTEGER)")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO t VALUES (1)")
    outcome: list[BaseException | None] = []

    def open_engine() -> None:
        try:
            engine = make_engine(f"sqlite:///{path}")
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT count(*) FROM t").scalar()
            engine.dispose()
            outcome.append(None)
        except BaseException as exc:  # reported to the test's thread below
            outcome.append(exc)

    opener = threading.Thread(target=open_engine)
    opener.start()
    opener.join(timeout=0.5)  # long enough for an immediate SQLITE_BUSY to surface
    writer.execute("COMMIT")
    writer.close()
    opener.join(timeout=60)
    assert outcome == [None]
    assert _journal_mode(path) == "wal"


def _open_each(urls: list[str], barrier: Barrier, errors: multiprocessing.Queue) -> None:
    for url in urls:
        barrier.wait()
        try:
            engine = make_engine(url)
            with engine.connect() as connection:
                connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            engine.dispose()
        except Exception as exc:
            errors.put(f"{url}: {exc}")


def test_processes_opening_a_new_database_together_all_succeed(tmp_path: Path) -> None:
    """The workers of one deployment started at the same instant, one fresh file per round."""
    urls = [f"sqlite:///{tmp_path / f'round{i}.db'}" for i in range(ROUNDS)]
    ctx = multiprocessing.get_context("spawn")
    barrier, errors = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [ctx.Process(target=_open_each, args=(urls, barrier, errors)) for _ in range(PROCESSES)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    failures = [errors.get() for _ in range(errors.qsize())]
    assert failures == [] and [p.exitcode for p in procs] == [0] * PROCESSES
    assert {_journal_mode(tmp_path / f"round{i}.db") for i in range(ROUNDS)} == {"wal"}
