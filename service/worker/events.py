"""A job's events as the database records them: search events become the job's progress, state
events move its state (forward only), the search's own `done` is relabelled `search_done`. The
job worker and every Ray unit of a job write through `job_emitter`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine

from service.crud.jobs import record_event, set_state
from service.worker.states import RUNNING

EventFn = Callable[[dict[str, Any]], None]


def progress_of(event: dict[str, Any]) -> dict[str, Any] | None:
    kind = event.get("type")
    # a job with several budgets: which phase (weights, architecture) and budget it is in
    where: dict[str, Any] = {k: event[k] for k in ("phase", "budget_ms") if k in event}
    if kind == "search":
        keys = ("epoch", "epochs", "step", "steps", "loss", "accuracy", "expected_latency_ms")
        progress = {k: event.get(k) for k in keys}
        fraction = event["step"] / event["steps"]
        return {"state": "searching", **progress, **where, "fraction": fraction}
    if kind == "train":
        progress = {k: event.get(k) for k in ("epoch", "epochs", "accuracy")}
        fraction = event["epoch"] / event["epochs"]
        return {"state": "training", **progress, **where, "fraction": fraction}
    if kind == "trial":
        return {"state": "searching", **{k: event.get(k) for k in ("trial", "trials", "accuracy")}}
    return None


def job_emitter(engine: Engine, job_id: str, worker_id: str) -> EventFn:
    """Records a job's events under the lease of `worker_id`; raises
    `service.crud.jobs.LeaseLost` once the job is no longer that worker's (finished, cancelled,
    claimed by another)."""

    def emit(event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "state" and event.get("state") in RUNNING:
            set_state(engine, job_id, worker_id, str(event["state"]))
            return
        if kind == "done":  # the search's result, not the job's end
            event = {**event, "type": "search_done"}
        record_event(engine, job_id, worker_id, event, progress_of(event))

    return emit
