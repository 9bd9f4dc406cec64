"""The agent's adb bridge (profilers/agent/adb.py): parsing benchmark_model's real output, and the
whole path end to end against a real server with a MOCK adb (tests/profilers/mock_adb.py: no
phone exists here; it runs the pushed files with ai-edge-litert and prints benchmark_model's
output), including a device that disconnects mid-task and whose task goes back to the queue."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lut.store import LutStore
from profilers.agent.adb import BenchmarkFailed, bridge_protocol, parse_benchmark_output
from profilers.protocol import QUICK
from service.crud import agents as queue
from service.crud.agent_tasks import create_opspec_tasks, micro_models
from tests.service.fixtures import REPO, Server, service_env, start_server, stop_process

# As LiteRT's benchmark_model prints it (a recent build: statistics with p5/median/p95).
RECENT = """INFO: STARTING!
INFO: Log parameter values verbosely: [0]
INFO: Num threads: [4]
INFO: Graph: [/data/local/tmp/mask_estimator_phy.tflite]
INFO: Signature to run: []
INFO: #threads used for CPU inference: [4]
INFO: Loaded model /data/local/tmp/mask_estimator_phy.tflite
INFO: Initialized TensorFlow Lite runtime.
INFO: Created TensorFlow Lite XNNPACK delegate for CPU.
VERBOSE: Replacing 49 out of 49 node(s) with delegate (TfLiteXNNPackDelegate) node, yielding 1 partitions for subgraph 0.
INFO: The input model file size (MB): 16.1527
INFO: Initialized session in 102.32ms.
INFO: Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
INFO: count=1 curr=670083 p5=670083 median=670083 p95=670083

INFO: Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
INFO: count=50 first=591245 curr=917186 min=502355 max=2270688 avg=699438 std=325425 p5=502674 median=576856 p95=1373207

INFO: Inference timings in us: Init: 102320, First inference: 670083, Warmup (avg): 670083, Inference (avg): 699438
INFO: Note: as the benchmark tool itself affects memory footprint, the following is only APPROXIMATE to the actual memory footprint of the model at runtime. Take the information at your discretion.
INFO: Memory footprint delta from the start of the tool (MB): init=55.4961 overall=55.4961
"""
# An older build: no median, no INFO prefix, the version printed.
OLDER = """STARTING!
Tensorflow Version : 2.15.0
Num threads: [1]
Graph: [/data/local/tmp/mobilenet.tflite]
Loaded model /data/local/tmp/mobilenet.tflite
Initialized session in 5.617ms.
Running benchmark for at least 1 iterations and at least 0.5 seconds but terminate if exceeding 150 seconds.
count=5 first=119340 curr=102705 min=102705 max=119340 avg=107466 std=6256

Running benchmark for at least 50 iterations and at least 1 seconds but terminate if exceeding 150 seconds.
count=50 first=103238 curr=102789 min=102639 max=103238 avg=102879 std=119

Inference timings in us: Init: 5617, First inference: 119340, Warmup (avg): 107466, Inference (avg): 102879
"""


def test_benchmark_model_output_is_parsed_into_one_sample() -> None:
    recent = parse_benchmark_output(RECENT)
    assert (recent.count, recent.sample_ms, recent.avg_ms) == (50, 576.856, 699.438)
    assert (recent.init_ms, recent.first_ms) == (102.32, 670.083)
    assert recent.peak_memory_mb == 55.4961 and recent.version is None
    older = parse_benchmark_output(OLDER)
    assert older.median_ms is None and older.sample_ms == 102.879  # its mean
    assert older.version == "2.15.0" and older.peak_memory_mb is None
    with pytest.raises(BenchmarkFailed, match="Could not open"):
        parse_benchmark_output("INFO: STARTING!\nERROR: Could not open 'x.tflite'.\n")
    protocol = bridge_protocol(QUICK)
    assert (protocol.warmup_runs, protocol.min_runs) == (0, 6)
    assert protocol.target_ci_rel == QUICK.target_ci_rel  # the same stopping rule


def _wait(condition: Callable[[], Any], timeout: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {log.read_text()[-3000:]}")


@pytest.fixture
def mock_phone(tmp_path: Path) -> dict[str, Path]:
    """The MOCK device's state (benchmark_model "installed" at the default path) and an `adb`
    executable that is the mock."""
    state = tmp_path / "mock-phone"
    binary = state / "storage" / "data" / "local" / "tmp" / "benchmark_model"
    binary.parent.mkdir(parents=True)
    binary.write_bytes(b"\x7fELF mock benchmark_model")
    adb = tmp_path / "bin" / "adb"
    adb.parent.mkdir()
    mock = Path(__file__).with_name("mock_adb.py")
    adb.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{mock}" "$@"\n')
    adb.chmod(0o755)
    return {"state": state, "adb": adb}


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_adb_agent_with_a_mock_adb_profiles_and_survives_a_disconnect(
    tmp_path: Path, mock_phone: dict[str, Path]
) -> None:
    from search.spaces.base import space_from_string

    pytest.importorskip("ai_edge_litert")
    env = service_env(tmp_path / "home")
    base_url, process = start_server(env)
    server = Server(base_url, env, process)
    log = tmp_path / "agent.log"
    command = [sys.executable, "-m", "profilers.agent.main", "--server", base_url]
    command += ["--name", "pixel-mock", "--backend", "litert", "--via", "adb"]
    command += ["--serial", "MOCK0001", "--adb", str(mock_phone["adb"]), "--cpus", "1"]
    command += ["--quick", "--runs-per-sample", "3", "--op-profiling", "--poll", "0.2"]
    command += ["--cache", str(tmp_path / "agent-cache")]
    agent_env = {
        **env,
        "HWNAS_AGENT_KEY": server.key("agent"),
        "MOCK_ADB_STATE": str(mock_phone["state"]),
    }
    agent = subprocess.Popen(
        command, env=agent_env, cwd=REPO, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    store = LutStore(f"sqlite:///{tmp_path / 'home' / 'hwnas.db'}")
    specs = [s for s in space_from_string("fbnet-tiny").distinct_opspecs() if not s.is_identity]
    specs = sorted(specs, key=lambda s: s.key)[:4]
    try:
        _wait(lambda: store.devices("pixel-mock"), 120, "registration", log)
        device = store.resolve_device("pixel-mock")
        fingerprint = device.fingerprint
        assert fingerprint["bridge"] == "adb" and fingerprint["system"] == "Android 15"
        assert fingerprint["device_model"] == "MockCo Mock Pixel"
        assert fingerprint["cpu_model"] == "MockSoC 9000" and fingerprint["machine"] == "arm64-v8a"
        assert fingerprint["runtime_version"].startswith("benchmark_model 2.19.0 (sha256 ")
        assert fingerprint["converter"].startswith("litert-torch ")

        # The device goes away after its 4th invocation: mid-way through the first op.
        (mock_phone["state"] / "gone_after").write_text("4")
        [task] = create_opspec_tasks(
            store, device, specs, 8, None, artifacts=micro_models(tmp_path / "home" / "artifacts")
        )
        _wait(lambda: (mock_phone["state"] / "offline").exists(), 300, "the disconnect", log)
        _wait(lambda: "given back to the queue" in log.read_text(), 120, "the release", log)
        released = queue.get_task(store.engine, task.id)
        assert released is not None and released.status == "pending" and released.claimed_by is None
        assert "waiting for device MOCK0001" in log.read_text()

        (mock_phone["state"] / "offline").unlink()  # plugged in again
        _wait(lambda: not store.missing(device, specs), 600, "every op measured", log)
        entries = store.lookup(device, specs)
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(timeout=120)
        store.close()
        stop_process(process)
    assert code == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert "device is back" in text and "failed" not in text
    for entry in entries.values():
        assert entry.median_ms > 0 and entry.n >= 6
        assert entry.extra["bridge"] == "adb" and entry.extra["cpus"] == "1"
        assert entry.extra["op_profile"][0]["type"] == "TfLiteXNNPackDelegate"
        assert entry.peak_memory_bytes == int(4.25 * 2**20)
