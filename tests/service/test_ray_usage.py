"""A unit's usage record, measured in this process as a Ray worker measures its task: the CPU
seconds of busy work land on the thread that did it, and torch's thread counts are the ones in
force."""

from __future__ import annotations

import os
import threading
import time

import torch

from service.worker.executors.ray_usage import (
    UsageMeter,
    context_switches,
    thread_cpu_s,
    waited_for_cpu_s,
)


def _spin(until_cpu_s: float) -> None:
    """Work on this thread until it has used `until_cpu_s` more CPU seconds."""
    start = threading.get_native_id()
    first = thread_cpu_s()[start][1]
    while thread_cpu_s()[start][1] - first < until_cpu_s:
        sum(i * i for i in range(20_000))


def test_the_cpu_of_busy_work_is_reported_under_its_thread_s_name() -> None:
    meter = UsageMeter()
    _spin(0.3)  # on the main thread, where Ray runs a task
    usage = meter.read()
    main_thread = thread_cpu_s()[os.getpid()][0]
    # /proc counts in clock ticks, the process clock finer: allow a few ticks either way
    assert usage["threads_cpu_s"][main_thread] >= 0.25
    assert usage["cpu_s"] >= 0.25
    assert usage["torch_threads"] == torch.get_num_threads()
    assert usage["torch_interop_threads"] == torch.get_num_interop_threads()
    assert usage["os_threads"] >= 1 and usage["waited_for_cpu_s"] >= 0.0


def test_the_kernel_s_run_delay_is_read() -> None:
    assert waited_for_cpu_s() >= 0.0


def test_context_switches_count_this_process_s_sleeps_and_preemptions() -> None:
    meter = UsageMeter()
    for _ in range(5):
        time.sleep(0.01)  # each sleep gives up the core: a voluntary switch
    voluntary, involuntary = meter.read()["context_switches"]
    assert voluntary >= 5 and involuntary >= 0
    assert context_switches()[0] >= voluntary
