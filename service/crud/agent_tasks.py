"""What tasks hold and what agents post back: building task payloads, the task as an agent sees
it, and recording an agent's results (idempotently) into the LUT or onto the task."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from lut.db import MeasurementRow
from lut.measurement import Measurement
from lut.opspec import OpSpec
from lut.predictor import FixedCosts, needs_measurement
from lut.store import Device, LutStore
from service.crud import agents as queue
from service.crud.agents import Agent, Task
from service.crud.ownership import check_task

# The exported file an agent of each backend times end to end (deploy.formats registers them).
BACKEND_FORMATS = {"onnxruntime": "onnx", "litert": "tflite", "tensorrt": "tensorrt"}


class ResultRejected(ValueError):
    """Results that do not match the task (HTTP 422); the message says why."""


def task_spec_dicts(task: Task) -> dict[str, dict[str, Any]]:
    """op key → OpSpec dict of an opspecs task (keys stored at creation: hashing is not free)."""
    specs = task.payload.get("specs", [])
    keys = task.payload.get("keys") or [OpSpec.from_dict(d).key for d in specs]
    return dict(zip(keys, specs, strict=True))


def create_opspec_tasks(
    store: LutStore,
    device: Device,
    specs: Sequence[OpSpec],
    chunk: int,
    job_id: str | None,
    tenant: str | None = None,
) -> list[Task]:
    """Tasks of at most `chunk` specs each (several agents of one device share the work), for
    a job of `tenant` (who must be allowed to use the device: ownership.may_use)."""
    unique = {s.key: s for s in specs if needs_measurement(s)}
    ordered = [unique[key] for key in sorted(unique)]
    created = []
    for start in range(0, len(ordered), chunk):
        part = ordered[start : start + chunk]
        key = queue.dedupe_key(device.id, "opspecs", *(s.key for s in part))
        payload = {"specs": [s.to_dict() for s in part], "keys": [s.key for s in part]}
        created.append(
            queue.create_task(
                store.engine, device.id, "opspecs", payload, key=key, job_id=job_id, tenant=tenant
            )
        )
    return created


def create_fixed_costs_task(
    store: LutStore, device: Device, job_id: str | None, tenant: str | None = None
) -> Task:
    key = queue.dedupe_key(device.id, "fixed_costs", device.fingerprint_hash)
    return queue.create_task(
        store.engine, device.id, "fixed_costs", {}, key=key, job_id=job_id, tenant=tenant
    )


def create_model_task(
    store: LutStore,
    device: Device,
    fmt: str,
    file: str,
    input_shape: Sequence[int],
    job_id: str,
    tenant: str,
) -> Task:
    """A task to time job `job_id`'s exported file: only agents serving `tenant` take it."""
    payload = {"format": fmt, "file": file, "input_shape": list(input_shape)}
    key = queue.dedupe_key(device.id, "model", job_id, fmt)
    return queue.create_task(
        store.engine, device.id, "model", payload, key=key, job_id=job_id, tenant=tenant
    )


def public_task(store: LutStore, task: Task) -> dict[str, Any] | None:
    """The task as its agent sees it (no server paths); None when nothing is left to do,
    as when other agents already measured every spec of it."""
    base: dict[str, Any] = {"id": task.id, "kind": task.kind, "attempt": task.attempts}
    if task.kind == "opspecs":
        specs = task_spec_dicts(task)
        todo = missing_keys(store, task.device_id, list(specs))
        if not todo:
            queue.finish_task(store.engine, task.id)
            return None
        return {
            **base,
            "specs": [spec for key, spec in specs.items() if key in todo],
            "reference_ms": _lut_reference_ms(store, task.device_id),
        }
    if task.kind == "model":
        return {
            **base,
            "format": task.payload["format"],
            "input_shape": task.payload["input_shape"],
            "reference_ms": _lut_reference_ms(store, task.device_id),
        }
    return base


def _lut_reference_ms(store: LutStore, device_id: int) -> float | None:
    """The drift reference's nominal latency that the LUT's measurements are in, if any."""
    fixed = store.device(device_id).fixed_costs
    return fixed.reference_ms if fixed else None


def missing_keys(store: LutStore, device_id: int, keys: Sequence[str]) -> set[str]:
    """Which of these op keys the device's LUT lacks (looks up only them, not the whole LUT).
    Tasks never hold identity ops, which need no measuring."""
    query = select(MeasurementRow.op_key).where(
        MeasurementRow.device_id == device_id, MeasurementRow.op_key.in_(set(keys))
    )
    with store.engine.connect() as connection:
        have = set(connection.execute(query).scalars())
    return set(keys) - have


def record_measurements(
    store: LutStore,
    agent: Agent,
    task: Task,
    items: Sequence[tuple[OpSpec, Measurement]],
    profiler_version: str,
) -> int:
    """Store OpSpec measurements (insert-or-ignore: posting twice keeps one row); the task is
    done once its device holds every spec it asked for. Returns how many rows were new."""
    check_task(store, agent, task)
    if task.kind != "opspecs":
        raise ResultRejected(f"task {task.id} is a {task.kind} task, not an opspecs task")
    asked = task_spec_dicts(task)
    for spec, _ in items:
        if spec.key not in asked:
            raise ResultRejected(f"task {task.id} did not ask for op {spec.short()} ({spec.key})")
    device = store.device(task.device_id)
    added = store.add_measurements(device, items, profiler_version=profiler_version)
    if not missing_keys(store, task.device_id, list(asked)):
        queue.finish_task(store.engine, task.id)
    return added


def record_fixed_costs(store: LutStore, agent: Agent, task: Task, fixed: FixedCosts) -> None:
    check_task(store, agent, task)
    if task.kind != "fixed_costs":
        raise ResultRejected(f"task {task.id} is a {task.kind} task, not a fixed_costs task")
    store.set_fixed_costs(store.device(task.device_id), fixed)
    queue.finish_task(store.engine, task.id)


def record_model_measurement(
    store: LutStore, agent: Agent, task: Task, measurement: Measurement
) -> None:
    check_task(store, agent, task)
    if task.kind != "model":
        raise ResultRejected(f"task {task.id} is a {task.kind} task, not a model task")
    result = {
        "measurement": json_safe(measurement.to_dict()),
        "agent": agent.id,
        "device": agent.name,
        "lut": agent.device_id,
        "format": task.payload["format"],
    }
    queue.finish_task(store.engine, task.id, result=result)


def record_failure(store: LutStore, agent: Agent, task: Task, error: str) -> None:
    check_task(store, agent, task)
    queue.finish_task(store.engine, task.id, error=f"agent {agent.name}: {error}")


def json_safe(value: Any) -> Any:
    """Non-finite numbers (a median CI over fewer than 6 runs is infinite) become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value
