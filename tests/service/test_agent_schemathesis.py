"""Property-based tests of the agent, device and LUT routes from /openapi.json (schemathesis) with
the keys that can reach them — an agent key (with a registered agent and queued tasks, so its
routes get past 404) and an admin key (LUT imports): no server errors, statuses and bodies as
documented. (test_service_schemathesis.py runs the whole API with a user key.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lut.store import LutStore
from profilers.agent.wire import PROTOCOL_HEADER, PROTOCOL_VERSION
from service.crud.agent_tasks import create_opspec_tasks
from tests.service.agent_helpers import measured_specs, tiny_space
from tests.service.fixtures import Server, run_schemathesis, service_env, start_server, stop_process

# positive_data_acceptance is excluded (run_schemathesis): schema-valid requests naming a space
# header with a repeated parameter, or results that do not match the task, are refused (422).
AGENT_PATHS = "^/(agents|devices|luts)"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = service_env(tmp_path / "home")
    base_url, process = start_server(env)
    try:
        yield Server(base_url, env, process)
    finally:
        stop_process(process)


def _schemathesis(server: Server, key: str, cwd: Path) -> str:
    extra = ("--include-path-regex", AGENT_PATHS)
    extra += ("--header", f"{PROTOCOL_HEADER}: {PROTOCOL_VERSION}")
    return run_schemathesis(server.base_url, key, cwd, max_examples=15, extra=extra)


@pytest.mark.timeout(900)
def test_agent_and_admin_routes_hold_their_schema(server: Server, tmp_path: Path) -> None:
    agent_key = server.key("agent")
    registered = httpx.post(
        f"{server.base_url}/agents/register",
        headers={"Authorization": f"Bearer {agent_key}", PROTOCOL_HEADER: str(PROTOCOL_VERSION)},
        json={"name": "fuzzed", "fingerprint": {"backend": "onnxruntime", "threads": 1}},
        timeout=30,
    )
    assert registered.status_code == 200, registered.text
    store = LutStore(f"sqlite:///{tmp_path / 'home' / 'hwnas.db'}")
    try:
        device = store.resolve_device("fuzzed")
        create_opspec_tasks(store, device, measured_specs(tiny_space()), 2, None)
    finally:
        store.close()
    _schemathesis(server, agent_key, tmp_path)
    _schemathesis(server, server.key("admin"), tmp_path)
