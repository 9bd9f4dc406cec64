"""Property-based tests of the whole API from its own /openapi.json (schemathesis), with a valid
user key: no server errors, every status and body as documented (positive_data_acceptance
excluded: requests naming a space, device or dataset that does not exist, or an upload that is not
a dataset, are schema-valid and still refused with 422)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.fixtures import (
    Server,
    run_schemathesis,
    seed_synthetic_lut,
    service_env,
    start_server,
    stop_process,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    env = service_env(home, HWNAS_MAX_UPLOAD_BYTES="100000")
    seed_synthetic_lut(f"sqlite:///{home / 'hwnas.db'}", "cpu-synth")
    base_url, process = start_server(env)
    try:
        yield Server(base_url, env, process)
    finally:
        stop_process(process)


def test_schemathesis_finds_no_failures(server: Server, tmp_path: Path) -> None:
    run_schemathesis(server.base_url, server.key("user"), tmp_path, max_examples=12)
