"""A real hwnas API server for tests: `hwnas serve` (uvicorn) on 127.0.0.1 and a free port,
configured by HWNAS_* variables; reusable by every service test module."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
STARTUP_S = 90.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def service_env(home: Path, **overrides: str) -> dict[str, str]:
    """A clean environment for a server or worker process: HWNAS_HOME under the test's tmp dir,
    no local workers unless asked for."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HWNAS_")}
    env.update({"HWNAS_HOME": str(home), "HWNAS_WORKERS": "0", "PYTHONUNBUFFERED": "1"})
    env.update(overrides)
    return env


def start_server(
    env: dict[str, str], log: Path | None = None, port: int | None = None
) -> tuple[str, subprocess.Popen[bytes]]:
    """Start `hwnas serve` with `env` (on `port`, or a free one); returns (base URL, process)
    once /health answers."""
    port = port or free_port()
    log = log or Path(env["HWNAS_HOME"]) / f"server-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "service.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        cwd=REPO,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return base_url, process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_process(process)
    raise RuntimeError(
        f"server did not answer /health in {STARTUP_S:.0f} s: {log.read_text()[-2000:]}"
    )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_key(env: dict[str, str], scope: str, tenant: str = "default") -> str:
    """A key created the way an operator does it: `hwnas keys create`."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "service.cli",
            "keys",
            "create",
            "--scope",
            scope,
            "--tenant",
            tenant,
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


class Server:
    """A running server: its URL, environment (to start workers or agents beside it), process."""

    def __init__(self, base_url: str, env: dict[str, str], process: subprocess.Popen[bytes]):
        self.base_url, self.env, self.process = base_url, env, process

    def key(self, scope: str, tenant: str = "default") -> str:
        return make_key(self.env, scope, tenant)

    def client(self, key: str | None = None, timeout: float = 30) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)


@contextmanager
def synthetic_server(
    env: dict[str, str], device: str = "cpu-synth", **lut: int
) -> Iterator[Server]:
    """`hwnas serve` on `env`'s SQLite database under HWNAS_HOME, `device` holding a synthetic
    LUT (`seed_synthetic_lut`'s `in_channels`, `num_classes`); stopped on exit."""
    home = Path(env["HWNAS_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    seed_synthetic_lut(f"sqlite:///{home / 'hwnas.db'}", device, **lut)
    with serving(env) as server:
        yield server


@contextmanager
def serving(env: dict[str, str]) -> Iterator[Server]:
    """`hwnas serve` on `env`, stopped on exit."""
    base_url, process = start_server(env)
    try:
        yield Server(base_url, env, process)
    finally:
        stop_process(process)


@pytest.fixture
def service_server(tmp_path: Path) -> Iterator[Server]:
    """A server on a fresh SQLite database under tmp_path, no local workers."""
    with serving(service_env(tmp_path / "home")) as server:
        yield server


def seed_synthetic_lut(
    url: str, name: str, space: str = "fbnet-tiny", *, in_channels: int = 1, num_classes: int = 10
) -> None:
    """A device LUT whose entries come from a formula (4 µs + 2 ns per MAC), standing in for a
    profiled device so job tests need no timing; profiling itself is tested with real agents."""
    from lut.measurement import Measurement
    from lut.predictor import FixedCosts
    from lut.store import LutStore
    from search.spaces.base import space_from_string
    from search.spaces.complexity import macs
    from search.spaces.grammar import SpaceParams

    store = LutStore(url)
    try:
        device = store.register_device(name, {"backend": "synthetic", "threads": 1})
        store.set_fixed_costs(device, FixedCosts(0.004, 0.0, 0.0))
        params = SpaceParams(in_channels=in_channels, num_classes=num_classes)
        specs = [
            s for s in space_from_string(space, params).distinct_opspecs() if not s.is_identity
        ]
        samples = [
            (s, Measurement.from_samples([0.004 + 2e-6 * macs(s)] * 7, warmup=0)) for s in specs
        ]
        store.add_measurements(device, samples)
    finally:
        store.close()


def seed_end_to_end_runs(
    url: str, name: str, space: str, count: int = 6
) -> list[tuple[str, float, float]]:
    """End-to-end runs of `count` random architectures standing in for a device's (1.2x the LUT
    sum plus 0.1 ms) and the calibration fitted on them; (arch, predicted, measured) per run."""
    from lut.measurement import Measurement
    from lut.predictor import predict
    from lut.store import LutStore
    from profilers.calibrate import fit_from_store
    from search.spaces.base import decode_string, space_from_string

    store = LutStore(url)
    try:
        device = store.resolve_device(name)
        bound = space_from_string(space)
        runs = []
        for arch in bound.iter_random(0, count):
            text = arch.to_string()
            specs = decode_string(text)
            predicted = predict(specs, store.lookup(device, specs), device.fixed_costs).latency_ms
            measured = 1.2 * predicted + 0.1
            timed = Measurement.from_samples([measured] * 5, warmup=0)
            store.add_e2e(device, text, bound.spec_string, timed)
            runs.append((text, predicted, measured))
        fit_from_store(store, device, bound, decode_string)
        return runs
    finally:
        store.close()


def write_npz(path: Path, samples: int = 240, classes: int = 3, seed: int = 0) -> Path:
    """A small learnable dataset: 12×12 grey images whose class is where a bright square sits."""
    import numpy as np

    rng = np.random.default_rng(seed)
    y = np.arange(samples) % classes
    x = rng.uniform(0, 0.3, size=(samples, 12, 12)).astype(np.float32)
    for i, label in enumerate(y):
        x[i, 4 * label : 4 * label + 4, 4:8] += 0.7
    np.savez(path, x=x, y=y)
    return path


def run_schemathesis(
    base_url: str, key: str, cwd: Path, *, max_examples: int, extra: tuple[str, ...] = ()
) -> str:
    """`schemathesis run` against the server's /openapi.json with `key`, all checks but
    positive_data_acceptance (a request naming a space, device or dataset that does not exist
    is schema-valid and still refused with 422); asserts no failure and no server error. JSON
    bodies are also made hostile (tests/service/schemathesis_hooks.py: NaN, Infinity, 1e999, lone
    surrogates), which JSON Schema cannot express and so schemathesis never generates."""
    import shutil

    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli is not None, "schemathesis is a test dependency"
    command = [cli, "run", f"{base_url}/openapi.json", "--header", f"Authorization: Bearer {key}"]
    command += [*extra, "--checks", "all", "--exclude-checks", "positive_data_acceptance"]
    command += ["--max-examples", str(max_examples), "--request-timeout", "20"]
    command += ["--workers", "1", "--seed", "1", "--no-color"]
    har = cwd / "schemathesis.har"
    command += ["--report", "har", "--report-har-path", str(har)]
    hooks = str(Path(__file__).with_name("schemathesis_hooks.py"))
    env = {**os.environ, "SCHEMATHESIS_HOOKS": hooks}
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=500, env=env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    assert "server error" not in output.lower()
    entries = json.loads(har.read_text())["log"]["entries"]
    bodies = [entry["request"].get("postData", {}).get("text", "") for entry in entries]
    hostile = ("NaN", "Infinity", "1e999", "\\ud800", "\\udfff", "\\udbff")
    assert any(token in body for body in bodies for token in hostile), "no hostile body was sent"
    return output


def hwnas(
    home: Path, *args: str, check: bool = True, **kwargs: object
) -> subprocess.CompletedProcess:
    env = {**os.environ, "HWNAS_HOME": str(home), "COLUMNS": "200"}
    env.pop("HWNAS_DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        **kwargs,  # type: ignore[arg-type]
    )
    if check and result.returncode != 0:
        raise AssertionError(f"hwnas {' '.join(args)} failed:\n{result.stderr}")
    return result
