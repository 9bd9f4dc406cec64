"""Jobs on a real two-node local Ray cluster (one CPU a node): a three-budget job runs its budgets
as tasks, no more at once than there are CPUs, with the embedded runner's Pareto table, each
unit's task on one torch thread; a baseline's candidates train as tasks with the embedded
runner's trials and result; units no node has room for fail the job at once; cancelling ends its
tasks; a node lost mid-search leaves a job that finishes, its events naming the resumed step; and
without HWNAS_RAY_ADDRESS nothing imports Ray. Jobs go in through the real API and are run by
real `hwnas worker` processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from service.crud.jobs import events_after, get_job
from tests.service.fixtures import (
    REPO,
    Server,
    seed_synthetic_lut,
    service_env,
    start_server,
    stop_process,
    write_npz,
)
from tests.service.ray_cluster import RayCluster, pid_alive
from tests.service.ray_cluster import ray_cluster as ray_cluster

TIMEOUT_S = 240
FINISHED = ("done", "failed", "cancelled")
JOB = {
    "space": "fbnet-tiny",
    "devices": ["cpu-synth"],
    "epochs": 1,
    "child_epochs": 1,
    "batch_size": 16,
    "checkpoint_every": 5,
}


class Service:
    """An API server on an SQLite file, no local workers; jobs run by `hwnas worker` processes
    started by the test, with or without the Ray cluster."""

    def __init__(self, server: Server, tmp_path: Path) -> None:
        self.server, self.tmp_path = server, tmp_path
        self.client = server.client(server.key("user"))
        npz = write_npz(tmp_path / "squares.npz")
        made = self.client.post("/datasets", files={"file": ("squares.npz", npz.read_bytes())})
        assert made.status_code == 201, made.text
        self.dataset = made.json()["id"]
        from lut.store import LutStore

        self.engine = LutStore(server.env["HWNAS_DATABASE_URL"]).engine

    def submit(self, **body: Any) -> str:
        created = self.client.post("/jobs", json={**JOB, "dataset": self.dataset, **body})
        assert created.status_code == 202, created.text
        return str(created.json()["id"])

    def worker(self, name: str, ray_address: str = "", **extra: str) -> subprocess.Popen[bytes]:
        env = {**self.server.env, "OMP_NUM_THREADS": "1", "HWNAS_HEARTBEAT_S": "0.5", **extra}
        if ray_address:
            env["HWNAS_RAY_ADDRESS"] = ray_address
        return subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker", "--once", "--id", name],
            env=env,
            cwd=REPO,
            stdout=(self.tmp_path / f"{name}.log").open("ab"),
            stderr=subprocess.STDOUT,
        )

    def events(self, job_id: str) -> list[dict[str, Any]]:
        return [row["data"] for row in events_after(self.engine, job_id, 0, limit=100_000)]

    def wait(self, job_id: str, done: Callable[[list[dict[str, Any]]], bool]) -> None:
        """Until `done(events)`; fails at once if the job finishes first."""
        deadline = time.monotonic() + TIMEOUT_S
        while not done(self.events(job_id)):
            job = get_job(self.engine, job_id)
            assert job is not None and job["state"] not in FINISHED, job
            assert time.monotonic() < deadline, self.events(job_id)[-5:]
            time.sleep(0.3)

    def finished(self, job_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + TIMEOUT_S
        while (job := get_job(self.engine, job_id)) is None or job["state"] not in FINISHED:
            assert time.monotonic() < deadline, self.events(job_id)[-5:]
            time.sleep(0.3)
        return job


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """One server for the module's jobs (each test submits its own)."""
    tmp_path = tmp_path_factory.mktemp("service")
    database = f"sqlite:///{tmp_path / 'hwnas.db'}"
    env = service_env(tmp_path / "home", HWNAS_DATABASE_URL=database)
    seed_synthetic_lut(database, "cpu-synth", in_channels=1, num_classes=3)
    base_url, process = start_server(env, log=tmp_path / "server.log")
    try:
        yield Service(Server(base_url, env, process), tmp_path)
    finally:
        stop_process(process)


def _units(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind]


def _pareto(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "run"} for row in job["metrics"]["pareto"]]


def test_three_budgets_run_as_tasks_with_the_embedded_runners_pareto_table(
    ray_cluster: RayCluster, service: Service
) -> None:
    body = {"budgets": {"cpu-synth": [3.0, 4.0, 6.0]}, "arch_steps": 12}
    on_ray = service.submit(**body)
    worker = service.worker("ray", ray_cluster.address)
    try:
        job = service.finished(on_ray)
        assert job["state"] == "done", job["error"]
    finally:
        stop_process(worker)
    events = service.events(on_ray)
    (plan,) = _units(events, "units")
    assert plan["units"] == ["weights", "budget-3", "budget-4", "budget-6"]
    started = [e["unit"] for e in _units(events, "unit_started")]
    assert started[0] == "weights" and sorted(started[1:]) == ["budget-3", "budget-4", "budget-6"]
    running, most = 0, 0
    for event in events:  # in the order the database recorded them
        running += {"unit_started": 1, "unit_finished": -1}.get(event["type"], 0)
        most = max(most, running)
    assert most <= 2  # two nodes of one CPU each
    tagged = {e["budget_ms"] for e in events if e["type"] == "search" and "budget_ms" in e}
    assert tagged == {3.0, 4.0, 6.0}
    usage = {e["unit"]: e for e in _units(events, "unit_usage")}
    assert sorted(usage) == sorted(started)  # what each unit's process used
    assert {e["torch_threads"] for e in usage.values()} == {1}  # one CPU a task: one thread
    assert all(e["cpu_s"] > 0 and e["wall_s"] > 0 for e in usage.values())
    assert all(min(e["context_switches"]) >= 0 for e in usage.values())  # (voluntary, preempted)

    embedded = service.submit(**body)
    worker = service.worker("embedded")
    try:
        reference = service.finished(embedded)
        assert reference["state"] == "done", reference["error"]
    finally:
        stop_process(worker)
    assert not _units(service.events(embedded), "units")
    assert _pareto(job) == _pareto(reference)


def _budget_units_started(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    def done(events: list[dict[str, Any]]) -> bool:
        started = [e for e in _units(events, "unit_started") if e["unit"] != "weights"]
        return len(started) >= count

    return done


def test_cancelling_a_running_job_ends_its_tasks(ray_cluster: RayCluster, service: Service) -> None:
    job_id = service.submit(budgets={"cpu-synth": [3.0, 6.0]}, arch_steps=5000)
    worker = service.worker("ray", ray_cluster.address)
    try:
        service.wait(job_id, _budget_units_started(2))
        pids = [e["pid"] for e in _units(service.events(job_id), "unit_started")]
        cancelled = service.client.post(f"/jobs/{job_id}/cancel")
        assert cancelled.status_code in (200, 202), cancelled.text
        assert service.finished(job_id)["state"] == "cancelled"
        deadline = time.monotonic() + 60
        while any(pid_alive(pid) for pid in pids):
            assert time.monotonic() < deadline, [p for p in pids if pid_alive(p)]
            time.sleep(0.3)
        assert worker.wait(timeout=60) == 0
    finally:
        stop_process(worker)


def test_hwnas_search_runs_its_budgets_on_the_cluster(
    ray_cluster: RayCluster, tmp_path: Path
) -> None:
    env = service_env(
        tmp_path / "home",
        HWNAS_RAY_ADDRESS=ray_cluster.address,
        HWNAS_RAY_UNIT_MEMORY_MB="64",  # each unit reserves memory on its node, and fits
        OMP_NUM_THREADS="1",
    )
    seed_synthetic_lut(f"sqlite:///{tmp_path / 'home' / 'hwnas.db'}", "cpu-synth", num_classes=3)
    write_npz(tmp_path / "squares.npz")
    flags = (
        "--space fbnet-tiny --device cpu-synth --epochs 1 --child-epochs 1 --batch-size 16 "
        "--dataset squares.npz --latency-ms 3,6 --arch-steps 10 --out runs"
    )
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "search", *flags.split()],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "on Ray" in result.stdout and "weights, budget-3, budget-6" in result.stdout
    for unit in ("supernet", "budget-3", "budget-6"):
        events = (tmp_path / "runs" / unit / "events.jsonl").read_text()
        assert '"unit_finished"' in events
    assert len(json.loads((tmp_path / "runs" / "pareto.json").read_text())) == 2


def test_a_unit_that_fails_fails_the_job_naming_it(
    ray_cluster: RayCluster, service: Service
) -> None:
    """The weight phase finds the first budget infeasible: the job fails with one line naming
    the unit and its reason."""
    job_id = service.submit(budgets={"cpu-synth": [0.001, 3.0]}, arch_steps=5)
    worker = service.worker("ray", ray_cluster.address)
    try:
        job = service.finished(job_id)
    finally:
        stop_process(worker)
    assert job["state"] == "failed"
    assert job["error"].startswith("1 of 3 units failed: weights: ")
    assert "infeasible" in job["error"] and "\n" not in job["error"]


def _run(service: Service, name: str, ray_address: str = "", **body: Any) -> dict[str, Any]:
    """A job of `body` run to its end by one worker (on the cluster at `ray_address`, if any)."""
    job_id = service.submit(**body)
    worker = service.worker(name, ray_address)
    try:
        return service.finished(job_id)
    finally:
        stop_process(worker)


@pytest.mark.parametrize(
    ("strategy", "trials", "together"), [("random", 3, 3), ("evolution", 5, 4)]
)
def test_a_baseline_s_candidates_run_as_tasks_with_the_embedded_runner_s_result(
    ray_cluster: RayCluster, service: Service, strategy: str, trials: int, together: int
) -> None:
    """Random search's candidates, and evolution's first population, train as tasks of their
    own (not in the unit's process); the job's trials, accuracies and child are the embedded
    runner's."""
    body = {"budgets": {"cpu-synth": 6.0}, "strategy": strategy, "trials": trials}
    job = _run(service, "ray", ray_cluster.address, **body)
    assert job["state"] == "done", job["error"]
    events = service.events(job["id"])
    (unit,) = _units(events, "unit_started")
    on_ray = _units(events, "trial")
    assert len(on_ray) == trials
    assert all(e["pid"] != unit["pid"] for e in on_ray[:together])
    assert all("pid" not in e for e in on_ray[together:])  # each later trial trains in the unit
    run_dir = Path(service.server.env["HWNAS_HOME"]) / "artifacts" / "jobs" / job["id"]
    assert len((run_dir / "candidates.jsonl").read_text().splitlines()) == trials

    reference = _run(service, "embedded", **body)
    assert reference["state"] == "done", reference["error"]
    embedded = _units(service.events(reference["id"]), "trial")
    fields = ("trial", "arch", "accuracy")
    assert [[e[k] for k in fields] for e in on_ray] == [[e[k] for k in fields] for e in embedded]
    for key in ("arch", "val_accuracy", "test_accuracy"):
        assert job["metrics"][key] == reference["metrics"][key], key


def test_units_no_node_has_room_for_fail_the_job_at_once(
    ray_cluster: RayCluster, service: Service
) -> None:
    """A GPU the cluster lacks: one line saying so once the wait for a node to join is over,
    not a job pending for ever."""
    job_id = service.submit(budgets={"cpu-synth": [3.0, 6.0]}, arch_steps=5)
    worker = service.worker(
        "ray", ray_cluster.address, HWNAS_RAY_UNIT_GPUS="1", HWNAS_RAY_WAIT_S="2"
    )
    try:
        job = service.finished(job_id)
    finally:
        stop_process(worker)
    assert job["state"] == "failed"
    assert job["error"].startswith("no node of the Ray cluster at ")
    assert "asks for 1 CPU, 1 GPU" in job["error"] and "0 GPUs" in job["error"]
    assert job["error"].endswith("(waited 2 s, HWNAS_RAY_WAIT_S)")
    assert not _units(service.events(job_id), "unit_started")


def test_a_lost_node_s_unit_resumes_from_its_checkpoint(
    ray_cluster: RayCluster, service: Service
) -> None:
    """Runs last in this module: the second node stays stopped."""
    job_id = service.submit(budgets={"cpu-synth": [3.0, 6.0]}, arch_steps=150)
    worker = service.worker("ray", ray_cluster.address)

    def second_node_checkpointed(events: list[dict[str, Any]]) -> bool:
        on_second = {
            e["budget_ms"]
            for e in _units(events, "unit_started")
            if "budget_ms" in e and ray_cluster.belongs_to("second", e["pid"])
        }
        return any(
            e.get("budget_ms") in on_second and e.get("arch_step", 0) >= 15
            for e in _units(events, "search")
        )

    try:
        service.wait(job_id, second_node_checkpointed)
        events = service.events(job_id)
        lost = next(
            e for e in _units(events, "unit_started") if ray_cluster.belongs_to("second", e["pid"])
        )
        ray_cluster.kill("second")
        job = service.finished(job_id)
        assert job["state"] == "done", job["error"]
    finally:
        stop_process(worker)
    events = service.events(job_id)
    again = [e for e in _units(events, "unit_started") if e["unit"] == lost["unit"]]
    assert [e["attempt"] for e in again] == [1, 2]
    (resumed,) = [e for e in _units(events, "resumed") if e.get("budget_ms") == lost["budget_ms"]]
    assert resumed["phase"] == "architecture" and resumed["step"] >= 15
    assert len(job["metrics"]["pareto"]) == 2


def test_nothing_imports_ray_without_its_address(tmp_path: Path) -> None:
    """A whole one-budget job (its export among it) through the worker, the app and the CLI's
    parser, in a process of its own with HWNAS_RAY_ADDRESS unset."""
    script = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from tests.service.fixtures import seed_synthetic_lut, write_npz
        from service.app import create_app
        from service.cli.main import build_parser
        from service.config import load_settings
        from service.crud.jobs import get_job, submit_job
        from service.schemas.jobs import JobCreate
        from service.worker.runner import Worker

        home = Path({str(tmp_path)!r})
        settings = load_settings({{"HWNAS_HOME": str(home)}})
        assert not settings.ray_address
        seed_synthetic_lut(settings.database_url, "cpu-synth", in_channels=1, num_classes=3)
        create_app(settings)
        build_parser()
        request = JobCreate(
            space="fbnet-tiny", dataset="digits", devices=["cpu-synth"],
            budgets={{"cpu-synth": 3.0}}, epochs=1, child_epochs=1, batch_size=32,
            export_formats=["onnx"],
        ).model_dump()
        request["dataset"] = str(write_npz(home / "squares.npz"))
        worker = Worker(settings, "no-ray")
        job_id = submit_job(worker.engine, tenant="t", key_id="k", request=request, dataset_id=None)
        worker.run(once=True)
        assert get_job(worker.engine, job_id)["state"] == "done", get_job(worker.engine, job_id)
        print(sorted(m for m in sys.modules if m == "ray" or m.startswith("ray.")))
        """
    )
    env = service_env(tmp_path / "home", OMP_NUM_THREADS="1")
    env.pop("HWNAS_RAY_ADDRESS", None)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_a_missing_ray_installation_is_one_readable_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from service.worker.executors import ClusterUnavailable, UnitResources, run_on_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.delitem(sys.modules, "service.worker.executors.ray_executor", raising=False)
    with pytest.raises(ClusterUnavailable, match=r"pip install 'hwnas\[ray\]'"):
        run_on_ray("auto", [], [], resources=UnitResources(), check_cancelled=lambda: None)
