"""Helpers of the agent tests: a tiny search space, `hwnas agent` processes, a stage context on
the server's database, servers restarted on the same port."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lut.opspec import OpSpec
from lut.store import LutStore
from search.spaces.base import SearchSpace, SpaceDef, StageDef
from search.spaces.grammar import SpaceParams
from service.config import Settings
from service.worker.context import StageContext
from tests.service.fixtures import REPO, start_server

# 2 searchable layers (2 candidates each, one a skip): 7 distinct ops to measure, so an agent
# profiles the whole space in well under a minute with the quick protocol.
TINY = SpaceDef(
    name="agent-tiny",
    description="two searchable layers for agent tests",
    stem_channels=8,
    stem_stride=2,
    stages=(
        StageDef(8, 1, 1, ("ir_k3_e1", "skip")),
        StageDef(16, 1, 2, ("ir_k3_e1", "ir_k5_e1")),
    ),
    head_channels=32,
    defaults=SpaceParams(resolution=16, width_mult=1.0, in_channels=1, num_classes=4),
)


def tiny_space() -> SearchSpace:
    return SearchSpace(TINY)


def measured_specs(space: SearchSpace) -> list[OpSpec]:
    return [s for s in space.distinct_opspecs() if not s.is_identity]


def start_agent(
    env: dict[str, str],
    server: str,
    key: str,
    name: str,
    log: Path,
    *extra: str,
    home: Path | None = None,
    backend: str = "onnxruntime",
) -> subprocess.Popen[bytes]:
    """A real `hwnas agent` process (quick protocol); `home` holds its cache of converted
    models (its own by default)."""
    agent_home = home or log.parent / f"agent-{name}"
    agent_env = {**env, "HWNAS_HOME": str(agent_home), "HWNAS_AGENT_KEY": key}
    command = [sys.executable, "-m", "service.cli", "agent", "--server", server]
    command += ["--name", name, "--backend", backend, "--quick", "--poll", "0.2", *extra]
    return subprocess.Popen(
        command, env=agent_env, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )


def serve_on(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    """`hwnas serve` on a given port (a restart keeps the URL agents know); waits for /health."""
    return start_server(env, log, port=port)[1]


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, log: Path | None = None
) -> Any:
    """`condition()`'s first truthy value within `timeout` s; on timeout, an AssertionError
    naming `what` (with the end of `log`, a process's output, where given)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    tail = f": {log.read_text()[-3000:]}" if log is not None else ""
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{tail}")


def stage_context(
    store: LutStore,
    space: SearchSpace,
    devices: list[str],
    run_dir: Path,
    events: list[dict[str, Any]],
    *,
    tenant: str = "default",
    **settings: Any,
) -> StageContext:
    values = {"home": run_dir / "home", "database_url": store.url, "poll_s": 0.2, **settings}
    return StageContext(
        engine=store.engine,
        store=store,
        settings=Settings(**values),
        job_id="job-" + run_dir.name[-20:],
        tenant=tenant,
        space=space,
        devices=devices,
        run_dir=run_dir,
        emit=events.append,
    )
