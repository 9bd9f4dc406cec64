"""What a unit's Ray task used, measured inside its worker process: its CPU and wall seconds, how
long its thread waited for a core and how often it was preempted, the threads torch computes on,
and each of the process's threads' CPU by name (torch's compute beside Ray's own threads), sent
as the unit's `unit_usage` event so a job's events say where its time went (CPU seconds, unlike
wall seconds, hardly change with other load on a shared machine)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
TOP_THREADS = 6  # the busiest thread names reported; the rest are summed as "other"


def thread_cpu_s() -> dict[int, tuple[str, float]]:
    """Each thread of this process: id → (name, CPU seconds so far), from /proc (empty where
    there is no /proc)."""
    threads: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc/self/task").glob("*"):
        try:
            text = (entry / "stat").read_text()
        except OSError:  # the thread ended between the listing and the read
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text[text.rindex(")") + 2 :].split()
        threads[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / TICKS_PER_S)
    return threads


def waited_for_cpu_s() -> float:
    """How long this process's main thread (where Ray runs the task) has waited for a core while
    ready to run (the kernel's schedstat run delay); 0 where the kernel does not keep it."""
    try:
        return int(Path("/proc/self/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return 0.0


def context_switches(status: Path = Path("/proc/self/status")) -> tuple[int, int]:
    """(voluntary, involuntary) context switches so far of the thread whose /proc `status` file
    is given, by default this process's main thread (where Ray runs the task): a voluntary one
    is a wait (I/O, a lock, a sleep), an involuntary one a preemption by another thread that
    took the core; (0, 0) where the file cannot be read."""
    counts = {"voluntary_ctxt_switches": 0, "nonvoluntary_ctxt_switches": 0}
    try:
        for line in status.read_text().splitlines():
            key, _, value = line.partition(":")
            if key in counts:
                counts[key] = int(value)
    except OSError:
        pass
    return counts["voluntary_ctxt_switches"], counts["nonvoluntary_ctxt_switches"]


class UsageMeter:
    """Started before a unit runs; `read` gives what the process used since."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()
        self.threads = thread_cpu_s()
        self.waited = waited_for_cpu_s()
        self.switches = context_switches()

    def read(self) -> dict[str, Any]:
        import torch

        now = thread_cpu_s()
        switches = context_switches()
        by_name: dict[str, float] = {}
        for tid, (name, seconds) in now.items():
            before = self.threads.get(tid, (name, 0.0))[1]
            by_name[name] = by_name.get(name, 0.0) + seconds - before
        ranked = sorted(by_name.items(), key=lambda item: -item[1])
        busiest = dict(ranked[:TOP_THREADS])
        rest = sum(seconds for _, seconds in ranked[TOP_THREADS:])
        return {
            "cpu_s": round(time.process_time() - self.cpu, 3),
            "wall_s": round(time.perf_counter() - self.wall, 3),
            "waited_for_cpu_s": round(waited_for_cpu_s() - self.waited, 3),
            "context_switches": [
                after - before for after, before in zip(switches, self.switches, strict=True)
            ],
            "torch_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "os_threads": len(now),
            "threads_cpu_s": {k: round(v, 2) for k, v in busiest.items()}
            | ({"other": round(rest, 2)} if rest else {}),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        }
