"""The job stages that run on agents: `profiling` (fill a device's LUT for the job's space) and
`measuring` (time the exported model on the real target). Both wait on the task queue, and ask
a device's agents for work only when the job's tenant may use the device (ownership.may_use)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lut.coverage import Coverage, coverage
from lut.opspec import OpSpec
from lut.store import Device, DeviceNotFound
from service.crud import agents as queue
from service.crud import ownership
from service.crud.agent_tasks import (
    BACKEND_FORMATS,
    create_fixed_costs_task,
    create_model_task,
    create_opspec_tasks,
    micro_models,
)
from service.crud.agents import Task
from service.worker.context import JobFailed, StageContext
from service.worker.executors import micro_model_store

NOT_MEASURED = "not measured on target"


def profiling_stage(ctx: StageContext) -> None:
    """Make every device's LUT cover the space (all distinct ops and the fixed costs) through
    its agents; fail after `agent_wait_s` without an online agent for a device."""
    specs = ctx.space.distinct_opspecs()
    for name in ctx.devices:
        _profile_device(ctx, name, specs)


def _newest_lut(ctx: StageContext, name: str) -> Device | None:
    """The LUT the search will use (`store.resolve_device`), None while no agent registered."""
    try:
        return ctx.store.resolve_device(name)
    except DeviceNotFound as exc:
        if ctx.store.devices(name):
            raise JobFailed(str(exc)) from None
        return None


def _profile_device(ctx: StageContext, name: str, specs: list[OpSpec]) -> None:
    last_online = time.monotonic()
    tasks: list[Task] = []
    tasks_device: int | None = None
    reported: tuple[Any, ...] | None = None
    while True:
        ctx.check_cancelled()
        device = _newest_lut(ctx, name)
        if device is not None:
            cover = coverage(ctx.store, device, specs)
            if cover.complete:
                ctx.emit(_progress_event(name, cover, online=None, done=True))
                return
            if not ownership.may_use(ctx.store, name, ctx.tenant):
                raise JobFailed(
                    f"device {name}'s LUT lacks {len(cover.missing)} op(s) of the space"
                    + ("" if cover.fixed_costs else " and its fixed costs")
                    + "; "
                    + ownership.not_shared(name, ctx.tenant)
                )
            if tasks_device != device.id:
                tasks, tasks_device = _create_profiling_tasks(ctx, device, cover), device.id
            _raise_on_failed(ctx, name, tasks)
            online = len(ownership.serving_agents(ctx.store, device, _offline_after(ctx)))
            if online:
                last_online = time.monotonic()
            state = (cover.measured, cover.fixed_costs, online)
            if state != reported:
                ctx.emit(_progress_event(name, cover, online=online, done=False))
                reported = state
        if time.monotonic() - last_online > ctx.settings.agent_wait_s:
            raise JobFailed(
                f"no agent online for device {name} for {ctx.settings.agent_wait_s:g} s; "
                f"start one on the target: hwnas agent --name {name} ..."
            )
        time.sleep(_poll_s(ctx))


def _create_profiling_tasks(ctx: StageContext, device: Device, cover: Coverage) -> list[Task]:
    """The device's missing work as tasks; for a thin agent's LUT this worker converts the
    files they carry (the fixed costs' probes first, then the ops chunk by chunk)."""
    chunk = ctx.settings.agent_task_specs
    artifacts = micro_model_store(ctx.settings, ctx.check_cancelled, ctx.emit)  # Ray, if set
    created = []
    if not cover.fixed_costs:
        created.append(
            create_fixed_costs_task(ctx.store, device, ctx.job_id, ctx.tenant, artifacts=artifacts)
        )
    created += create_opspec_tasks(
        ctx.store,
        device,
        cover.missing,
        chunk,
        ctx.job_id,
        ctx.tenant,
        artifacts=artifacts,
        between_chunks=ctx.check_cancelled,
    )
    return created


def _raise_on_failed(ctx: StageContext, name: str, tasks: list[Task]) -> None:
    if not tasks:
        return
    for task in queue.tasks_by_id(ctx.engine, [t.id for t in tasks]):
        if task.status == "failed":
            raise JobFailed(f"profiling device {name} failed: {task.error}")


def _progress_event(name: str, cover: Coverage, *, online: int | None, done: bool) -> dict:
    return {
        "type": "profiling",
        "device": name,
        "measured": cover.measured,
        "total": cover.total,
        "fixed_costs": cover.fixed_costs,
        "agents_online": online,
        "done": done,
    }


def measuring_stage(ctx: StageContext) -> dict[str, Any]:
    """Time the exported file matching each device's backend on an agent of that device and
    record it in the model card, with the agent that took it; devices without an online agent
    serving the job's tenant are reported, not failed."""
    results = {name: _measure_on_target(ctx, name) for name in ctx.devices}
    return {"target_measurements": results}


def _measure_on_target(ctx: StageContext, name: str) -> dict[str, Any]:
    device = _newest_lut(ctx, name)
    if device is None:
        return _not_measured(ctx, name, "no agent ever registered for this device")
    if not ownership.may_use(ctx.store, name, ctx.tenant):
        return _not_measured(ctx, name, ownership.not_shared(name, ctx.tenant))
    fmt = BACKEND_FORMATS.get(device.backend)
    if fmt is None:
        return _not_measured(ctx, name, f"backend {device.backend} times no exported file")
    path = ctx.export_files.get(fmt)
    if not path or not Path(path).is_file():
        return _not_measured(ctx, name, f"the job exported no {fmt} file")
    if not ownership.serving_agents(ctx.store, device, _offline_after(ctx)):
        return _not_measured(ctx, name, "no agent online")
    task = create_model_task(
        ctx.store,
        device,
        fmt,
        path,
        ctx.space.input_shape,
        ctx.job_id,
        ctx.tenant,
        artifacts=micro_models(ctx.settings.artifacts_dir),
    )
    ctx.emit({"type": "measuring", "device": name, "format": fmt, "task": task.id})
    finished = _wait_for_task(ctx, device, task)
    if finished is None:
        return _not_measured(ctx, name, f"agent went away for {ctx.settings.agent_wait_s:g} s")
    if finished.status == "failed" or finished.result is None:
        return _not_measured(ctx, name, f"measuring failed: {finished.error}")
    measurement = _with_runtime(finished.result["measurement"], device)
    taken_by = {
        "agent": finished.result.get("agent"),
        "device": name,
        "lut": device.id,
        "fingerprint_hash": device.fingerprint_hash,
    }
    card_problem = _record_on_card(ctx, name, fmt, measurement, taken_by)
    outcome = {
        "status": "measured",
        "format": fmt,
        "median_ms": measurement["median_ms"],
        "agent": taken_by["agent"],
        "card_updated": card_problem is None,
    }
    if card_problem:
        outcome["card_error"] = card_problem
    ctx.emit({"type": "measured", "device": name, **outcome})
    return outcome


def _wait_for_task(ctx: StageContext, device: Device, task: Task) -> Task | None:
    """The task once done or failed; None when no agent was online for `agent_wait_s`. The
    task fails when the device stops being shared with the job's tenant meanwhile."""
    last_online = time.monotonic()
    while True:
        ctx.check_cancelled()
        current = queue.get_task(ctx.engine, task.id)
        if current is not None and current.status in ("done", "failed"):
            return current
        if not ownership.may_use(ctx.store, device.name, ctx.tenant):
            queue.finish_task(
                ctx.engine, task.id, error=ownership.not_shared(device.name, ctx.tenant)
            )
            continue
        if ownership.serving_agents(ctx.store, device, _offline_after(ctx)):
            last_online = time.monotonic()
        elif time.monotonic() - last_online > ctx.settings.agent_wait_s:
            return None
        time.sleep(_poll_s(ctx))


def _with_runtime(measurement: dict[str, Any], device: Device) -> dict[str, Any]:
    """The measurement as the card shows it: with the target's backend and runtime version."""
    extra = {**measurement.get("extra", {})}
    extra.setdefault("runtime_version", device.fingerprint.get("runtime_version"))
    return {**measurement, "extra": extra, "backend": device.backend}


def _record_on_card(
    ctx: StageContext,
    name: str,
    fmt: str,
    measurement: dict[str, Any],
    taken_by: dict[str, Any],
) -> str | None:
    """Write the target measurement, and the agent and device LUT that took it, into the model
    card; the reason when it cannot be."""
    from deploy.api import record_target_measurement

    try:
        record_target_measurement(ctx.run_dir, name, fmt, measurement, taken_by=taken_by)
    except (NotImplementedError, FileNotFoundError, ValueError) as exc:
        return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return None


def _not_measured(ctx: StageContext, name: str, reason: str) -> dict[str, Any]:
    outcome = {"status": NOT_MEASURED, "reason": reason}
    ctx.emit({"type": "measured", "device": name, **outcome})
    return outcome


def _offline_after(ctx: StageContext) -> float:
    return float(ctx.settings.agent_offline_after_s)


def _poll_s(ctx: StageContext) -> float:
    return min(float(ctx.settings.poll_s), 1.0)
