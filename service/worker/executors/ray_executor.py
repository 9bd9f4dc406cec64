"""Search units as Ray tasks: the units that must finish first (the shared weight phase) one at
a time, then every budget's unit at once, each declaring its CPUs (and GPUs and memory, where
configured), so the cluster runs as many side by side as it has room for; units no node has room
for fail at once instead of waiting for ever. Inside a unit a baseline's candidates are tasks of
their own (`ray_candidates`). A task whose worker or node dies is retried by Ray and resumes
from its unit's checkpoint; cancelling (or any error in the caller's check) cancels every task
still running; a task that fails for good fails its unit, and the others finish first."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from search.strategies.baseline import candidates_trained_by
from service.worker.executors import (
    ClusterUnavailable,
    ResourcesUnavailable,
    UnitResources,
    UnitsFailed,
)
from service.worker.executors.ray_candidates import ray_trainer
from service.worker.executors.ray_usage import UsageMeter
from service.worker.executors.resources import missing_room
from service.worker.units import (
    JobSink,
    SearchUnit,
    UnitResult,
    longest_first,
    run_unit,
)

# how often Ray runs a unit again after its worker process or node died (each run resumes)
MAX_RETRIES = 3
WAIT_S = 0.5  # between checks of the caller's cancel flag
CANCEL_GRACE_S = 5.0  # a cancelled task's time to stop on its own before its worker is killed
ROOM_POLL_S = 1.0  # between tries to join the cluster, and looks for a node with room for a unit


def connect(address: str, wait_s: float = 0.0) -> None:
    """Join the cluster at `address` once per process (`auto`, `ray://host:10001`, `host:port`),
    trying again every second for up to `wait_s` (a cluster whose head is still starting)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return _join(address)
        except ClusterUnavailable:
            if time.monotonic() >= deadline:
                raise
        time.sleep(ROOM_POLL_S)


def _join(address: str) -> None:
    if ray.is_initialized():
        return
    # ray.init makes SIGTERM exit the process; the job worker's own handler hands its job back
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()
        raise ClusterUnavailable(
            f"cannot join the Ray cluster at {address} (HWNAS_RAY_ADDRESS): "
            f"{first[0] if first else type(exc).__name__}"
        ) from None
    finally:
        if threading.current_thread() is threading.main_thread():
            for sig, handler in handlers.items():
                if handler is not None:  # None: not installed from Python, nothing to restore
                    signal.signal(sig, handler)


def run_units(
    address: str,
    first: Sequence[SearchUnit],
    side_by_side: Sequence[SearchUnit],
    *,
    resources: UnitResources,
    check_cancelled: Callable[[], None],
) -> list[UnitResult]:
    """Run `first` in turn, then `side_by_side` at once; returns the results of the units that
    return one (budget units), in their order. Raises ResourcesUnavailable when no node could
    run a unit, UnitsFailed naming every unit that failed for good, or whatever
    `check_cancelled` raises once the running tasks are cancelled."""
    connect(address, resources.wait_s)
    nodes = check_room(address, resources)
    if len(side_by_side) > 1 and len(nodes) > 1:
        _warm(nodes)
    task = ray.remote(_run_unit).options(**task_options(resources), max_retries=MAX_RETRIES)
    for unit in first:
        wait_all([unit.name], [task.remote(unit, resources.cpus)], check_cancelled)
    order = longest_first(side_by_side)
    refs = {unit.name: task.remote(unit, resources.cpus) for unit in order}
    names = [unit.name for unit in side_by_side]
    results = wait_all(names, [refs[name] for name in names], check_cancelled)
    return [result for result in results if result is not None]


def _warm(nodes: Sequence[str]) -> None:
    """Start a worker process of this job on each of `nodes` now, while the first units run, so
    the side-by-side units find one instead of waiting for a process to start and import torch
    (a node's workers serve one job, a job worker's run, so each job starts its own). The
    tasks declare no CPUs; each runs once and nothing waits for it."""
    warm = ray.remote(_import_units)
    for node in nodes:
        place = NodeAffinitySchedulingStrategy(node, soft=True)
        warm.options(num_cpus=0, max_retries=0, scheduling_strategy=place).remote()


def _import_units() -> None:
    import search.shared  # noqa: F401
    import service.worker.units  # noqa: F401  (the search's modules, torch among them)


def _run_unit(unit: SearchUnit, candidate_cpus: float) -> UnitResult | None:
    """The unit, its baseline's candidates (if any) trained as tasks of their own; its
    `unit_usage` event says what its process used (`ray_usage`)."""
    from search.request import build_requests

    meter = UsageMeter()
    folder = unit.folder(build_requests(unit.document, Path(unit.out)))
    folder.mkdir(parents=True, exist_ok=True)
    with candidates_trained_by(ray_trainer(candidate_cpus, MAX_RETRIES, folder)):
        result = run_unit(unit)
    emit = unit.sink.open() if isinstance(unit.sink, JobSink) else unit.sink.open_at(folder)
    tag = {} if unit.budget is None else {"budget_ms": unit.budget}
    emit({"type": "unit_usage", "unit": unit.name, "pid": os.getpid(), **tag, **meter.read()})
    return result


def task_options(resources: UnitResources) -> dict[str, Any]:
    """A unit task's resource options: its CPUs, and its GPUs and memory where declared."""
    options: dict[str, Any] = {"num_cpus": resources.cpus}
    if resources.gpus:
        options["num_gpus"] = resources.gpus
    if resources.memory_mb:
        options["memory"] = resources.memory_mb * 1024**2
    return options


def check_room(address: str, resources: UnitResources) -> list[str]:
    """The ids of the live nodes with every resource a unit declares, waiting up to
    `resources.wait_s` for one to join (a cluster whose workers are still starting);
    ResourcesUnavailable when none has by then (Ray would keep such tasks pending, waiting for
    a node that may never come)."""
    wanted = resources.wanted()
    deadline = time.monotonic() + resources.wait_s
    while True:
        nodes = {node["NodeID"]: node.get("Resources", {}) for node in _live_nodes()}
        problem = missing_room(wanted, list(nodes.values()))
        if not problem:
            return [node for node, room in nodes.items() if not missing_room(wanted, [room])]
        if time.monotonic() >= deadline:
            waited = f" (waited {resources.wait_s:g} s, HWNAS_RAY_WAIT_S)"
            raise ResourcesUnavailable(f"no node of the Ray cluster at {address} {problem}{waited}")
        time.sleep(ROOM_POLL_S)


def _live_nodes() -> list[dict[str, Any]]:
    return [node for node in ray.nodes() if node.get("Alive")]


def wait_all(
    names: Sequence[str], refs: list[Any], check_cancelled: Callable[[], None]
) -> list[Any]:
    """Each task's result, in the order of `refs` (`names` name their units), once all have
    finished; UnitsFailed naming those that failed for good. Whatever `check_cancelled` raises
    cancels the tasks still running first."""
    pending = list(refs)
    try:
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=WAIT_S)
            check_cancelled()
    except BaseException:
        cancel(pending)
        raise
    results: list[Any] = []
    failures: dict[str, str] = {}
    for name, ref in zip(names, refs, strict=True):
        try:
            results.append(ray.get(ref))
        except ray.exceptions.RayError as exc:
            failures[name] = _reason(exc)
    if failures:
        raise UnitsFailed(failures)
    return results


def cancel(refs: list[Any]) -> None:
    """Cancel the tasks: first as Ctrl-C would (a KeyboardInterrupt in the task, so its own
    cleanup runs: a file being written atomically leaves no temporary), then, for those still
    running after CANCEL_GRACE_S (stuck in native code), by killing their worker."""
    if not refs:
        return
    for ref in refs:
        ray.cancel(ref, force=False)
    _, running = ray.wait(refs, num_returns=len(refs), timeout=CANCEL_GRACE_S)
    for ref in running:
        ray.cancel(ref, force=True)


def _reason(exc: Exception) -> str:
    """The unit's own error message, not Ray's wrapping and traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, Exception) and str(cause):
        return str(cause).splitlines()[0]
    if isinstance(exc, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError):
        return f"its worker died {MAX_RETRIES + 1} times"
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
