"""A real local Ray cluster for tests: a head and a second node joined with `ray start --address`,
one CPU each, on 127.0.0.1 and free ports, each node in its own temporary directory and its own
process group (so a test can stop one node's processes, and the fixture all of them, without
touching any other Ray on the machine)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.fixtures import REPO, free_port

STARTUP_S = 90.0
OBJECT_STORE_BYTES = 100 * 1024**2  # the units pass no large objects: keep /dev/shm free
RAY = str(Path(sys.executable).with_name("ray"))
# a lost node is noticed in seconds, not Ray's default half a minute
FAST_HEALTH_CHECKS = {
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


class RayCluster:
    """The cluster's address and its two nodes' process groups."""

    def __init__(
        self, root: Path, ray_env: dict[str, str] | None = None, fast_health_checks: bool = True
    ) -> None:
        self.root = root  # the nodes' logs
        # Ray settings for the nodes, e.g. RAY_worker_niceness; a lost node noticed in seconds
        # (the fault tests), or at Ray's default pace (a benchmark measuring what Ray costs)
        self.ray_env = (FAST_HEALTH_CHECKS if fast_health_checks else {}) | (ray_env or {})
        root.mkdir(parents=True, exist_ok=True)
        self.temp = short_temp_dir()  # the nodes' sessions, sockets among them
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.groups: dict[str, int] = {}

    def _start(self, name: str, *args: str) -> None:
        temp = self.temp / name
        temp.mkdir(parents=True, exist_ok=True)
        log = (self.root / f"{name}.log").open("ab")
        command = [
            RAY,
            "start",
            *args,
            "--num-cpus",
            "1",
            "--node-ip-address",
            "127.0.0.1",
            "--object-store-memory",
            str(OBJECT_STORE_BYTES),
            "--temp-dir",
            str(temp),
            "--disable-usage-stats",
            # the job workers join with log_to_driver=False: nothing reads what it would publish
            "--include-log-monitor",
            "false",
        ]
        # its own session: every process of the node (raylet, workers) shares its group
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env=_node_env() | self.ray_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        if process.wait(timeout=STARTUP_S) != 0:
            raise RuntimeError(
                f"ray start {name} failed: {(self.root / f'{name}.log').read_text()}"
            )
        self.groups[name] = process.pid

    def start(self, second_node: bool = True) -> None:
        """The head, and the second node unless `second_node` is false; returns once the
        cluster reports every node's CPU."""
        self._start("head", "--head", "--port", str(self.port), "--include-dashboard", "false")
        if second_node:
            self._start("second", "--address", self.address)
        self.wait_for_cpus(2 if second_node else 1)

    def wait_for_cpus(self, cpus: int) -> None:
        """Until the cluster reports `cpus` CPUs (both nodes joined), asked from a process of its
        own so the test process never connects to Ray."""
        script = (
            "import ray, sys, time\n"
            f"ray.init(address={self.address!r}, logging_level='ERROR')\n"
            f"deadline = time.monotonic() + {STARTUP_S}\n"
            f"while ray.cluster_resources().get('CPU', 0) != {cpus}:\n"
            "    if time.monotonic() > deadline: sys.exit(1)\n"
            "    time.sleep(0.2)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", script], env=_node_env(), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"the cluster never had {cpus} CPUs: {result.stderr[-2000:]}")

    def belongs_to(self, name: str, pid: int) -> bool:
        """Whether process `pid` is one of node `name`'s."""
        group = self.groups.get(name)
        return group is not None and in_group_tree(group, pid)

    def kill(self, name: str) -> None:
        """Every process of node `name`, at once (SIGKILL: a node lost, not shut down)."""
        group = self.groups.pop(name, None)
        if group is not None:
            kill_group_tree(group)

    def stop(self) -> None:
        for name in list(self.groups):
            self.kill(name)
        shutil.rmtree(self.temp, ignore_errors=True)


def short_temp_dir() -> Path:
    """A new directory under /tmp with a short path: a Ray node's socket paths, under its
    temporary directory, must fit AF_UNIX's 107 bytes (a pytest tmp_path is too long)."""
    return Path(tempfile.mkdtemp(prefix="hwnas-ray-", dir="/tmp"))


def _node_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("HWNAS_", "RAY_"))}


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, parent, process group) of `pid` from /proc, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return fields[0], int(fields[1]), int(fields[2])


def _pids() -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir() if entry.name.isdigit()]


def in_group_tree(group: int, pid: int) -> bool:
    """Whether `pid` is in process group `group`, or was started by a process that is (Ray's
    workers lead groups of their own, under their node's raylet)."""
    while pid > 1:
        stat = _stat(pid)
        if stat is None:
            return False
        if stat[2] == group:
            return True
        pid = stat[1]
    return False


def kill_group_tree(group: int) -> None:
    """SIGKILL every process of `in_group_tree(group, ...)` (a Ray node started in a session of
    its own: all of it, and nothing else)."""
    for pid in [pid for pid in _pids() if in_group_tree(group, pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, killed and not yet reaped, does not)."""
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    """A two-node local Ray cluster for one test module (under xdist each worker that runs the
    module starts its own, on its own ports and directories)."""
    cluster = RayCluster(tmp_path_factory.mktemp("ray"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
