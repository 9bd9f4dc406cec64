"""scale_out's CPU accounting: Ray's processes are named by their command lines, and a busy
process of a measured group counts under its kind (a real process, real /proc)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import _proc_cpu  # the benchmarks are scripts, not a package

BUSY = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.5: pass\n"


def test_ray_s_processes_are_named_by_their_command_lines() -> None:
    site = "/venv/lib/python3.11/site-packages/ray"
    assert _proc_cpu.kind_of(f"{site}/core/src/ray/gcs/gcs_server --port=1") == "gcs_server"
    assert _proc_cpu.kind_of(f"{site}/core/src/ray/raylet/raylet --node") == "raylet"
    assert _proc_cpu.kind_of("ray::_run_unit") == "ray workers (units)"
    assert _proc_cpu.kind_of("ray::IDLE") == "ray workers (units)"
    assert _proc_cpu.kind_of("ray::RuntimeEnvAgent") == "runtime_env agent"
    assert _proc_cpu.kind_of("ray::DashboardAgent") == "dashboard and agents"
    assert _proc_cpu.kind_of(f"python -u {site}/_private/log_monitor.py") == "log_monitor"
    assert _proc_cpu.kind_of("python -m service.cli worker --id w") == "hwnas worker (driver)"
    assert _proc_cpu.kind_of("python -c pass") == "measured (other)"


def test_a_busy_process_of_a_measured_group_counts_under_its_kind() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", BUSY + "import sys; sys.stdin.read()"],
        start_new_session=True,  # its pid is its group
        stdin=subprocess.PIPE,
    )
    try:
        before = _proc_cpu.snapshot({child.pid})
        deadline = time.monotonic() + 60
        used: dict[str, float] = {}
        while used.get("measured (other)", 0.0) < 0.4 and time.monotonic() < deadline:
            time.sleep(0.1)  # until it has spun (then it waits on its stdin)
            used = _proc_cpu.cpu_by_kind(before, _proc_cpu.snapshot({child.pid}))
        assert used["machine"] >= used["measured (other)"] >= 0.4
        assert _proc_cpu.OTHER in used  # the rest of the machine's work
    finally:
        child.communicate(b"")
