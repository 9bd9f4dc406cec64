"""The thin agent as a user installs it: `scripts/setup-agent.sh` builds a virtual environment with
the agent, numpy, httpx and the runtimes only (torch, JAX, SQLAlchemy and FastAPI cannot be
imported there); its `hwnas-agent` profiles fbnet-tiny against a real server, from the files the
server converted, into a LUT that agrees with profiling the same ops locally."""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from lut.measurement import Measurement
from lut.predictor import KERNEL_TIMING
from lut.store import LutStore
from profilers.base import create_backend
from profilers.protocol import QUICK
from profilers.runner import profile_specs
from profilers.timers.ort import KERNEL_TIMING_MIN_MS
from search.spaces.base import space_from_string
from service.worker.agent_stages import profiling_stage
from service.worker.context import StageContext
from tests.service.fixtures import REPO, Server
from tests.service.fixtures import service_server as service_server  # the server fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
SPACE = "fbnet-tiny"
HEAVY = ("torch", "jax", "sqlalchemy", "fastapi", "litert_torch", "platformdirs")


@pytest.fixture(scope="module")
def thin_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent's environment as scripts/setup-agent.sh builds it (pip installs the runtimes
    from the configured index, as CI installs everything else)."""
    venv = tmp_path_factory.mktemp("thin") / "agent"
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(
        ["./scripts/setup-agent.sh", str(venv), "--runtimes", "onnxruntime,litert"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return venv


def test_the_thin_venv_holds_the_agent_and_its_runtimes_only(thin_venv: Path) -> None:
    python = str(thin_venv / "bin" / "python")
    for module in HEAVY:
        found = subprocess.run([python, "-c", f"import {module}"], capture_output=True, text=True)
        assert found.returncode != 0 and "No module named" in found.stderr, module
    probe = (
        "import sys, onnxruntime, ai_edge_litert.interpreter, profilers.agent.main, "
        "profilers.timers.ort, profilers.timers.litert, profilers.agent.client, "
        "profilers.agent.adb, profilers.fixed_costs; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('search', 'service', "
        "'deploy', 'torch')))"
    )
    imported = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    assert imported.stdout.strip() == "[]"
    usage = subprocess.run(
        [str(thin_venv / "bin" / "hwnas-agent"), "--help"], capture_output=True, text=True
    )
    assert usage.returncode == 0 and "--server" in usage.stdout


def test_thin_agent_profiles_fbnet_tiny_like_local_profiling(
    thin_venv: Path, service_server: Server, tmp_path: Path
) -> None:
    server = service_server
    """Both with the quick protocol and the LUT's drift reference (the local run measures in
    the agent LUT's unit), so the two runs, minutes apart on a shared machine, compare."""
    log = tmp_path / "agent.log"
    command = [str(thin_venv / "bin" / "hwnas-agent"), "--server", server.base_url]
    command += ["--name", "thin-cpu", "--backend", "onnxruntime", "--quick", "--poll", "0.2"]
    command += ["--drift-reference", "--cache", str(tmp_path / "agent-cache")]
    agent_env = {"PATH": os.environ["PATH"], "HWNAS_AGENT_KEY": server.key("agent")}
    agent = subprocess.Popen(
        command, env=agent_env, cwd=tmp_path, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    store = LutStore(f"sqlite:///{tmp_path / 'home' / 'hwnas.db'}")
    space = space_from_string(SPACE)
    try:
        _wait_for_registration(store, agent, log)
        ctx = StageContext(
            engine=store.engine,
            store=store,
            settings=_settings(server, agent_wait_s=300),
            job_id="thin-agent-test",
            tenant="default",
            space=space,
            devices=["thin-cpu"],
            run_dir=tmp_path / "run",
        )
        profiling_stage(ctx)  # converts on this "worker", waits for the agent to measure all
        device = store.resolve_device("thin-cpu")
        assert device.fingerprint["conversion"] == "server"
        assert device.fingerprint["converter"].startswith("torch ")
        assert device.fixed_costs is not None and device.fixed_costs.reference_ms is not None
        specs = [s for s in space.distinct_opspecs() if not s.is_identity]
        remote = store.lookup(device, specs)
        assert len(remote) == len(specs)

        # The same ops profiled locally, in the agent LUT's unit.
        backend = create_backend("onnxruntime", cache_dir=tmp_path / "cache", protocol=QUICK)
        backend.use_drift_reference(device.fixed_costs.reference_ms)
        local_device = store.register_device("local-cpu", backend.fingerprint())
        store.set_fixed_costs(local_device, device.fixed_costs)
        profile_specs(store, backend, "local-cpu", specs)
        local = store.lookup(store.resolve_device("local-cpu"), specs)
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=120)
        store.close()
    assert code == 0, log.read_text()[-3000:]
    ratios = {key: remote[key].median_ms / local[key].median_ms for key in remote}
    # One unit: the drift reference puts both LUTs in the agent's unit; a quick-protocol
    # reference is one model's timing, so two of them minutes apart on a shared machine can
    # differ by a factor every entry shares, which calibration absorbs.
    unit = statistics.median(ratios.values())
    assert 0.5 < unit < 2.0, sorted(ratios.values())
    # The same shape: the two LUTs order the ops alike (an agent timing the wrong files, or
    # the right files the wrong way, orders them apart), and most entries agree within 2x once
    # the unit is taken out. Not tighter: the other test workers load this machine unevenly
    # over the minutes between the two runs, which can slow one run's stretch of entries about
    # 2x; benchmarks/agent_throughput.py measures how closely the entries agree.
    keys = sorted(remote)
    rho = _spearman([remote[k].median_ms for k in keys], [local[k].median_ms for k in keys])
    assert rho > 0.7, (rho, sorted(ratios.values()))
    within = [k for k in keys if 0.5 <= ratios[k] / unit <= 2.0]
    assert len(within) >= 0.8 * len(keys), sorted(r / unit for r in ratios.values())
    # Timed by the same rule: kernel times for the ops whose whole run took long enough, whole
    # runs for the others. Each run applies it to its own timing, so an op near the threshold
    # may fall on either side in either run.
    for key in keys:
        assert _timed_by_the_rule(remote[key]), (key, remote[key].extra)
        assert _timed_by_the_rule(local[key]), (key, local[key].extra)


def _timed_by_the_rule(entry: Measurement) -> bool:
    """Whether the entry is kernel-timed exactly when its whole run's median reached the
    threshold (`OrtTimer.measure_op_file`)."""
    wall_ms = entry.extra.get("wall_median_ms", entry.median_ms)
    kernels = entry.extra.get("timing") == KERNEL_TIMING
    return kernels == (wall_ms >= KERNEL_TIMING_MIN_MS)


def _spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation of two equally long samples (ties share their mean rank)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def _settings(server: Server, **values: object) -> object:
    from service.config import Settings

    home = Path(server.env["HWNAS_HOME"])
    return Settings(home=home, poll_s=0.2, **values)  # type: ignore[arg-type]


def _wait_for_registration(
    store: LutStore, agent: subprocess.Popen[bytes], log: Path, timeout: float = 120
) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if store.devices("thin-cpu"):
            return
        if agent.poll() is not None:
            raise AssertionError(f"the agent exited: {log.read_text()[-2000:]}")
        time.sleep(0.2)
    raise AssertionError(f"the agent did not register: {log.read_text()[-2000:]}")
