"""Property-based tests of the whole API from its own /openapi.json (schemathesis), with a valid
user key: no server errors, every status and body as documented."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service_fixtures import (
    Server,
    seed_synthetic_lut,
    service_env,
    start_server,
    stop_process,
)

# Requests naming a space, device or dataset that does not exist, or an upload that is not a
# dataset, are schema-valid and still refused (422): positive_data_acceptance cannot hold.
EXCLUDED_CHECKS = "positive_data_acceptance"


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
    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli is not None, "schemathesis is a test dependency"
    key = server.key("user")
    result = subprocess.run(
        [
            cli,
            "run",
            f"{server.base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {key}",
            "--checks",
            "all",
            "--exclude-checks",
            EXCLUDED_CHECKS,
            "--max-examples",
            "12",
            "--request-timeout",
            "20",
            "--workers",
            "1",
            "--seed",
            "1",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=500,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "server error" not in output.lower()
