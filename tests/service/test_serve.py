"""`hwnas keys`, `hwnas worker` and `hwnas serve` as an operator runs them: one-line errors with
exit code 2 (bad input) or 1 (environment), keys round trip, local workers restarted."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.service.fixtures import REPO, service_env, start_server, stop_process


def hwnas(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], code: int, needle: str) -> None:
    assert result.returncode == code, result.stderr
    assert result.stderr.startswith("hwnas: error:") and result.stderr.count("\n") == 1
    assert needle in result.stderr


def test_keys_round_trip(tmp_path: Path) -> None:
    env = service_env(tmp_path)
    created = hwnas(env, "keys", "create", "--scope", "agent", "--tenant", "lab", "--json")
    assert created.returncode == 0, created.stderr
    import json

    key = json.loads(created.stdout)
    assert key["key"].startswith("hwnas_") and key["scope"] == "agent"
    listed = hwnas(env, "keys", "list")
    assert key["id"] in listed.stdout and key["key"] not in listed.stdout
    assert hwnas(env, "keys", "revoke", key["id"]).returncode == 0
    assert "revoked" in hwnas(env, "keys", "list").stdout
    _one_line_error(hwnas(env, "keys", "revoke", key["id"]), 2, "no unrevoked key")
    _one_line_error(hwnas(env, "keys", "create", "--scope", "root"), 2, "unknown scope")
    _one_line_error(hwnas(env, "keys", "create", "--scope", "user", "--tenant", "a b"), 2, "tenant")


def test_unreachable_database_is_one_line_exit_1(tmp_path: Path) -> None:
    env = service_env(tmp_path, HWNAS_DATABASE_URL="postgresql+psycopg://x@127.0.0.1:1/nowhere")
    _one_line_error(hwnas(env, "worker", "--once"), 1, "cannot open database")
    _one_line_error(hwnas(env, "keys", "list"), 1, "cannot open database")


def test_bad_settings_are_one_line_exit_2(tmp_path: Path) -> None:
    _one_line_error(hwnas(service_env(tmp_path, HWNAS_LEASE_S="-1"), "keys", "list"), 2, "lease_s")
    production = service_env(tmp_path, HWNAS_ENVIRONMENT="production", HWNAS_ADMIN_KEY="admin")
    _one_line_error(hwnas(production, "serve"), 2, "HWNAS_ADMIN_KEY")


def test_serve_on_a_busy_port_is_one_line_exit_1(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = hwnas(service_env(tmp_path), "serve", "--port", str(port))
    _one_line_error(result, 1, f"cannot listen on 127.0.0.1:{port}")


def _children(pid: int) -> set[int]:
    """Live child processes of `pid` (each thread lists those it started)."""
    found = set()
    for path in Path(f"/proc/{pid}/task").glob("*/children"):
        found |= {int(p) for p in path.read_text().split()}
    return {p for p in found if "zombie" not in _status(p)}


def _status(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except FileNotFoundError:
        return "zombie"


def test_local_workers_do_not_outlive_a_killed_server(tmp_path: Path) -> None:
    _, server = start_server(service_env(tmp_path, HWNAS_WORKERS="1"))
    deadline = time.monotonic() + 30
    while not _children(server.pid):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    (worker,) = _children(server.pid)
    os.kill(server.pid, signal.SIGKILL)  # no shutdown code runs in the server
    server.wait()
    deadline = time.monotonic() + 60
    while Path(f"/proc/{worker}").exists() and "zombie" not in _status(worker):
        assert time.monotonic() < deadline, "the local worker outlived its server"
        time.sleep(0.2)


def test_serve_restarts_a_local_worker_that_died(tmp_path: Path) -> None:
    env = service_env(tmp_path, HWNAS_WORKERS="1")
    _, server = start_server(env)
    try:
        deadline = time.monotonic() + 30
        while not _children(server.pid):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        (first,) = _children(server.pid)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not (_children(server.pid) - {first}):
            assert time.monotonic() < deadline, "the dead worker was not replaced"
            time.sleep(0.5)
    finally:
        stop_process(server)
