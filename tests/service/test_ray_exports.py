"""Exports and micro-model conversions on a real two-node local Ray cluster (one CPU a node): a
job's export formats are tasks of their own, run in the cluster's processes, their events in the
job's stream, and the files, their verification and the failed formats' messages equal what the
embedded path writes for the same run (the job goes in through the real API and is run by a real
`hwnas worker` process); a thin agent's micro-models are converted by tasks into files with the
embedded store's operators and sizes, and a job's profiling has the cluster convert what its
real thin agent times; `hwnas search --export` converts every budget's formats as tasks into the
embedded CLI's files, lines and exit code, and a task failing for good is one line; without Ray
installed exports and conversions say so in one line."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.api import export_run
from deploy.checks import file_digest
from deploy.formats import format_names, get_format
from deploy.memory import tflite_operators
from profilers.artifacts import ArtifactStore
from search.spaces.base import space_from_string
from search.spaces.grammar import SpaceParams
from service.worker.executors import UnitResources
from tests.service.fixtures import (
    REPO,
    seed_synthetic_lut,
    service_env,
    stop_process,
    write_npz,
)
from tests.service.ray_cluster import RayCluster
from tests.service.ray_cluster import ray_cluster as ray_cluster
from tests.service.test_ray_executor import TIMEOUT_S, Service
from tests.service.test_ray_executor import service as service

# onnx-int8 starts from onnx's file and c-array from tflite-int8's; tensorrt fails without
# TensorRT (as here) and succeeds with it, on either path
FORMATS = ["onnx", "onnx-int8", "tflite-int8", "c-array", "tensorrt"]


def _files(export_dir: Path) -> dict[str, str]:
    """The exported files' digests (not the records of their checks, which hold timings)."""
    files = [p for p in sorted(export_dir.iterdir()) if p.is_file() and p.suffix != ".json"]
    return {p.name: file_digest(p) for p in files}


def _verifications(export_dir: Path) -> dict[str, Any]:
    checks = json.loads((export_dir / "checks.json").read_text())
    return {name: entry["verification"] for name, entry in checks.items()}


def test_each_format_is_a_task_writing_the_embedded_paths_files(
    ray_cluster: RayCluster, service: Service, tmp_path: Path
) -> None:
    job_id = service.submit(export_formats=FORMATS, budgets={"cpu-synth": [6.0]}, arch_steps=6)
    worker = service.worker("ray-export", ray_cluster.address)
    try:
        job = service.finished(job_id)
        assert job["state"] == "done", job["error"]
    finally:
        stop_process(worker)
    export = job["metrics"]["export"]
    run_dir = Path(job["metrics"]["run_dir"])
    events = [e for e in service.events(job_id) if e["type"] == "export"]
    started = [e for e in events if e["state"] == "started"]
    assert sorted(e["format"] for e in started) == sorted(FORMATS)
    assert all(e["pid"] != worker.pid for e in started)  # in the cluster's processes
    failed = {e["format"]: e["error"] for e in events if e["state"] == "failed"}
    assert failed == export["errors"]

    embedded = tmp_path / "embedded"
    shutil.copytree(run_dir, embedded, ignore=shutil.ignore_patterns("export", "card.*"))
    expected = export_run(embedded, FORMATS)
    assert export["errors"] == expected["errors"]
    assert export["files"] == sorted(expected["files"])
    assert _files(run_dir / "export") == _files(embedded / "export")
    assert _verifications(run_dir / "export") == _verifications(embedded / "export")


# converts the micro-models of SPECS in a process of its own (the test process never joins Ray)
CONVERT = """
import json, os, sys
from pathlib import Path
from tests.service.test_ray_exports import specs
from service.worker.executors import UnitResources
from service.worker.executors.ray_conversions import RayConvertingStore

store = RayConvertingStore(Path(sys.argv[1]), sys.argv[2], UnitResources(), lambda: None)
files = {key: [a.sha256, a.size, a.format] for key, a in store.ops(specs(), "tflite").items()}
again = {key: [a.sha256, a.size, a.format] for key, a in store.ops(specs(), "tflite").items()}
print(json.dumps({"files": files, "again": again, "conversions": store.conversions,
                  "converted_by": store.converted_by, "pid": os.getpid()}))
"""


def specs() -> list[Any]:
    """Three of the space's ops (their micro-models are what a thin agent's tasks carry)."""
    space = space_from_string("fbnet-tiny", SpaceParams(in_channels=1, num_classes=3))
    return sorted((s for s in space.distinct_opspecs() if not s.is_identity), key=str)[:3]


def test_a_thin_agents_micro_models_convert_as_tasks_into_the_embedded_files(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    root = tmp_path / "ray"
    result = subprocess.run(
        [sys.executable, "-c", CONVERT, str(root), ray_cluster.address],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    keys = sorted(s.key for s in specs())
    assert out["conversions"] == len(keys) and sorted(out["converted_by"]) == keys
    assert all(where["pid"] != out["pid"] for where in out["converted_by"].values())
    assert out["again"] == out["files"]  # converted once: found in the store the second time
    # a micro-model's weights are drawn anew at each conversion (timing does not depend on
    # them): the embedded store's file has the same operators and size, not the same bytes
    embedded = ArtifactStore(tmp_path / "embedded")
    for key, artifact in embedded.ops(specs(), "tflite").items():
        sha256, size, fmt = out["files"][key]
        assert (size, fmt) == (artifact.size, artifact.format)
        ours = ArtifactStore(root).blob(sha256)
        assert tflite_operators(ours) == tflite_operators(embedded.blob(artifact.sha256))


def test_a_jobs_thin_agent_gets_its_micro_models_converted_by_tasks(
    ray_cluster: RayCluster, service: Service, tmp_path: Path
) -> None:
    """The device's LUT lacks a few ops and its fixed costs; its agent (a real `hwnas agent`)
    times the files the job worker has the cluster convert."""
    from tests.service.agent_helpers import start_agent
    from tests.service.test_agent_stages import DEVICE, LEFT_TO_PROFILE, seed_all_but_a_few

    server = service.server
    seed_all_but_a_few(server.env["HWNAS_DATABASE_URL"], "fbnet-tiny")
    agent = start_agent(
        server.env, server.base_url, server.key("agent"), DEVICE, tmp_path / "a.log"
    )
    job_id = service.submit(devices=[DEVICE], budgets={DEVICE: 50.0}, arch_steps=6)
    worker = service.worker("ray-convert", ray_cluster.address, HWNAS_AGENT_WAIT_S="300")
    try:
        job = service.finished(job_id)
        assert job["state"] == "done", job["error"]
    finally:
        stop_process(worker)
        stop_process(agent)
    converted = [e for e in service.events(job_id) if e["type"] == "converted"]
    assert {e["format"] for e in converted} == {"onnx"}  # what the thin agent's runtime takes
    assert sum(e["models"] for e in converted) >= LEFT_TO_PROFILE + 2  # + warmup and reference
    assert worker.pid not in {pid for e in converted for _, pid in e["where"]}


# the CLI's tests keep to the quick formats: onnx-int8 still waits on onnx's task
CLI_FORMATS = ["onnx", "onnx-int8", "tensorrt"]
BUDGETS = ("budget-3", "budget-6")


@dataclass
class CliSearch:
    """`hwnas search --export` of two budgets run once with HWNAS_RAY_ADDRESS: its folder,
    process id, output and exit code."""

    root: Path
    env: dict[str, str]
    pid: int
    stdout: str
    stderr: str
    returncode: int

    def run_dir(self, budget: str) -> Path:
        return (self.root / "runs" / budget).resolve()


@pytest.fixture(scope="module")
def cli_search(ray_cluster: RayCluster, tmp_path_factory: pytest.TempPathFactory) -> CliSearch:
    root = tmp_path_factory.mktemp("cli")
    env = service_env(
        root / "home",
        HWNAS_RAY_ADDRESS=ray_cluster.address,
        OMP_NUM_THREADS="1",
        COLUMNS="1000",  # the CLI's lines unwrapped
    )
    seed_synthetic_lut(f"sqlite:///{root / 'home' / 'hwnas.db'}", "cpu-synth", num_classes=3)
    write_npz(root / "squares.npz")
    flags = (
        "--space fbnet-tiny --device cpu-synth --epochs 1 --child-epochs 1 --batch-size 16 "
        "--dataset squares.npz --latency-ms 3,6 --arch-steps 10 --out runs --export "
        + ",".join(CLI_FORMATS)
    )
    cli = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "search", *flags.split()],
        env=env,
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stdout, stderr = cli.communicate(timeout=TIMEOUT_S)
    return CliSearch(root, env, cli.pid, stdout, stderr, cli.returncode)


def test_hwnas_search_exports_each_budgets_run_as_tasks_with_the_embedded_files(
    cli_search: CliSearch,
) -> None:
    """`hwnas search --export` with HWNAS_RAY_ADDRESS: both budgets' formats are converted by
    the cluster's processes (their events in each run's events.jsonl); the files, their
    verification, the error lines and the exit code are the embedded path's."""
    errors = []
    for budget in BUDGETS:
        run_dir = cli_search.run_dir(budget)
        embedded = cli_search.root / "embedded" / budget
        shutil.copytree(run_dir, embedded, ignore=shutil.ignore_patterns("export", "card.*"))
        expected = _exported_and_verified(embedded, CLI_FORMATS)
        errors += expected.values()
        assert _files(run_dir / "export") == _files(embedded / "export")
        assert _verifications(run_dir / "export") == _verifications(embedded / "export")
        files = ", ".join(name for name in CLI_FORMATS if name not in expected)
        line = f"{run_dir}: exported {files}; card {run_dir / 'card.md'}"
        assert line in cli_search.stdout.splitlines()
        lines = (run_dir / "events.jsonl").read_text().splitlines()
        events = [e for e in map(json.loads, lines) if e["type"] == "export"]
        started = {e["format"]: e for e in events if e["state"] == "started"}
        assert sorted(started) == sorted(CLI_FORMATS)
        host = socket.gethostname()  # the cluster's nodes are on this machine
        assert all(e["host"] == host and e["pid"] != cli_search.pid for e in started.values())
    assert cli_search.returncode == (1 if errors else 0), cli_search.stderr[-3000:]
    shown = [line for line in cli_search.stderr.splitlines() if line.startswith("hwnas: error:")]
    assert shown == [f"hwnas: error: {message}" for message in errors]
    assert "Traceback" not in cli_search.stderr


def _exported_and_verified(run_dir: Path, formats: list[str]) -> dict[str, str]:
    """The embedded path's files of `formats` and their verification (`export_run`'s, less its
    timing, which the comparison leaves out); the errors of the formats that failed."""
    from deploy.run import check_files, export_formats, export_job, open_run

    run = open_run(run_dir)
    paths = {name: run.export_dir / get_format(name).file_name for name in formats}
    errors = export_formats(export_job(run), formats, paths, lambda event: None)
    files = {name: path for name, path in paths.items() if name not in errors}
    check_files(run, files, lambda event: None, force=True, measure=False)
    return errors


# the CLI's export of both runs to a format this installation has and the cluster's nodes do
# not (a newer hwnas than theirs), so its tasks fail for good; with main's handling of errors
EXPORT_UNKNOWN_TO_NODES = """
import sys
from pathlib import Path
from deploy.formats import register_format
from service.cli.common import EnvironmentProblem
from service.cli.main import _fail
from service.cli.search_exports import export_runs

register_format("onnx-next", "model.next.onnx", runtime="onnxruntime")(lambda job, path: None)
try:
    code = export_runs([Path(run) for run in sys.argv[1:]], ["onnx-next"])
except EnvironmentProblem as exc:
    code = _fail(str(exc), 1)
sys.exit(code)
"""


def test_a_task_failing_for_good_is_one_line_and_exit_1(cli_search: CliSearch) -> None:
    runs = []
    for budget in BUDGETS:  # copies: the tasks' events go to the runs' events.jsonl
        runs.append(str(cli_search.root / "unknown-format" / budget))
        shutil.copytree(
            cli_search.run_dir(budget), runs[-1], ignore=shutil.ignore_patterns("export")
        )
    result = subprocess.run(
        [sys.executable, "-c", EXPORT_UNKNOWN_TO_NODES, *runs],
        env=cli_search.env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stderr.splitlines() == [
        "hwnas: error: export failed: export-onnx-next: unknown export format 'onnx-next'; "
        "valid: " + ", ".join(format_names())
    ]


def test_without_ray_installed_exports_and_conversions_fail_with_one_readable_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from service.config import load_settings
    from service.worker.context import JobFailed
    from service.worker.executors import ClusterUnavailable, micro_model_store, ray_exporter
    from service.worker.units import JobSink

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    for module in ("ray_executor", "ray_exports", "ray_conversions"):
        monkeypatch.delitem(sys.modules, f"service.worker.executors.{module}", raising=False)
    install = r"pip install 'hwnas\[ray\]'"
    with pytest.raises(ClusterUnavailable, match=install):
        ray_exporter(
            "auto",
            tmp_path,
            resources=UnitResources(),
            sink=JobSink("sqlite://", "job", "worker"),
            check_cancelled=lambda: None,
        )
    settings = load_settings({"HWNAS_HOME": str(tmp_path), "HWNAS_RAY_ADDRESS": "auto"})
    with pytest.raises(JobFailed, match=install):
        micro_model_store(settings, lambda: None, lambda event: None)
