"""docker-compose.yml: validated by Debian's docker-compose (no container engine here), and each
service's command run outside containers with the service's own environment, pointed at a real
PostgreSQL and a shared artifact directory: the API (production settings, bootstrapped admin
key), a Ray head and a Ray worker node, and a worker that runs a whole job on them through the
Ray client."""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.service.fixtures import REPO, free_port, seed_synthetic_lut, stop_process, write_npz
from tests.service.ray_cluster import OBJECT_STORE_BYTES, RAY, kill_group_tree, short_temp_dir

COMPOSE = REPO / "docker-compose.yml"
SECRETS = {"POSTGRES_PASSWORD": "compose-test-pw", "HWNAS_ADMIN_KEY": "k" * 40}


def _compose_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("Debian's docker-compose is not installed (apt-get install docker-compose)")
    return subprocess.run(
        [binary, "-f", str(COMPOSE), "config"],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    result = _compose_config(SECRETS)
    assert result.returncode == 0, result.stderr
    return dict(yaml.safe_load(result.stdout))


def test_compose_file_is_valid_with_api_worker_postgres_ray_and_a_shared_volume(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"api", "worker", "postgres", "ray-head", "ray-worker"}
    for name in ("api", "worker", "ray-head", "ray-worker"):
        assert "artifacts:/artifacts:rw" in services[name]["volumes"]
        environment = services[name]["environment"]
        assert environment["HWNAS_ENVIRONMENT"] == "production"
        assert environment["HWNAS_DATABASE_URL"].startswith("postgresql+psycopg://hwnas:")
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["environment"]["HWNAS_RAY_ADDRESS"] == "ray://ray-head:10001"
    assert "ray-head:6379" in services["ray-worker"]["command"]
    assert set(compose["volumes"]) == {"artifacts", "pgdata"}


def test_compose_refuses_to_render_without_its_secrets() -> None:
    result = _compose_config({"HWNAS_ADMIN_KEY": SECRETS["HWNAS_ADMIN_KEY"]})
    assert result.returncode != 0 and "POSTGRES_PASSWORD" in result.stderr


def _local(service: dict[str, Any], overrides: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The service's command and environment, run here: `hwnas` is this checkout's CLI, the
    database, directories and port are the test's."""
    command = list(service["command"])
    assert command[0] == "hwnas"
    command = [sys.executable, "-m", "service.cli", *command[1:]]
    if "--host" in command:
        command[command.index("--host") + 1] = "127.0.0.1"
    return command, _local_env(service, overrides)


def _local_env(service: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", **service["environment"]}
    env.update({k: v for k, v in overrides.items() if k in env or k.startswith("HWNAS_")})
    return env


def _start_ray_node(
    service: dict[str, Any], overrides: dict[str, str], ports: dict[str, str], temp: Path, log: Path
) -> subprocess.Popen[bytes]:
    """A Ray node's command run here: this environment's `ray`, the test's free ports for the
    containers' fixed ones, 127.0.0.1, a directory of its own, and a worker node of one CPU and
    a small object store (a container's size); in a session of its own, to be stopped whole."""
    command = list(service["command"])
    assert command[0] == "ray"
    command = [RAY, *(ports.get(arg, arg) for arg in command[1:])]
    command += ["--node-ip-address", "127.0.0.1", "--temp-dir", str(temp)]
    command += ["--object-store-memory", str(OBJECT_STORE_BYTES)]
    if "--head" not in command:
        command += ["--num-cpus", "1"]
    return subprocess.Popen(
        command,
        env={**_local_env(service, overrides), "PATH": f"{Path(RAY).parent}:/usr/bin:/bin"},
        cwd=REPO,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def test_production_settings_refuse_a_placeholder_admin_key(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    command, env = _local(
        compose["services"]["api"],
        {"HWNAS_ADMIN_KEY": "changethis", "HWNAS_HOME": str(tmp_path)},
    )
    result = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "HWNAS_ADMIN_KEY" in result.stderr


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"API never became healthy: {log.read_text()[-3000:]}")


def test_api_ray_and_worker_commands_run_a_job_on_postgres(
    compose: dict[str, Any], postgres_url: str, tmp_path: Path
) -> None:
    port, admin_key = free_port(), secrets.token_urlsafe(32)
    gcs_port, client_port = free_port(), free_port()
    overrides = {
        "HWNAS_DATABASE_URL": postgres_url,
        "HWNAS_ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "HWNAS_HOME": str(tmp_path / "home"),
        "HWNAS_ADMIN_KEY": admin_key,
        "HWNAS_POLL_S": "0.5",
        "HWNAS_RAY_ADDRESS": f"ray://127.0.0.1:{client_port}",
    }
    ports = {
        "6379": str(gcs_port),
        "10001": str(client_port),
        "ray-head:6379": f"127.0.0.1:{gcs_port}",
    }
    api_command, api_env = _local(compose["services"]["api"], overrides)
    api_command[api_command.index("--port") + 1] = str(port)
    worker_command, worker_env = _local(compose["services"]["worker"], overrides)
    seed_synthetic_lut(postgres_url, "cpu-synth", num_classes=3)
    api_log, worker_log = tmp_path / "api.log", tmp_path / "worker.log"
    api = subprocess.Popen(
        api_command, env=api_env, cwd=REPO, stdout=api_log.open("wb"), stderr=subprocess.STDOUT
    )
    worker = subprocess.Popen(
        worker_command,
        env=worker_env,
        cwd=REPO,
        stdout=worker_log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    services = compose["services"]
    ray_temp = short_temp_dir()
    ray_nodes = [
        _start_ray_node(services[name], overrides, ports, ray_temp / name, tmp_path / f"{name}.log")
        for name in ("ray-head", "ray-worker")
    ]
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, api, api_log)
        with httpx.Client(base_url=url, timeout=30) as client:
            made = client.post(
                "/keys",
                json={"scope": "user", "tenant": "lab"},
                headers={"Authorization": f"Bearer {admin_key}"},
            )
            assert made.status_code == 201, made.text
            client.headers["Authorization"] = f"Bearer {made.json()['key']}"
            npz = write_npz(tmp_path / "squares.npz")
            dataset = client.post("/datasets", files={"file": ("squares.npz", npz.read_bytes())})
            job_id = client.post(
                "/jobs",
                json={
                    "space": "fbnet-tiny",
                    "dataset": dataset.json()["id"],
                    "devices": ["cpu-synth"],
                    "budgets": {"cpu-synth": 3.0},
                    "epochs": 1,
                    "warmup_epochs": 0,
                    "child_epochs": 1,
                    "batch_size": 32,
                },
            ).json()["id"]
            deadline = time.monotonic() + 300
            while (job := client.get(f"/jobs/{job_id}").json())["state"] not in (
                "done",
                "failed",
                "cancelled",
            ):
                assert time.monotonic() < deadline, worker_log.read_text()[-3000:]
                time.sleep(0.5)
            assert job["state"] == "done", job["error"]
            assert client.get(f"/models/{job_id}/child.pt").status_code == 200
            events = client.get(f"/jobs/{job_id}/events").text
            assert '"executor":"ray"' in events and '"unit_finished"' in events
        assert (tmp_path / "artifacts" / "jobs" / job_id / "child.pt").exists()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        stop_process(worker)
        stop_process(api)
        for node in ray_nodes:
            kill_group_tree(node.pid)
        shutil.rmtree(ray_temp, ignore_errors=True)
