"""What tasks hold and what agents post back: building task payloads, the task as an agent sees
it, and recording an agent's results (idempotently) into the LUT or onto the task."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lut.db import MeasurementRow
from lut.measurement import Measurement
from lut.opspec import OpSpec
from lut.predictor import FixedCosts, needs_measurement
from lut.store import Device, LutStore
from profilers.agent.wire import CONVERSION_FIELD, PROTOCOL_VERSION
from profilers.artifacts import Artifact, ArtifactStore, converter_version, file_sha256
from profilers.timers import FILE_FORMATS
from service.crud import agents as queue
from service.crud.agents import Agent, Task
from service.crud.ownership import check_task

# The exported file an agent of each backend times end to end (deploy.formats registers them).
BACKEND_FORMATS = {"onnxruntime": "onnx", "litert": "tflite", "tensorrt": "tensorrt"}


class ResultRejected(ValueError):
    """Results that do not match the task (HTTP 422); the message says why."""


def micro_models(artifacts_dir: Path) -> ArtifactStore:
    """The server's converted micro-models, probes and support models (settings.artifacts_dir)."""
    return ArtifactStore(Path(artifacts_dir) / "micro-models")


def registered_fingerprint(fingerprint: dict[str, Any]) -> dict[str, Any]:
    """The fingerprint a LUT gets from an agent's: a thin agent's (`conversion: server`) names
    the server's converter too (a new converter version is a new LUT). ValueError for a thin
    agent of a runtime the server converts no files for."""
    if fingerprint.get(CONVERSION_FIELD) != "server":
        return dict(fingerprint)
    fmt = FILE_FORMATS.get(str(fingerprint.get("backend")))
    if fmt is None:
        raise ValueError(f"the server converts files for {', '.join(sorted(FILE_FORMATS))} only")
    return {**fingerprint, "converter": converter_version(fmt)}


def server_format(device: Device) -> str | None:
    """The format the server converts files to for `device`'s agents: its runtime's, when the
    LUT was registered by a thin agent (the fingerprint says the server converts); else None
    (the agent converts, or builds, what it times itself)."""
    if device.fingerprint.get(CONVERSION_FIELD) != "server":
        return None
    return FILE_FORMATS.get(device.backend)


def _files(refs: dict[str, Artifact]) -> dict[str, dict[str, Any]]:
    return {name: artifact.to_dict() for name, artifact in refs.items()}


def _need_store(artifacts: ArtifactStore | None, device: Device) -> ArtifactStore:
    if artifacts is None:
        raise ValueError(f"device {device.name}'s agents time the server's files: no store given")
    return artifacts


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
    *,
    artifacts: ArtifactStore | None = None,
    between_chunks: Callable[[], None] | None = None,
) -> list[Task]:
    """Tasks of at most `chunk` specs each (several agents of one device share the work), for
    a job of `tenant` (who must be allowed to use the device: ownership.may_use). For a thin
    agent's LUT each chunk's micro-models are converted into `artifacts` first and the task
    carries their files; a task is created as soon as its chunk is converted, so agents start
    while the rest converts (`between_chunks` runs between two: a cancelled job stops there)."""
    unique = {s.key: s for s in specs if needs_measurement(s)}
    ordered = [unique[key] for key in sorted(unique)]
    fmt = server_format(device)
    created = []
    for start in range(0, len(ordered), chunk):
        if between_chunks is not None and start:
            between_chunks()
        part = ordered[start : start + chunk]
        payload: dict[str, Any] = {
            "specs": [s.to_dict() for s in part],
            "keys": [s.key for s in part],
        }
        versions: tuple[str, ...] = ()
        if fmt is not None:
            converted = _need_store(artifacts, device)
            payload["files"] = _files({**converted.support(fmt), **converted.ops(part, fmt)})
            versions = (converter_version(fmt),)
        key = queue.dedupe_key(device.id, "opspecs", *versions, *(s.key for s in part))
        created.append(
            queue.create_task(
                store.engine, device.id, "opspecs", payload, key=key, job_id=job_id, tenant=tenant
            )
        )
    return created


def create_fixed_costs_task(
    store: LutStore,
    device: Device,
    job_id: str | None,
    tenant: str | None = None,
    *,
    artifacts: ArtifactStore | None = None,
) -> Task:
    """The fixed costs' task; for a thin agent's LUT it carries the probe models' files."""
    payload: dict[str, Any] = {}
    versions: tuple[str, ...] = ()
    fmt = server_format(device)
    if fmt is not None:
        converted = _need_store(artifacts, device)
        payload["files"] = _files({**converted.support(fmt), **converted.probes(fmt)})
        versions = (converter_version(fmt),)
    key = queue.dedupe_key(device.id, "fixed_costs", device.fingerprint_hash, *versions)
    return queue.create_task(
        store.engine, device.id, "fixed_costs", payload, key=key, job_id=job_id, tenant=tenant
    )


def create_model_task(
    store: LutStore,
    device: Device,
    fmt: str,
    file: str,
    input_shape: Sequence[int],
    job_id: str,
    tenant: str,
    *,
    artifacts: ArtifactStore | None = None,
) -> Task:
    """A task to time job `job_id`'s exported file: only agents serving `tenant` take it. The
    file is named by its sha256 (agents cache what they downloaded); a thin agent's task
    carries the support models too."""
    model = Artifact(file_sha256(Path(file)), Path(file).stat().st_size, fmt)
    files = {"model": model}
    server_fmt = server_format(device)
    if server_fmt is not None:
        files.update(_need_store(artifacts, device).support(server_fmt))
    payload = {
        "format": fmt,
        "file": file,
        "input_shape": list(input_shape),
        "files": _files(files),
    }
    key = queue.dedupe_key(device.id, "model", job_id, fmt)
    return queue.create_task(
        store.engine, device.id, "model", payload, key=key, job_id=job_id, tenant=tenant
    )


def public_task(store: LutStore, task: Task) -> dict[str, Any] | None:
    """The task as its agent sees it (no server paths); None when nothing is left to do,
    as when other agents already measured every spec of it."""
    files: dict[str, Any] | None = task.payload.get("files")
    base: dict[str, Any] = {
        "id": task.id,
        "kind": task.kind,
        "attempt": task.attempts,
        "protocol": PROTOCOL_VERSION,
        "files": files,
    }
    if task.kind == "opspecs":
        specs = task_spec_dicts(task)
        todo = missing_keys(store, task.device_id, list(specs))
        if not todo:
            queue.finish_task(store.engine, task.id)
            return None
        if files is not None:  # the files of what is left to do, and the support models
            base["files"] = {k: v for k, v in files.items() if k in todo or k not in specs}
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
