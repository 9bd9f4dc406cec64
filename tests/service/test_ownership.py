"""Device ownership against a real server (uvicorn started by `hwnas serve`), the real `hwnas`
command line and real SQLite and PostgreSQL: two tenants' agents and the operator's command line
cannot take each other's devices, and a job's model goes only to agents serving its tenant."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from lut.measurement import Measurement
from lut.store import LutStore
from profilers.agent.wire import PROTOCOL_HEADER, PROTOCOL_VERSION
from service.auth import authenticate
from service.crud import agents as queue
from service.crud.agent_tasks import create_model_task
from service.worker.agent_stages import measuring_stage, profiling_stage
from service.worker.context import JobFailed
from tests.service.agent_helpers import stage_context, tiny_space, wait_for
from tests.service.fixtures import REPO, Server

pytestmark = pytest.mark.timeout(600)

FINGERPRINT = {"backend": "onnxruntime", "runtime_version": "1.0", "threads": 1}


@pytest.fixture
def server(server_on_db: Server) -> Server:
    return server_on_db


def _store_of(server: Server) -> LutStore:
    url = server.env.get("HWNAS_DATABASE_URL") or f"sqlite:///{server.env['HWNAS_HOME']}/hwnas.db"
    return LutStore(url)


def _hwnas(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "service.cli", *args]
    return subprocess.run(
        command, env=server.env, cwd=REPO, capture_output=True, text=True, timeout=300
    )


def _agent(server: Server, key: str) -> Any:
    """A client speaking the agents' protocol version, as an agent does."""
    client = server.client(key)
    client.headers[PROTOCOL_HEADER] = str(PROTOCOL_VERSION)
    return client


def _register(client: Any, name: str, fingerprint: dict[str, Any] = FINGERPRINT) -> Any:
    return client.post("/agents/register", json={"name": name, "fingerprint": fingerprint})


def _lut_file(server: Server, tmp_path: Path, name: str) -> Path:
    """A one-op LUT file (as `hwnas lut export` writes), to import from the command line."""
    from lut.exchange import export_lut
    from lut.opspec import OpSpec

    scratch = LutStore(f"sqlite:///{tmp_path / 'scratch.db'}")
    try:
        device = scratch.register_device(name, FINGERPRINT)
        spec = OpSpec(op="linear", in_channels=8, out_channels=4)
        scratch.add_measurement(device, spec, Measurement.from_samples([0.1] * 5, warmup=1))
        path = tmp_path / f"{name}.lut.json"
        path.write_text(json.dumps(export_lut(scratch, device), default=str))
        return path
    finally:
        scratch.close()


def test_agents_of_two_tenants_and_the_operator_cannot_take_each_others_devices(
    server: Server, tmp_path: Path
) -> None:
    # The operator profiles `op-dev` from the command line (no agent yet): it is the operator's.
    imported = _hwnas(server, "lut", "import", str(_lut_file(server, tmp_path, "op-dev")))
    assert imported.returncode == 0, imported.stderr
    key_a, key_b = server.key("agent", "lab-a"), server.key("agent", "lab-b")
    operator_key = server.key("agent")  # the admin's tenant, "default"
    with _agent(server, key_a) as a, _agent(server, key_b) as b, _agent(server, operator_key) as op:
        # Tenant B's agent cannot register under it, with the same fingerprint or another one.
        for fingerprint in (FINGERPRINT, {**FINGERPRINT, "runtime_version": "9"}):
            refused = _register(b, "op-dev", fingerprint)
            assert refused.status_code == 403, refused.text
            assert "another tenant" in refused.json()["detail"]
            assert "default" not in refused.json()["detail"]  # not who owns it
        # The operator's own agent is accepted.
        assert _register(op, "op-dev").status_code == 200

        # Tenant A's agent claims a new name first; B's agent and the operator's CLI cannot take it.
        assert _register(a, "a-dev").status_code == 200
        assert _register(a, "a-dev").status_code == 200  # idempotent
        assert _register(b, "a-dev").status_code == 403
        assert _register(op, "a-dev").status_code == 403
        assert _register(b, "b-dev").status_code == 200
        assert _register(a, "b-dev").status_code == 403
    profiled = _hwnas(
        server, "profile", "--device", "a-dev", "--backend", "onnxruntime", "--space",
        "fbnet-tiny", "--quick",
    )  # fmt: skip
    assert profiled.returncode == 2, profiled.stderr
    assert "belongs to tenant 'lab-a'" in profiled.stderr
    again = _hwnas(server, "lut", "import", str(_lut_file(server, tmp_path, "x")), "--as", "b-dev")
    assert again.returncode == 2 and "belongs to tenant 'lab-b'" in again.stderr
    # ... unless the operator says for which tenant it writes.
    for_a = _hwnas(
        server, "lut", "import", str(_lut_file(server, tmp_path, "y")), "--as", "a-dev",
        "--tenant", "lab-a",
    )  # fmt: skip
    assert for_a.returncode == 0, for_a.stderr

    listed = _hwnas(server, "devices", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    owners = {d["device"]: d["owner"] for d in map(json.loads, listed.stdout.splitlines())}
    assert owners == {"op-dev": "default", "a-dev": "lab-a", "b-dev": "lab-b"}

    # Users see every LUT, but another tenant's agents and owner only for their own devices.
    admin = server.key("admin")
    with server.client(server.key("user", "lab-b")) as user_b, server.client(admin) as root:
        seen = user_b.get("/devices/op-dev").json()
        assert (seen["access"], seen["owner"], seen["shared_with"]) == ("read", None, None)
        assert seen["agents"] == [] and seen["luts"][0]["entries"] == 1
        assert user_b.get("/luts/op-dev").status_code == 200  # a LUT is a fact about hardware
        assert user_b.get("/devices/b-dev").json()["access"] == "owner"
        shared = user_b.post("/devices/op-dev/shares", json={"tenant": "lab-b"})
        assert shared.status_code == 403 and "another tenant" in shared.json()["detail"]
        assert user_b.post("/devices/nowhere/shares", json={"tenant": "x"}).status_code == 404
        bad = user_b.post("/devices/b-dev/shares", json={"tenant": "lab-b"})
        assert bad.status_code == 422  # with its owner
        full = root.get("/devices/op-dev").json()
        assert full["owner"] == "default" and [x["tenant"] for x in full["agents"]] == ["default"]
        # The admin imports only under a name its tenant may take.
        document = user_b.get("/luts/a-dev").json()
        assert root.post("/luts", json=document).status_code == 403


def test_a_model_goes_only_to_agents_serving_the_jobs_tenant(
    server: Server, tmp_path: Path
) -> None:
    """The issue's attack: tenant A's job on the operator's device; tenant B's agent (of its
    own device, and one left registered under the operator's device from before ownership)
    is never handed the model, cannot download it or post for it; the operator's agent gets it
    once the operator shares the device with A, and the result names that agent."""
    store = _store_of(server)
    try:
        store.register_device("op-dev", FINGERPRINT)  # as `hwnas profile` does
        # An agent of tenant B registered under the operator's device before devices had owners.
        legacy_key = server.key("agent", "lab-b")
        principal = authenticate(store.engine, legacy_key)
        assert principal is not None
        device = store.resolve_device("op-dev")
        legacy = queue.register_agent(store.engine, device, principal.key_id, "lab-b").id
        space = tiny_space()
        model = tmp_path / "run-a" / "export" / "net.onnx"
        model.parent.mkdir(parents=True)
        model.write_bytes(b"not really onnx, but a file to hand out")
        operator_key, key_b = server.key("agent"), server.key("agent", "lab-b")
        with _agent(server, operator_key) as op, _agent(server, key_b) as b:
            op_agent = _register(op, "op-dev").json()["agent_id"]
            b_agent = _register(b, "b-dev").json()["agent_id"]

            def ctx_of(tenant: str, run: str, **settings: Any) -> Any:
                ctx = stage_context(
                    store, space, ["op-dev"], tmp_path / run, [], tenant=tenant, **settings
                )
                ctx.export_files = {"onnx": str(model)}
                return ctx

            # Not shared: A's job gets no work done on the operator's device, and says why.
            ctx_a = ctx_of("lab-a", "run-a", agent_wait_s=30)
            outcome = measuring_stage(ctx_a)["target_measurements"]["op-dev"]
            assert outcome["status"] == "not measured on target"
            assert "not shared it with tenant lab-a" in outcome["reason"]
            assert "hwnas devices share op-dev --tenant lab-a" in outcome["reason"]
            with pytest.raises(JobFailed, match="not shared it with tenant lab-a"):
                profiling_stage(ctx_a)
            assert queue.pending_counts(store.engine, store.resolve_device("op-dev").id) == {}

            shared = _hwnas(server, "devices", "share", "op-dev", "--tenant", "lab-a")
            assert shared.returncode == 0, shared.stderr
            results: dict[str, Any] = {}
            stage = threading.Thread(
                target=lambda: results.update(measuring_stage(ctx_a)["target_measurements"])
            )
            stage.start()
            try:
                device_id = store.resolve_device("op-dev").id
                [task] = wait_for(
                    lambda: [
                        t
                        for t in _tasks(store, device_id)
                        if t.kind == "model" and t.status == "pending"
                    ],
                    60,
                    "the model task",
                )
                assert task.tenant == "lab-a"
                made_up = {"kind": "model", "model": {"samples_ms": [0.001] * 5}}
                # B's agent of its own device is never handed it, nor sees it counted.
                assert b.post(f"/agents/{b_agent}/tasks/claim").json() == {"task": None}
                beat = b.post(f"/agents/{b_agent}/heartbeat", json={})
                assert beat.json()["pending_tasks"] == 0
                # B's agent left under the operator's device from before ownership: refused.
                with _agent(server, legacy_key) as old:
                    for path in ("tasks/claim", "heartbeat", f"tasks/{task.id}/results"):
                        body = made_up if path.endswith("results") else {}
                        gone = old.post(f"/agents/{legacy}/{path}", json=body)
                        assert gone.status_code == 403, gone.text
                        assert "belongs to another tenant" in gone.json()["detail"]
                    assert old.get(f"/agents/{legacy}/tasks/{task.id}/model").status_code == 403
                    assert _register(old, "op-dev").status_code == 403
                # B cannot download A's model or post a made-up latency for it.
                got = b.get(f"/agents/{b_agent}/tasks/{task.id}/model")
                assert got.status_code == 403, got.text
                posted = b.post(f"/agents/{b_agent}/tasks/{task.id}/results", json=made_up)
                assert posted.status_code == 403, posted.text
                assert "lab-a" not in posted.json()["detail"]

                claimed = op.post(f"/agents/{op_agent}/tasks/claim").json()["task"]
                assert claimed["id"] == task.id and claimed["kind"] == "model"
                download = op.get(f"/agents/{op_agent}/tasks/{task.id}/model")
                assert download.status_code == 200
                disposition = download.headers["content-disposition"]
                assert task.id in disposition and ctx_a.job_id not in disposition
                result = {"kind": "model", "model": {"samples_ms": [1.0, 1.1, 0.9, 1.0, 1.05]}}
                done = op.post(f"/agents/{op_agent}/tasks/{task.id}/results", json=result)
                assert done.json()["status"] == "done", done.text
            finally:
                stage.join(timeout=120)
            measured = results["op-dev"]
            assert measured["status"] == "measured" and measured["agent"] == op_agent

            # Unshared again: the next model task of A's is not handed to the operator's agent.
            unshared = _hwnas(server, "devices", "unshare", "op-dev", "--tenant", "lab-a")
            assert unshared.returncode == 0, unshared.stderr
            create_model_task(
                store,
                store.resolve_device("op-dev"),
                "onnx",
                str(model),
                [1, 1, 8, 8],
                "j2",
                "lab-a",
            )
            assert op.post(f"/agents/{op_agent}/tasks/claim").json() == {"task": None}
            listed = _hwnas(server, "devices", "list", "--json").stdout
            [op_dev] = [d for d in map(json.loads, listed.splitlines()) if d["device"] == "op-dev"]
            assert (op_dev["owner"], op_dev["shared_with"]) == ("default", [])
    finally:
        store.close()


def _tasks(store: LutStore, device_id: int) -> list[queue.Task]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            queue.TASKS.select().where(queue.TASKS.c.device_id == device_id)
        ).mappings()
        return [queue.Task.from_mapping(r) for r in rows]
