"""/jobs/{id}/layers and /jobs/{id}/history: a job's chosen network layer by layer with each
layer's predicted latency, and its architecture probabilities over the search's steps — what the
dashboard's job page draws, from the job's run directory and the devices' LUTs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool

from lut.predictor import MissingEntries
from lut.store import DeviceNotFound, LutStore
from search.cost import build_cost_model
from search.spaces.base import SearchSpace, parse_architecture, space_from_string
from service.api.deps import ObjectId, ReadEngineDep, UserPrincipal
from service.api.routes.jobs import own_job
from service.schemas.views import (
    BudgetLayers,
    DeviceLayers,
    JobHistory,
    JobLayers,
    LayerLatency,
    ProbabilityRun,
)
from service.worker.runner import run_dir_of

router = APIRouter(prefix="/jobs", tags=["jobs"])
MAX_STEPS_SHOWN = 200
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such job for this tenant"}}


def _results_of(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One metrics dict per budget: a job with several budgets lists them under `budgets`."""
    return list(metrics["budgets"]) if "budgets" in metrics else [metrics]


def _budget_of(result: dict[str, Any]) -> float | None:
    if result.get("budget_ms") is not None:
        return float(result["budget_ms"])
    budgets = list((result.get("budgets_ms") or {}).values())
    return float(budgets[0]) if budgets and budgets[0] is not None else None


def budget_layers(store: LutStore, result: dict[str, Any]) -> BudgetLayers:
    """The result's architecture with each layer's share of each device's predicted latency;
    a device whose LUT no longer gives one is named in `errors` with the reason."""
    space, arch = parse_architecture(result["arch"])
    devices, errors = [], {}
    for name in result.get("predicted_latency_ms") or {}:
        calibrated = bool((result.get("calibrated") or {}).get(name, True))
        try:
            devices.append(device_layers(store, name, space, arch.choices, calibrated))
        except (DeviceNotFound, MissingEntries, ValueError) as exc:
            errors[name] = str(exc).splitlines()[0]
    return BudgetLayers(
        budget_ms=_budget_of(result), arch=arch.to_string(), devices=devices, errors=errors
    )


def device_layers(
    store: LutStore, name: str, space: SearchSpace, choices: Sequence[str], calibrated: bool
) -> DeviceLayers:
    """Each layer's share of the device's predicted latency: the search's own per-choice costs
    (with the calibration when the job's prediction used one)."""
    model = build_cost_model(store, store.resolve_device(name), space, calibrated=calibrated)
    sample = [slot.candidates.index(t) for slot, t in zip(space.layers, choices, strict=True)]
    shares = model.layer_costs_of(sample)
    return DeviceLayers(
        device=name,
        calibrated=model.calibrated,
        constant_ms=model.constant_ms,
        total_ms=model.cost(sample),
        layers=[
            LayerLatency(layer=slot.label, choice=token, predicted_ms=share)
            for slot, token, share in zip(space.layers, choices, shares, strict=True)
        ],
    )


@router.get(
    "/{job_id}/layers",
    response_model=JobLayers,
    responses={**NOT_FOUND, 409: {"description": "the job has no architecture yet"}},
    summary="the chosen network layer by layer, each layer's predicted latency per device",
)
async def layers(
    job_id: ObjectId, request: Request, principal: UserPrincipal, engine: ReadEngineDep
) -> JobLayers:
    row = await own_job(engine, job_id, principal.tenant)
    chosen = [r for r in _results_of(row["metrics"] or {}) if "arch" in r]
    if not chosen:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"job {job_id} is {row['state']}; its architecture is known once it is done",
        )
    store = request.app.state.store
    results = await run_in_threadpool(lambda: [budget_layers(store, r) for r in chosen])
    return JobLayers(job_id=job_id, results=results)


def _history_files(run_dir: Path) -> list[tuple[float | None, Path]]:
    """(budget, history.jsonl) of the run: one at its root, or one per `budget-<ms>/`."""
    found: list[tuple[float | None, Path]] = []
    if (run_dir / "history.jsonl").is_file():
        found.append((None, run_dir / "history.jsonl"))
    for path in sorted(run_dir.glob("budget-*/history.jsonl")):
        try:
            found.append((float(path.parent.name.removeprefix("budget-")), path))
        except ValueError:
            continue
    return sorted(found, key=lambda item: -1.0 if item[0] is None else item[0])


def _read_lines(path: Path) -> list[dict[str, Any]]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line being written
    if len(records) > MAX_STEPS_SHOWN:
        stride = -(-len(records) // MAX_STEPS_SHOWN)
        records = [*records[::stride][: MAX_STEPS_SHOWN - 1], records[-1]]
    return records


def probability_run(space_text: str, budget: float | None, path: Path) -> ProbabilityRun:
    records = _read_lines(path)
    layout = space_from_string(space_text).layers
    labels = [slot.label for slot in layout]
    candidates = [list(slot.candidates) for slot in layout]
    if records and len(records[0]["probabilities"]) != len(labels):
        widths = [len(p) for p in records[0]["probabilities"]]
        labels = [f"layer {i + 1}" for i in range(len(widths))]
        candidates = [[f"choice {k + 1}" for k in range(w)] for w in widths]
    return ProbabilityRun(
        budget_ms=budget,
        layers=labels,
        candidates=candidates,
        steps=[int(r["step"]) for r in records],
        probabilities=[r["probabilities"] for r in records],
        expected_latency_ms=[
            {k: float(v) for k, v in r["expected_latency_ms"].items()} for r in records
        ],
    )


@router.get(
    "/{job_id}/history",
    response_model=JobHistory,
    responses=NOT_FOUND,
    summary="the architecture probabilities per layer over the search's steps, per budget",
)
async def history(
    job_id: ObjectId, request: Request, principal: UserPrincipal, engine: ReadEngineDep
) -> JobHistory:
    row = await own_job(engine, job_id, principal.tenant)
    run_dir = run_dir_of(request.app.state.settings, job_id)
    space = str(row["request"]["space"])
    runs = await run_in_threadpool(
        lambda: [probability_run(space, b, p) for b, p in _history_files(run_dir)]
    )
    return JobHistory(job_id=job_id, runs=runs)
