"""The service's fixtures: a real `hwnas serve` for every test module that asks for one, on an
SQLite file or, parametrised, on the real PostgreSQL server too."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.fixtures import (
    Server,
    service_env,
    serving,
    synthetic_server,
)
from tests.service.fixtures import service_server as service_server


@pytest.fixture
def server_on_db(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """A server on `db_url`: a real SQLite file and real PostgreSQL."""
    overrides = {} if db_url.startswith("sqlite") else {"HWNAS_DATABASE_URL": db_url}
    with serving(service_env(tmp_path / "home", **overrides)) as server:
        yield server


@pytest.fixture
def server_with_lut(tmp_path: Path) -> Iterator[Server]:
    """A server (no workers) whose SQLite database holds the synthetic LUT of `cpu-synth`,
    profiled for 1-channel, 3-class inputs."""
    with synthetic_server(service_env(tmp_path / "home"), num_classes=3) as server:
        yield server
