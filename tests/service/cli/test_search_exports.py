"""Ctrl-C of `hwnas search --export` on a real one-node local Ray cluster: the CLI exits with
130 and one line, the export tasks still running are cancelled, and no export is left half
written, whether the Ctrl-C comes while a task converts or while the CLI verifies the files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.service.fixtures import seed_synthetic_lut, service_env, write_npz
from tests.service.ray_cluster import RayCluster

SEARCH = [
    "search",
    "--space",
    "fbnet-tiny",
    "--device",
    "cpu-synth",
    "--epochs",
    "1",
    "--child-epochs",
    "1",
    "--batch-size",
    "16",
    "--dataset",
    "squares.npz",
    "--arch-steps",
    "10",
]
INTERRUPTED = "hwnas: interrupted; everything measured so far is saved"
TIMEOUT_S = 240.0  # a search of the smallest space on one node, up to its export


@dataclass
class Cluster:
    """A one-node Ray cluster and a folder with the synthetic LUT and dataset to search on."""

    ray: RayCluster
    root: Path
    env: dict[str, str]

    def export_tasks(self) -> list[int]:
        """The cluster's processes running an export task now (Ray titles a task's process
        `ray::<function>` while it runs)."""
        pids = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]
        return [
            pid
            for pid in pids
            if any(self.ray.belongs_to(node, pid) for node in self.ray.groups)
            and _title(pid).startswith("ray::_export_format")
        ]


def _title(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode()
    except OSError:
        return ""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("ctrl-c")
    ray = RayCluster(root / "ray")
    try:
        ray.start(second_node=False)
        env = service_env(
            root / "home", HWNAS_RAY_ADDRESS=ray.address, OMP_NUM_THREADS="1", COLUMNS="1000"
        )
        seed_synthetic_lut(f"sqlite:///{root / 'home' / 'hwnas.db'}", "cpu-synth", num_classes=3)
        write_npz(root / "squares.npz")
        yield Cluster(ray, root, env)
    finally:
        ray.stop()


@dataclass
class Cli:
    """A `hwnas` process in a session of its own (as a terminal's foreground job), its output
    read line by line as it comes."""

    process: subprocess.Popen[str]
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, cluster: Cluster, *args: str) -> Cli:
        process = subprocess.Popen(
            [sys.executable, "-m", "service.cli", *args],
            env=cluster.env,
            cwd=cluster.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=_interruptible,
        )
        cli = cls(process)
        for stream, lines in ((process.stdout, cli.stdout), (process.stderr, cli.stderr)):
            cli.readers.append(threading.Thread(target=lines.extend, args=(stream,), daemon=True))
            cli.readers[-1].start()
        return cli

    def wait_for(self, found: Callable[[], Any]) -> Any:
        """`found()` once it is not None, polled while the CLI runs."""
        deadline = time.monotonic() + TIMEOUT_S
        while (result := found()) is None:
            assert self.process.poll() is None, f"the CLI ended first: {self.stderr[-20:]}"
            assert time.monotonic() < deadline, f"never came: {self.stderr[-20:]}"
            time.sleep(0.1)
        return result

    def ctrl_c(self) -> int:
        """SIGINT to the CLI's process group, as a terminal's Ctrl-C; its exit code."""
        os.killpg(self.process.pid, signal.SIGINT)
        code = self.process.wait(timeout=60)
        for reader in self.readers:  # the output's last lines
            reader.join(timeout=10)
        return code


def _interruptible() -> None:
    """SIGINT back to its default in the child, as a terminal's foreground job has it: a test
    run started in the background (`pytest ... &`) ignores SIGINT, and Python keeps an ignored
    SIGINT ignored, so the CLI would never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _first_export_started(out: Path) -> dict[str, Any] | None:
    for events in sorted(out.glob("**/events.jsonl")):
        for line in events.read_text().splitlines():
            event = json.loads(line)
            if event.get("type") == "export" and event.get("state") == "started":
                return event
    return None


def _assert_interrupted(cli: Cli, code: int) -> None:
    stderr = "".join(cli.stderr)
    assert code == 130, stderr[-3000:]
    assert cli.stderr[-1].strip() == INTERRUPTED and "Traceback" not in stderr


def _temporaries(out: Path) -> list[Path]:
    """Files of an atomic write that never finished (`common.files.write_atomically`)."""
    return [p for p in out.glob("**/export/.*") if ".tmp" in p.name]


def test_ctrl_c_while_a_task_converts_cancels_it_and_writes_nothing(cluster: Cluster) -> None:
    """Two budgets: each run's format is a task; Ctrl-C once the first runs (the node's one CPU
    keeps the other pending)."""
    out = cluster.root / "converting"
    cli = Cli.start(
        cluster, *SEARCH, "--latency-ms", "3,6", "--out", str(out), "--export", "tflite-int8"
    )
    started = cli.wait_for(lambda: _first_export_started(out))
    assert cluster.export_tasks() == [started["pid"]]  # its task runs now, on the cluster
    _assert_interrupted(cli, cli.ctrl_c())
    deadline = time.monotonic() + 60  # Ray kills a cancelled task's worker soon after
    while cluster.export_tasks() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cluster.export_tasks() == []
    assert [p for p in out.glob("*/export/*")] == []  # no file, whole or partial
    assert [p.name for p in out.glob("*/card.md")] == []


def test_ctrl_c_while_verifying_stops_there(cluster: Cluster) -> None:
    """Ctrl-C as the first file is verified: the CLI goes no further (no other file verified
    or timed, no card), and leaves no temporary file."""
    out = cluster.root / "verifying"
    cli = Cli.start(
        cluster, *SEARCH, "--latency-ms", "6", "--out", str(out), "--export", "onnx,tflite-int8"
    )
    cli.wait_for(lambda: next((line for line in cli.stderr if line.startswith("verify ")), None))
    _assert_interrupted(cli, cli.ctrl_c())
    checked = {line.split()[1] for line in cli.stderr if line.startswith(("verify ", "measure "))}
    assert checked == {"onnx"}  # tflite-int8's file is neither verified nor timed
    assert not (out / "card.md").exists()
    assert cluster.export_tasks() == [] and _temporaries(out) == []
