"""Whole jobs over a real server and real workers: upload → job → SSE progress → download, on
SQLite and PostgreSQL; a worker killed with SIGKILL mid-search and another one finishing the job
from its checkpoint; cancelling a running job."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.fixtures import (
    REPO,
    Server,
    seed_synthetic_lut,
    service_env,
    start_server,
    stop_process,
    write_npz,
)

JOB_TIMEOUT_S = 400
FINISHED = ("done", "failed", "cancelled")


def _wait_for(client: httpx.Client, job_id: str, done: Any, timeout: float = JOB_TIMEOUT_S) -> dict:
    """Polls the job until `done(job)`; fails at once when the job finishes without it."""
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if done(job):
            return job  # type: ignore[no-any-return]
        assert job["state"] not in FINISHED, f"job finished before the condition: {job}"
        assert time.monotonic() < deadline, f"job never reached the condition: {job}"
        time.sleep(0.5)


def _sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for block in text.split("\n\n"):
        kind = re.search(r"^event: (\S+)$", block, re.M)
        data = re.search(r"^data: (.*)$", block, re.M)
        if kind and data:
            events.append((kind.group(1), json.loads(data.group(1))))
    return events


def start_worker(env: dict[str, str], log: Path, name: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli", "worker", "--id", name],
        env=env,
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def job_server(db_url: str, tmp_path: Path) -> Iterator[Server]:
    """`hwnas serve` with one local worker on `db_url` (SQLite file or PostgreSQL)."""
    env = service_env(
        tmp_path / "home", HWNAS_DATABASE_URL=db_url, HWNAS_WORKERS="1", OMP_NUM_THREADS="1"
    )
    seed_synthetic_lut(db_url, "cpu-synth", in_channels=1, num_classes=3)
    base_url, process = start_server(env, log=tmp_path / "server.log")
    try:
        yield Server(base_url, env, process)
    finally:
        stop_process(process)


def test_whole_job_from_upload_to_download(job_server: Server, tmp_path: Path) -> None:
    npz = write_npz(tmp_path / "squares.npz")
    with job_server.client(job_server.key("user", "lab")) as client:
        dataset = client.post("/datasets", files={"file": ("squares.npz", npz.read_bytes())})
        assert dataset.status_code == 201, dataset.text
        created = client.post(
            "/jobs",
            json={
                "space": "fbnet-tiny",
                "dataset": dataset.json()["id"],
                "devices": ["cpu-synth"],
                "budgets": {"cpu-synth": 3.0},
                "epochs": 2,
                "warmup_epochs": 1,
                "child_epochs": 1,
                "child_shift_px": 1,
                "batch_size": 32,
                "export_formats": ["onnx", "tflite"],
            },
        )
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        with client.stream("GET", f"/jobs/{job_id}/events", timeout=JOB_TIMEOUT_S) as stream:
            text = "".join(stream.iter_text())
        events = _sse_events(text)
        states = [data["state"] for kind, data in events if kind == "state"]
        # measuring: on the target by its agents; none is online here, which is no failure
        pipeline = ["queued", "profiling", "searching", "training", "exporting", "measuring"]
        assert states == [*pipeline, "done"], states
        kinds = {kind for kind, _ in events}
        assert {"claimed", "search", "derived", "train", "search_done", "export_done"} <= kinds
        job = client.get(f"/jobs/{job_id}").json()
        assert job["state"] == "done" and job["error"] is None
        assert job["metrics"]["predicted_latency_ms"]["cpu-synth"] <= 3.0
        assert job["metrics"]["child_shift_px"] == 1
        assert set(job["downloads"]) == {
            "arch.json",
            "child.pt",
            "metrics.json",
            "onnx",
            "tflite",
            "card.json",
            "card.md",
        }
        assert job["metrics"]["export"]["errors"] == {}
        on_target = job["metrics"]["target"]["target_measurements"]["cpu-synth"]
        assert on_target["status"] == "not measured on target"
        offered = client.get(f"/models/{job_id}").json()
        listing = offered["files"]
        assert {f["name"] for f in listing} == set(job["downloads"])
        card_json = client.get(f"/models/{job_id}/card.json").json()
        assert offered["input"] == card_json["input"]  # the contract, beside the files
        assert offered["input"]["files"]["onnx"]["value_range"] == [0.0, 1.0]
        arch = client.get(f"/models/{job_id}/arch.json")
        assert arch.status_code == 200 and arch.json()["arch"] == job["metrics"]["arch"]
        weights = client.get(f"/models/{job_id}/child.pt")
        assert weights.status_code == 200
        assert client.get(f"/models/{job_id}/tensorrt").status_code == 404  # not asked for
        onnx_file = client.get(f"/models/{job_id}/onnx")
        tflite_file = client.get(f"/models/{job_id}/tflite")
        assert tflite_file.status_code == 200 and tflite_file.content[4:8] == b"TFL3"
        card = client.get(f"/models/{job_id}/card.md")
        assert card.status_code == 200 and card.headers["content-type"].startswith("text/markdown")
    import numpy as np
    import onnxruntime

    session = onnxruntime.InferenceSession(onnx_file.content)
    (logits,) = session.run(
        None, {session.get_inputs()[0].name: np.zeros((1, 1, 28, 28), np.float32)}
    )
    assert logits.shape == (1, 3)
    import io

    import torch

    from search.spaces.base import parse_architecture

    space, parsed = parse_architecture(arch.json()["arch"])
    space.build(parsed).load_state_dict(torch.load(io.BytesIO(weights.content), weights_only=True))


def _upload_squares(client: httpx.Client, tmp_path: Path) -> str:
    npz = write_npz(tmp_path / "squares.npz")
    response = client.post("/datasets", files={"file": ("squares.npz", npz.read_bytes())})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _submit_checkpointed_search(client: Any, tmp_path: Path, **epochs: int) -> str:
    """A hardcore search on the synthetic LUT that checkpoints every 10 steps; its job id."""
    body = {
        "space": "fbnet-tiny",
        "dataset": _upload_squares(client, tmp_path),
        "devices": ["cpu-synth"],
        "budgets": {"cpu-synth": 3.0},
        **epochs,
        "child_epochs": 1,
        "batch_size": 8,
        "checkpoint_every": 10,
    }
    return str(client.post("/jobs", json=body).json()["id"])


def _short_lease_service(
    tmp_path: Path,
) -> tuple[Path, dict[str, str], Server, subprocess.Popen[bytes]]:
    """A server on a synthetic LUT and one worker, with leases short enough that a killed
    worker's job is claimed again within seconds: (home, env, server, worker)."""
    home = tmp_path / "home"
    env = service_env(
        home, HWNAS_LEASE_S="4", HWNAS_HEARTBEAT_S="1", HWNAS_POLL_S="0.5", OMP_NUM_THREADS="1"
    )
    seed_synthetic_lut(f"sqlite:///{home / 'hwnas.db'}", "cpu-synth", num_classes=3)
    base_url, process = start_server(env)
    return (
        home,
        env,
        Server(base_url, env, process),
        start_worker(env, tmp_path / "worker1.log", "first"),
    )


def test_killed_worker_job_is_finished_by_another_from_its_checkpoint(tmp_path: Path) -> None:
    home, env, server, first = _short_lease_service(tmp_path)
    second = None
    try:
        client = server.client(server.key("user"))
        job_id = _submit_checkpointed_search(client, tmp_path, epochs=4, warmup_epochs=1)
        running = _wait_for(client, job_id, lambda j: (j["progress"].get("step") or 0) >= 20)
        assert running["state"] == "searching"
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        killed_at = client.get(f"/jobs/{job_id}").json()["progress"]["step"]
        assert (home / "artifacts" / "jobs" / job_id / "checkpoint.pt").exists()
        second = start_worker(env, tmp_path / "worker2.log", "second")
        job = _wait_for(client, job_id, lambda j: j["state"] in ("done", "failed", "cancelled"))
        assert job["state"] == "done", job["error"]
        assert job["attempt"] == 2
        log = (tmp_path / "worker2.log").read_text()
        resumed = re.search(rf"resuming job {job_id} at step (\d+)", log)
        assert resumed is not None, log
        step = int(resumed.group(1))
        assert 10 <= step <= killed_at and step % 10 == 0
        events = _sse_events(client.get(f"/jobs/{job_id}/events").text)
        claims = [d for k, d in events if k == "claimed"]
        assert [(c["worker"], c["attempt"]) for c in claims] == [("first", 1), ("second", 2)]
        assert ("resumed", {"type": "resumed", "step": step}) in events
        client.close()
    finally:
        for process in (first, second, server.process):
            if process is not None:
                stop_process(process)


def test_cancelling_a_running_job(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = service_env(home, HWNAS_HEARTBEAT_S="0.5", HWNAS_WORKERS="1", OMP_NUM_THREADS="1")
    seed_synthetic_lut(f"sqlite:///{home / 'hwnas.db'}", "cpu-synth", num_classes=3)
    base_url, server = start_server(env)
    try:
        with Server(base_url, env, server).client(
            Server(base_url, env, server).key("user")
        ) as client:
            job_id = client.post(
                "/jobs",
                json={
                    "space": "fbnet-tiny",
                    "dataset": _upload_squares(client, tmp_path),
                    "devices": ["cpu-synth"],
                    "budgets": {"cpu-synth": 3.0},
                    "epochs": 50,
                    "batch_size": 8,
                },
            ).json()["id"]
            _wait_for(client, job_id, lambda j: j["state"] == "searching")
            assert client.post(f"/jobs/{job_id}/cancel").json()["cancel_requested"] is True
            job = _wait_for(client, job_id, lambda j: j["state"] in ("cancelled", "done", "failed"))
            assert job["state"] == "cancelled"
            assert client.get(f"/models/{job_id}/child.pt").status_code == 409
    finally:
        stop_process(server)


def test_failing_jobs_record_a_one_line_reason(tmp_path: Path) -> None:
    """An infeasible budget, and a device whose LUT lacks the space's ops with no agent to
    profile it: each job fails with one line saying why."""
    home = tmp_path / "home"
    env = service_env(home, HWNAS_WORKERS="1", HWNAS_AGENT_WAIT_S="2", OMP_NUM_THREADS="1")
    seed_synthetic_lut(f"sqlite:///{home / 'hwnas.db'}", "cpu-synth", num_classes=3)
    from lut.store import LutStore

    store = LutStore(f"sqlite:///{home / 'hwnas.db'}")
    store.register_device("bare", {"backend": "onnxruntime", "threads": 1})
    store.close()
    base_url, server = start_server(env)
    try:
        with Server(base_url, env, server).client(
            Server(base_url, env, server).key("user")
        ) as client:
            dataset = _upload_squares(client, tmp_path)
            common = {"space": "fbnet-tiny", "dataset": dataset, "epochs": 1, "warmup_epochs": 0}
            infeasible = client.post(
                "/jobs", json={**common, "devices": ["cpu-synth"], "budgets": {"cpu-synth": 0.001}}
            ).json()["id"]
            unprofiled = client.post(
                "/jobs", json={**common, "devices": ["bare"], "budgets": {"bare": 5.0}}
            ).json()["id"]
            finished = ("done", "failed", "cancelled")
            first = _wait_for(client, infeasible, lambda j: j["state"] in finished)
            second = _wait_for(client, unprofiled, lambda j: j["state"] in finished)
    finally:
        stop_process(server)
    assert first["state"] == "failed" and "infeasible" in first["error"]
    assert second["state"] == "failed" and "no agent online for device bare" in second["error"]
    for job in (first, second):
        assert "\n" not in job["error"] and "Traceback" not in job["error"]


def test_stopped_worker_hands_its_job_to_the_next_at_once(tmp_path: Path) -> None:
    """SIGTERM (or Ctrl-C) mid-search: the worker releases the job instead of leaving it to
    expire; the next worker claims it at once (the lease is long) and resumes it."""
    home = tmp_path / "home"
    env = service_env(home, HWNAS_LEASE_S="3600", HWNAS_POLL_S="0.5", OMP_NUM_THREADS="1")
    seed_synthetic_lut(f"sqlite:///{home / 'hwnas.db'}", "cpu-synth", num_classes=3)
    base_url, server = start_server(env)
    first = start_worker(env, tmp_path / "worker1.log", "first")
    second = None
    try:
        client = Server(base_url, env, server).client(Server(base_url, env, server).key("user"))
        job_id = _submit_checkpointed_search(client, tmp_path, epochs=3)
        _wait_for(client, job_id, lambda j: (j["progress"].get("step") or 0) >= 20)
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=120) == 0
        assert f"job {job_id} released" in (tmp_path / "worker1.log").read_text()
        second = start_worker(env, tmp_path / "worker2.log", "second")
        job = _wait_for(client, job_id, lambda j: j["state"] in ("done", "failed", "cancelled"))
        assert job["state"] == "done" and job["attempt"] == 2, job["error"]
        assert re.search(
            rf"resuming job {job_id} at step [1-9]", (tmp_path / "worker2.log").read_text()
        )
        client.close()
    finally:
        for process in (first, second, server):
            if process is not None:
                stop_process(process)


def test_a_one_epoch_job_runs_without_choosing_warmup_epochs(tmp_path: Path) -> None:
    """The warm-up default adapts to the epochs (1 → 0) instead of refusing a request the user
    never made; the search records the warm-up it used."""
    home = tmp_path / "home"
    env = service_env(home, HWNAS_WORKERS="1", OMP_NUM_THREADS="1")
    seed_synthetic_lut(f"sqlite:///{home / 'hwnas.db'}", "cpu-synth", num_classes=3)
    base_url, server = start_server(env)
    try:
        with Server(base_url, env, server).client(
            Server(base_url, env, server).key("user")
        ) as client:
            body = {
                "space": "fbnet-tiny",
                "dataset": _upload_squares(client, tmp_path),
                "devices": ["cpu-synth"],
                "strategy": "fbnet",
                "epochs": 1,
                "child_epochs": 1,
                "batch_size": 32,
            }
            created = client.post("/jobs", json=body)
            assert created.status_code == 202, created.text
            finished = ("done", "failed", "cancelled")
            job = _wait_for(client, created.json()["id"], lambda j: j["state"] in finished)
    finally:
        stop_process(server)
    assert job["state"] == "done", job["error"]
    assert job["metrics"]["settings"]["warmup_epochs"] == 0


def test_a_job_with_several_budgets_shares_one_supernet_and_resumes(tmp_path: Path) -> None:
    """Budgets {primary: [b1, b2]}: one weight phase, then each budget's architecture phase and
    child; a worker killed in an architecture phase leaves the next one the shared weights and
    the finished phases, and the job's metrics list every budget and the Pareto rows."""
    home, env, server, first = _short_lease_service(tmp_path)
    second = None
    try:
        client = server.client(server.key("user"))
        body = {
            "space": "fbnet-tiny",
            "dataset": _upload_squares(client, tmp_path),
            "devices": ["cpu-synth"],
            "budgets": {"cpu-synth": [3.0, 6.0]},
            "epochs": 2,
            "child_epochs": 1,
            "batch_size": 8,
            "checkpoint_every": 2,
            # long enough that the poll sees an architecture phase on a fast machine too
            "arch_steps": 1500,
        }
        created = client.post("/jobs", json=body)
        assert created.status_code == 202, created.text
        job_id = created.json()["id"]
        running = _wait_for(client, job_id, lambda j: j["progress"].get("phase") == "architecture")
        # whichever budget's phase the poll caught: a loaded machine may be past the first one
        assert running["progress"]["budget_ms"] in (3.0, 6.0)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        run_dir = home / "artifacts" / "jobs" / job_id
        assert (run_dir / "supernet" / "weights.json").exists()
        second = start_worker(env, tmp_path / "worker2.log", "second")
        job = _wait_for(client, job_id, lambda j: j["state"] in ("done", "failed", "cancelled"))
        assert job["state"] == "done" and job["attempt"] == 2, job["error"]
        results = job["metrics"]["budgets"]
        assert [(r["budget_ms"], r["run"]) for r in results] == [
            (3.0, "budget-3"),
            (6.0, "budget-6"),
        ]
        for result in results:
            assert result["predicted_latency_ms"]["cpu-synth"] <= result["budget_ms"]
            assert result["shared_supernet"]["budgets_ms"] == [3.0, 6.0]
        assert len(job["metrics"]["pareto"]) == 2 and (run_dir / "pareto.md").exists()
        # each budget's files, and the Pareto table, under names the download route serves
        expected = {f"budget-{b}.{f}" for b in (3, 6) for f in ("arch.json", "child.pt")}
        assert expected | {"pareto.json", "pareto.md"} <= set(job["downloads"])
        listed = {f["name"] for f in client.get(f"/models/{job_id}").json()["files"]}
        assert listed == set(job["downloads"])
        arch = client.get(f"/models/{job_id}/budget-6.arch.json")
        assert arch.status_code == 200 and arch.json()["arch"] == results[1]["arch"]
        assert client.get(f"/models/{job_id}/arch.json").status_code == 404
        events = [d for _, d in _sse_events(client.get(f"/jobs/{job_id}/events").text)]
        claims = [i for i, e in enumerate(events) if e["type"] == "claimed"]
        assert len(claims) == 2
        second_attempt = events[claims[1] :]
        searched = {e.get("phase") for e in second_attempt if e["type"] == "search"}
        assert searched <= {"architecture"}  # the shared weights were kept, not trained again
        client.close()
    finally:
        for process in (first, second, server.process):
            if process is not None:
                stop_process(process)
