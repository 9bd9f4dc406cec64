"""What two busy Ray nodes on two cores do to each other, without the search: a two-node local
cluster (one CPU a node, as scale_out starts it) runs a fixed piece of torch training as a task,
one at a time and then two side by side, and reports each task's CPU seconds and how often its
thread was preempted, and which processes' threads woke up how often while the pair ran (the
threads that preempt the tasks once no core is idle).

    python benchmarks/_ray_wakeups.py [--steps 150]

A diagnostic for scale_out (docs/scale-out.md quotes it); it writes no result file.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _record import REPO

sys.path.insert(0, str(REPO))

from scale_out import SAME_PRIORITY

from service.worker.executors.ray_usage import context_switches
from tests.service.ray_cluster import RayCluster

SHOWN = 15  # the threads that woke most


def thread_switches() -> dict[tuple[str, str], tuple[str, int, int]]:
    """Every thread on the machine: (pid, tid) → ("process:thread", voluntary, involuntary)."""
    out = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            command = (proc / "comm").read_text().strip()
            tasks = list((proc / "task").iterdir())
        except OSError:
            continue
        for task in tasks:
            try:
                name = (task / "comm").read_text().strip()
            except OSError:
                continue
            voluntary, involuntary = context_switches(task / "status")
            out[(proc.name, task.name)] = (f"{command}:{name}", voluntary, involuntary)
    return out


def train_steps(steps: int) -> dict[str, float]:
    """`steps` SGD steps of four 3×3 convolutions on one thread: its CPU and wall seconds and
    how often its thread was preempted (a Ray task's body)."""
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(*[torch.nn.Conv2d(32, 32, 3, padding=1) for _ in range(4)])
    batch = torch.randn(32, 32, 16, 16)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)

    def preempted() -> int:
        return context_switches()[1]

    for _ in range(5):  # first calls (kernel selection) outside the measurement
        model(batch).sum().backward()
    before, cpu, wall = preempted(), time.process_time(), time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        model(batch).sum().backward()
        optimizer.step()
    return {
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - wall,
        "preempted": preempted() - before,
    }


def wakeups(before: dict, after: dict, seconds: float) -> list[tuple[str, float, float]]:
    """(process:thread name, voluntary, involuntary switches a second) summed by name, the
    busiest first."""
    by_name: dict[str, list[int]] = {}
    for key, (name, voluntary, involuntary) in after.items():
        _, v0, i0 = before.get(key, (name, 0, 0))
        counts = by_name.setdefault(name, [0, 0])
        counts[0] += voluntary - v0
        counts[1] += involuntary - i0
    rows = [(name, v / seconds, i / seconds) for name, (v, i) in by_name.items() if v + i > 0]
    return sorted(rows, key=lambda row: -row[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=150, help="training steps a task")
    args = p.parse_args()
    import ray

    with tempfile.TemporaryDirectory(prefix="ray-wakeups-") as tmp:
        cluster = RayCluster(Path(tmp), ray_env=SAME_PRIORITY, fast_health_checks=False)
        try:
            cluster.start(second_node=True)
            ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
            task = ray.remote(num_cpus=1)(train_steps)
            ray.get([task.remote(20), task.remote(20)])  # both nodes' workers up and warm
            alone = [ray.get(task.remote(args.steps)) for _ in range(2)]
            before, started = thread_switches(), time.perf_counter()
            pair = ray.get([task.remote(args.steps), task.remote(args.steps)])
            seconds = time.perf_counter() - started
            rows = wakeups(before, thread_switches(), seconds)
        finally:
            ray.shutdown()
            cluster.stop()
    report(alone, pair, rows, seconds)


def report(alone: list[dict], pair: list[dict], rows: list[Any], seconds: float) -> None:
    for label, runs in (("one at a time", alone), ("side by side", pair)):
        cells = ", ".join(
            f"{r['cpu_s']:.2f} CPU s / {r['wall_s']:.2f} s, preempted {r['preempted']}"
            for r in runs
        )
        print(f"{label}: {cells}")
    total = sum(v for _, v, _ in rows)
    print(f"while the pair ran ({seconds:.1f} s): {total:.0f} wake-ups a second in all")
    for name, voluntary, involuntary in rows[:SHOWN]:
        print(f"  {voluntary:7.1f}/s woke, {involuntary:6.1f}/s preempted  {name}")


if __name__ == "__main__":
    main()
