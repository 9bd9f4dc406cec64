"""Profiler agents against a real server (uvicorn started by `hwnas serve`), real `hwnas agent`
processes measuring with ONNX Runtime, real SQLite files and PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from lut.measurement import Measurement
from lut.opspec import OpSpec
from lut.predictor import IN_NETWORK_TIMING, FixedCosts
from lut.store import LutStore
from profilers.agent.wire import PROTOCOL_HEADER, PROTOCOL_VERSION
from service.crud import agents as queue
from service.crud.agent_tasks import create_opspec_tasks, micro_models
from service.worker.agent_stages import measuring_stage, profiling_stage
from service.worker.context import JobCancelled, JobFailed
from tests.service.agent_helpers import (
    measured_specs,
    serve_on,
    stage_context,
    start_agent,
    tiny_space,
    wait_for,
)
from tests.service.fixtures import (
    REPO,
    Server,
    free_port,
    service_env,
    stop_process,
)

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.timeout(600)

FINGERPRINT_A = {"backend": "onnxruntime", "host": "a", "threads": 1}
FINGERPRINT_B = {"backend": "onnxruntime", "host": "b", "threads": 1}


@pytest.fixture(scope="module")
def agent_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One converted-model cache for the agents of this module (conversion is not under test)."""
    return tmp_path_factory.mktemp("agent-cache")


def _store_of(server: Server) -> LutStore:
    url = server.env.get("HWNAS_DATABASE_URL") or f"sqlite:///{server.env['HWNAS_HOME']}/hwnas.db"
    return LutStore(url)


def _stop_agent(agent: subprocess.Popen[bytes]) -> int:
    agent.send_signal(signal.SIGTERM)
    try:
        return agent.wait(timeout=60)
    except subprocess.TimeoutExpired:
        agent.kill()
        raise


def _agent_client(server: Server, key: str) -> httpx.Client:
    """An HTTP client speaking the agents' protocol version, as an agent does."""
    client = server.client(key)
    client.headers[PROTOCOL_HEADER] = str(PROTOCOL_VERSION)
    return client


def _artifacts_dir(server: Server) -> Path:
    """Where the server keeps converted files (a worker beside it converts into the same)."""
    return Path(server.env["HWNAS_HOME"]) / "artifacts"


def _agent_online(server: Server, user_key: str, name: str) -> bool:
    with server.client(user_key) as client:
        response = client.get(f"/devices/{name}")
    return response.status_code == 200 and any(a["online"] for a in response.json()["agents"])


def test_real_agent_profiles_a_space_and_measures_the_exported_model(
    server_on_db: Server, tmp_path: Path, agent_cache: Path
) -> None:
    """On a real SQLite file and on real PostgreSQL."""
    import torch

    service_server = server_on_db

    from profilers.export import export_onnx

    user_key, log = service_server.key("user"), tmp_path / "agent.log"
    agent = start_agent(
        service_server.env,
        service_server.base_url,
        service_server.key("agent"),
        "lab-cpu",
        log,
        home=agent_cache,
    )
    store = _store_of(service_server)
    try:
        wait_for(lambda: _agent_online(service_server, user_key, "lab-cpu"), 120, "registration")
        space, events = tiny_space(), []  # type: ignore[var-annotated]
        ctx = stage_context(
            store,
            space,
            ["lab-cpu"],
            tmp_path / "run",
            events,
            agent_wait_s=120,
            artifacts_dir=_artifacts_dir(service_server),
        )
        profiling_stage(ctx)

        device = store.resolve_device("lab-cpu")
        assert store.missing(device, space.distinct_opspecs()) == []
        assert device.fixed_costs is not None and device.fixed_costs.call_overhead_ms > 0
        assert store.count_measurements(device) == len(measured_specs(space))
        assert events[-1]["done"] is True and events[-1]["measured"] == events[-1]["total"]
        with service_server.client(user_key) as client:
            lut = client.get("/luts/lab-cpu").json()
        assert len(lut["measurements"]) == len(measured_specs(space))
        assert lut["device"]["fingerprint"]["backend"] == "onnxruntime"

        model = tmp_path / "run" / "export" / "net.onnx"
        model.parent.mkdir(parents=True)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(8, 4),
        )
        export_onnx(net.eval(), torch.zeros(space.input_shape), model)
        ctx.export_files = {"onnx": str(model)}
        outcome = measuring_stage(ctx)["target_measurements"]["lab-cpu"]
        assert outcome["status"] == "measured", outcome
        assert outcome["format"] == "onnx" and outcome["median_ms"] > 0
    finally:
        store.close()
        code = _stop_agent(agent)
    assert code == 0, log.read_text()[-2000:]
    assert "SIGTERM: stopping" in log.read_text()


def _register(client: Any, name: str, fingerprint: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/agents/register", json={"name": name, "fingerprint": fingerprint})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _result(spec: OpSpec, samples: list[float]) -> dict[str, Any]:
    return {
        "kind": "measurements",
        "measurements": [{"opspec": spec.to_dict(), "measurement": {"samples_ms": samples}}],
    }


def test_agents_post_only_asked_ops_of_their_own_device_and_idempotently(
    server_on_db: Server,
) -> None:
    server = server_on_db
    key_a, key_b = server.key("agent"), server.key("agent")
    spec_1 = OpSpec(op="conv", in_channels=4, out_channels=8, height=8, width=8, kernel=3)
    spec_2 = OpSpec(op="pool", in_channels=8, out_channels=8, height=4, width=4)
    spec_3 = OpSpec(op="linear", in_channels=8, out_channels=4)
    with (
        _agent_client(server, key_a) as a,
        _agent_client(server, key_b) as b,
        server.client() as anonymous,
    ):
        agent_a = _register(a, "dev-a", FINGERPRINT_A)
        assert _register(a, "dev-a", FINGERPRINT_A)["agent_id"] == agent_a["agent_id"]
        agent_b = _register(b, "dev-b", FINGERPRINT_B)
        store = _store_of(server)
        try:
            device_a = store.resolve_device("dev-a")
            device_b = store.resolve_device("dev-b")
            create_opspec_tasks(store, device_a, [spec_1, spec_2], 8, None)
            create_opspec_tasks(store, device_b, [spec_3], 8, None)
            # dev-b's LUT was measured with a drift reference: its tasks carry the unit.
            store.set_fixed_costs(device_b, FixedCosts(0.005, 0.01, reference_ms=0.17))
            path_a, path_b = f"/agents/{agent_a['agent_id']}", f"/agents/{agent_b['agent_id']}"
            task_b = b.post(f"{path_b}/tasks/claim").json()["task"]
            assert [s["op"] for s in task_b["specs"]] == ["linear"]
            assert task_b["reference_ms"] == 0.17
            task_a = a.post(f"{path_a}/tasks/claim").json()["task"]
            assert {s["op"] for s in task_a["specs"]} == {"conv", "pool"}
            assert task_a["reference_ms"] is None
            assert a.post(f"{path_a}/tasks/claim").json() == {"task": None}

            # Another device's task: 403. An op the task did not ask for: 422.
            forbidden = a.post(f"{path_a}/tasks/{task_b['id']}/results", json=_result(spec_3, [1]))
            assert forbidden.status_code == 403, forbidden.text
            unasked = a.post(f"{path_a}/tasks/{task_a['id']}/results", json=_result(spec_3, [1]))
            assert unasked.status_code == 422
            assert "did not ask" in unasked.json()["detail"][0]["msg"]
            # Another key's agent is invisible: 404.
            assert b.post(f"{path_a}/heartbeat", json={}).status_code == 404
            # Another tenant cannot join (and so write into) dev-a's LUT: 403.
            with _agent_client(server, server.key("agent", tenant="other")) as intruder:
                refused = intruder.post(
                    "/agents/register", json={"name": "dev-a", "fingerprint": FINGERPRINT_A}
                )
                assert refused.status_code == 403, refused.text
                assert "another tenant" in refused.json()["detail"]
            # A device name holding an in-network LUT (`hwnas profile --in-network`): 409.
            store.register_device("dev-c", {**FINGERPRINT_A, "timing": IN_NETWORK_TIMING})
            conflict = a.post(
                "/agents/register", json={"name": "dev-c", "fingerprint": FINGERPRINT_A}
            )
            assert conflict.status_code == 409, conflict.text
            assert "in-network LUT" in conflict.json()["detail"]

            # The same result twice: one row.
            first = a.post(f"{path_a}/tasks/{task_a['id']}/results", json=_result(spec_1, [2, 3]))
            again = a.post(f"{path_a}/tasks/{task_a['id']}/results", json=_result(spec_1, [2, 3]))
            assert (first.json()["added"], again.json()["added"]) == (1, 0)
            assert store.count_measurements(device_a) == 1
            assert first.json()["status"] == "claimed"
            last = a.post(f"{path_a}/tasks/{task_a['id']}/results", json=_result(spec_2, [1, 1]))
            assert last.json() == {"task_id": task_a["id"], "status": "done", "added": 1}
            assert store.lookup(device_a)[spec_1.key].median_ms == 2.5

            # Statistics come from the raw samples; bad samples and mixed bodies are refused.
            bad = _result(spec_2, [-1.0])
            assert a.post(f"{path_a}/tasks/{task_a['id']}/results", json=bad).status_code == 422
            both = {**_result(spec_2, [1.0]), "model": {"samples_ms": [1.0]}}
            assert a.post(f"{path_a}/tasks/{task_a['id']}/results", json=both).status_code == 422

            # No key: 401 with a Bearer challenge; a user key on agent routes: 403.
            missing = anonymous.post("/agents/register", json={})
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == "Bearer"
            with server.client(server.key("user")) as user:
                assert user.post(f"{path_a}/tasks/claim").status_code == 403
                assert user.post("/luts", json={}).status_code == 403
                devices = user.get("/devices").json()["devices"]
                assert {d["name"] for d in devices} == {"dev-a", "dev-b", "dev-c"}
            assert a.get("/devices").status_code == 403
        finally:
            store.close()


def test_claims_are_atomic_and_expired_leases_are_claimed_again(db_url: str) -> None:
    store = LutStore(db_url)
    try:
        device = store.register_device("racer", FINGERPRINT_A)
        claimers = [queue.register_agent(store.engine, device, f"key{i}", "t") for i in range(6)]
        specs = [OpSpec(op="linear", in_channels=8, out_channels=n) for n in range(1, 31)]
        tasks = create_opspec_tasks(store, device, specs, 1, None)
        assert len(tasks) == 30
        # Creating them again changes nothing (same dedupe keys).
        assert {t.id for t in create_opspec_tasks(store, device, specs, 1, None)} == {
            t.id for t in tasks
        }
        claimed: list[str] = []
        lock = threading.Lock()

        def claim_all(agent: queue.Agent) -> None:
            while task := queue.claim_task(store.engine, agent, 60, model_tenants={"t"}):
                with lock:
                    claimed.append(task.id)

        threads = [threading.Thread(target=claim_all, args=(a,)) for a in claimers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert Counter(claimed) == Counter({t.id: 1 for t in tasks})

        [expiring] = create_opspec_tasks(
            store, device, [OpSpec(op="pool", in_channels=3, out_channels=3)], 1, None
        )
        first = queue.claim_task(store.engine, claimers[0], -1.0, model_tenants={"t"})  # expired
        second = queue.claim_task(store.engine, claimers[1], 60, model_tenants={"t"})
        assert first is not None and second is not None
        assert first.id == second.id == expiring.id
        assert (second.claimed_by, second.attempts) == (claimers[1].id, 2)
        assert queue.claim_task(store.engine, claimers[2], 60, model_tenants={"t"}) is None
    finally:
        store.close()


def test_agent_reconnects_with_backoff_when_the_server_restarts(
    tmp_path: Path, agent_cache: Path
) -> None:
    env, port = service_env(tmp_path / "home"), free_port()
    server_log, agent_log = tmp_path / "server.log", tmp_path / "agent.log"
    server = serve_on(env, port, server_log)
    base_url = f"http://127.0.0.1:{port}"
    agent = start_agent(
        env,
        base_url,
        Server(base_url, env, server).key("agent"),
        "flaky",
        agent_log,
        home=agent_cache,
    )
    store = LutStore(f"sqlite:///{tmp_path / 'home' / 'hwnas.db'}")
    try:
        wait_for(lambda: store.devices("flaky"), 120, "registration")
        device = store.resolve_device("flaky")
        specs = measured_specs(tiny_space())
        artifacts = micro_models(tmp_path / "home" / "artifacts")
        create_opspec_tasks(store, device, specs, 2, None, artifacts=artifacts)
        wait_for(lambda: store.count_measurements(device) >= 1, 180, "a first measurement")
        stop_process(server)
        wait_for(lambda: "server away" in agent_log.read_text(), 60, "the agent to notice")
        server = serve_on(env, port, server_log)
        wait_for(lambda: not store.missing(device, specs), 300, "every op measured")
        assert store.count_measurements(device) == len(specs)
    finally:
        store.close()
        code = _stop_agent(agent)
        stop_process(server)
    text = agent_log.read_text()
    assert code == 0, text[-2000:]
    assert "retrying in" in text or "posting again in" in text


def test_profiling_and_measuring_without_an_agent(sqlite_url: str, tmp_path: Path) -> None:
    store = LutStore(sqlite_url)
    try:
        store.register_device("lonely", FINGERPRINT_A)  # registered once, never online since
        space, events = tiny_space(), []  # type: ignore[var-annotated]
        for name in ("lonely", "never-seen"):
            ctx = stage_context(store, space, [name], tmp_path / name, events, agent_wait_s=1)
            with pytest.raises(JobFailed, match=f"no agent online for device {name} for 1 s"):
                profiling_stage(ctx)
        # The lonely device got its tasks anyway: an agent starting later finds them.
        assert queue.pending_counts(store.engine, store.resolve_device("lonely").id)["pending"] > 0
        ctx.export_files = {"onnx": str(tmp_path / "net.onnx")}
        outcome = measuring_stage(ctx)["target_measurements"]["never-seen"]
        assert outcome["status"] == "not measured on target"

        def cancelled() -> None:
            raise JobCancelled("cancelled")

        ctx.check_cancelled = cancelled
        with pytest.raises(JobCancelled):
            profiling_stage(ctx)
    finally:
        store.close()


def test_fully_covered_device_needs_no_agent(sqlite_url: str, tmp_path: Path) -> None:
    from lut.predictor import FixedCosts

    store = LutStore(sqlite_url)
    try:
        device = store.register_device("covered", FINGERPRINT_A)
        space = tiny_space()
        sample = Measurement.from_samples([0.1] * 10, warmup=1)
        store.add_measurements(device, [(s, sample) for s in measured_specs(space)])
        store.set_fixed_costs(device, FixedCosts(0.01, 0.001, 0.002))
        events: list[dict[str, Any]] = []
        profiling_stage(stage_context(store, space, ["covered"], tmp_path, events, agent_wait_s=1))
        assert events == [
            {
                "type": "profiling",
                "device": "covered",
                "measured": len(measured_specs(space)),
                "total": len(measured_specs(space)),
                "fixed_costs": True,
                "agents_online": None,
                "done": True,
            }
        ]
    finally:
        store.close()


def test_agent_command_refuses_bad_input_and_bad_keys(service_server: Server) -> None:
    def agent(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "service.cli", "agent", "--backend", "onnxruntime"]
        return subprocess.run(
            [*command, *args],
            env=service_server.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )

    bad_url = agent("--server", "ftp://x", "--name", "n", "--key", "k")
    assert bad_url.returncode == 2 and "--server must be" in bad_url.stderr
    bad_name = agent("--server", service_server.base_url, "--name", "a b", "--key", "k")
    assert bad_name.returncode == 2 and "bad --name" in bad_name.stderr
    bad_key = agent("--server", service_server.base_url, "--name", "n", "--key", "hwnas_x")
    assert bad_key.returncode == 1, bad_key.stderr
    assert bad_key.stderr.strip().splitlines()[-1].startswith("hwnas: error: the server refused")
    user_key = agent(
        "--server", service_server.base_url, "--name", "n", "--key", service_server.key("user")
    )
    assert user_key.returncode == 1 and "scope agent" in user_key.stderr


def test_litert_agent_times_the_exported_tflite_model(
    service_server: Server, tmp_path: Path, agent_cache: Path
) -> None:
    import torch

    from profilers.base import create_backend

    pytest.importorskip("ai_edge_litert")
    space, events = tiny_space(), []  # type: ignore[var-annotated]
    model = tmp_path / "run" / "export" / "net.tflite"
    model.parent.mkdir(parents=True)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU()).eval()
    converter = create_backend("litert", threads=1, cache_dir=tmp_path / "convert")
    converter.convert(net, torch.zeros(space.input_shape), model)  # type: ignore[attr-defined]
    log = tmp_path / "agent.log"
    agent = start_agent(
        service_server.env,
        service_server.base_url,
        service_server.key("agent"),
        "phone",
        log,
        home=agent_cache,
        backend="litert",
    )
    store = _store_of(service_server)
    try:
        user_key = service_server.key("user")
        wait_for(lambda: _agent_online(service_server, user_key, "phone"), 120, "registration")
        ctx = stage_context(
            store,
            space,
            ["phone"],
            tmp_path / "run",
            events,
            agent_wait_s=120,
            artifacts_dir=_artifacts_dir(service_server),
        )
        ctx.export_files = {"tflite": str(model), "onnx": str(tmp_path / "absent.onnx")}
        outcome = measuring_stage(ctx)["target_measurements"]["phone"]
        assert outcome["status"] == "measured" and outcome["format"] == "tflite", outcome
        assert outcome["median_ms"] > 0
    finally:
        store.close()
        code = _stop_agent(agent)
    assert code == 0, log.read_text()[-2000:]
