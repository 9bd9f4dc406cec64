"""Search units as Ray tasks: the units that must finish first (the shared weight phase) one at
a time, then every budget's unit at once, each declaring its CPUs, so the cluster runs as many
side by side as it has room for. A task whose worker or node dies is retried by Ray and resumes
from its unit's checkpoint; cancelling (or any error in the caller's check) cancels every task
still running; a task that fails for good fails its unit, and the others finish first."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any

import ray

from service.worker.executors import ClusterUnavailable, UnitsFailed
from service.worker.units import SearchUnit, UnitResult, run_unit

# how often Ray runs a unit again after its worker process or node died (each run resumes)
MAX_RETRIES = 3
WAIT_S = 0.5  # between checks of the caller's cancel flag


def connect(address: str) -> None:
    """Join the cluster at `address` once per process (`auto`, `ray://host:10001`, `host:port`)."""
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
    cpus: float,
    check_cancelled: Callable[[], None],
) -> list[UnitResult]:
    """Run `first` in turn, then `side_by_side` at once; returns the results of the units that
    return one (budget units), in their order. Raises UnitsFailed naming every unit that failed
    for good, or whatever `check_cancelled` raises once the running tasks are cancelled."""
    connect(address)
    task = ray.remote(run_unit).options(num_cpus=cpus, max_retries=MAX_RETRIES)
    for unit in first:
        _wait_all([unit], [task.remote(unit)], check_cancelled)
    refs = [task.remote(unit) for unit in side_by_side]
    results = _wait_all(side_by_side, refs, check_cancelled)
    return [result for result in results if result is not None]


def _wait_all(
    units: Sequence[SearchUnit], refs: list[Any], check_cancelled: Callable[[], None]
) -> list[UnitResult | None]:
    pending = list(refs)
    try:
        while pending:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=WAIT_S)
            check_cancelled()
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise
    results: list[UnitResult | None] = []
    failures: dict[str, str] = {}
    for unit, ref in zip(units, refs, strict=True):
        try:
            results.append(ray.get(ref))
        except ray.exceptions.RayError as exc:
            failures[unit.name] = _reason(exc)
    if failures:
        raise UnitsFailed(failures)
    return results


def _reason(exc: Exception) -> str:
    """The unit's own error message, not Ray's wrapping and traceback."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, Exception) and str(cause):
        return str(cause).splitlines()[0]
    if isinstance(exc, ray.exceptions.WorkerCrashedError | ray.exceptions.NodeDiedError):
        return f"its worker died {MAX_RETRIES + 1} times"
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
