"""The stages of one job: profiling (through agents), searching and training (search.run),
exporting (deploy.api), measuring on the target (through agents). Each stage can run again
after a worker died: finished work is found on disk and skipped, the search resumes from its
checkpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.run import run_search
from search.shared import BudgetRun, run_shared_search, shares_supernet
from service.worker import agent_stages
from service.worker.context import JobFailed, StageContext


@dataclass(frozen=True)
class SearchPlan:
    """A job's search: its request document and one request per budget on the primary device
    (`search.request.build_requests`)."""

    document: dict[str, Any]
    requests: list[BudgetRun]


def profiling(ctx: StageContext, set_state: Any) -> None:
    set_state("profiling")
    agent_stages.profiling_stage(ctx)


def searching(ctx: StageContext, plan: SearchPlan, data: Any) -> dict[str, Any]:
    """The search and the child's training (run_search moves the job to searching, then
    training, through its state events); skipped when a previous attempt finished it.

    With several budgets: one supernet for all of them (`search.shared`, unless the job asks
    for `shared_supernet: false`), each budget's result under `budget-<ms>/`, and pareto.json,
    .md and .png in the run directory; the job's metrics list every budget's metrics (with its
    `budget_ms` and `run`) and the Pareto rows.

    With `HWNAS_RAY_ADDRESS` set the search's units run as Ray tasks (`_searching_on_ray`)."""
    if ctx.settings.ray_address:
        return _searching_on_ray(ctx, plan)
    if len(plan.requests) > 1:
        return _searching_budgets(ctx, plan, data)
    ((_, _, request),) = plan.requests
    metrics_file = ctx.run_dir / "metrics.json"
    if metrics_file.exists():
        ctx.emit({"type": "skipped", "stage": "searching", "reason": "metrics.json exists"})
        return dict(json.loads(metrics_file.read_text()))
    return run_search(request, ctx.store, ctx.run_dir, data=data, on_event=ctx.emit)


def _searching_budgets(ctx: StageContext, plan: SearchPlan, data: Any) -> dict[str, Any]:
    if shares_supernet(plan.document, plan.requests):
        results = run_shared_search(
            plan.requests, ctx.store, ctx.run_dir, data=data, on_event=ctx.emit
        )
    else:
        from service.worker.units import search_once

        results = []
        for budget, run_dir, request in plan.requests:
            emit = _with_budget(ctx, budget)
            results.append((budget, run_dir, search_once(request, ctx.store, run_dir, data, emit)))
    return _budgets_outcome(ctx, results)


def _budgets_outcome(
    ctx: StageContext, results: list[tuple[float | None, Path, dict[str, Any]]]
) -> dict[str, Any]:
    from search.pareto import write_pareto

    rows = write_pareto(ctx.run_dir, results)
    budgets = [
        {**metrics, "budget_ms": budget, "run": run_dir.name}
        for budget, run_dir, metrics in results
    ]
    return {"budgets": budgets, "pareto": rows}


def _searching_on_ray(ctx: StageContext, plan: SearchPlan) -> dict[str, Any]:
    """The weight phase as one Ray task, then every budget's unit as a task of its own, side by
    side; the units write their events to the job's stream themselves (budget-tagged) and
    their checkpoints and results to the artifact store. A failed unit fails the job with
    every failed unit's name and reason."""
    from service.worker.executors import (
        ClusterUnavailable,
        UnitResources,
        UnitsFailed,
        run_on_ray,
    )
    from service.worker.units import JobSink, search_units

    settings = ctx.settings
    first, side_by_side = search_units(
        plan.document,
        plan.requests,
        ctx.run_dir,
        database_url=settings.database_url,
        dataset=str(plan.document["dataset"]),
        sink=JobSink(settings.database_url, ctx.job_id, ctx.worker_id),
    )
    units = [unit.name for unit in [*first, *side_by_side]]
    ctx.emit({"type": "units", "executor": "ray", "units": units})
    try:
        results = run_on_ray(
            settings.ray_address,
            first,
            side_by_side,
            resources=UnitResources.of(settings),
            check_cancelled=ctx.check_cancelled,
        )
    except UnitsFailed as exc:
        raise JobFailed(f"{len(exc.failures)} of {len(units)} units failed: {exc}") from None
    except ClusterUnavailable as exc:
        raise JobFailed(str(exc)) from None
    if len(plan.requests) == 1:
        return results[0][2]
    return _budgets_outcome(ctx, [(b, Path(run_dir), m) for b, run_dir, m in results])


def _with_budget(ctx: StageContext, budget: float | None) -> Any:
    def emit(event: dict[str, Any]) -> None:
        ctx.emit({**event, "budget_ms": budget})

    return emit


def exporting(ctx: StageContext, formats: list[str], set_state: Any) -> dict[str, Any]:
    if not formats:
        return {}
    if ctx.export_files and all(Path(p).exists() for p in ctx.export_files.values()):
        return {"files": sorted(ctx.export_files), "errors": {}}  # a previous attempt's
    set_state("exporting")
    from deploy.api import DeployError, export_run
    from service.worker.executors import ClusterUnavailable, UnitsFailed

    try:
        result = export_run(
            ctx.run_dir,
            formats,
            on_event=lambda e: ctx.emit(_export_event(e)),
            exporter=_exporter_on_ray(ctx) if ctx.settings.ray_address else None,
        )
    except (DeployError, UnitsFailed) as exc:
        raise JobFailed(f"export failed: {exc}") from None
    except ClusterUnavailable as exc:
        raise JobFailed(str(exc)) from None
    except NotImplementedError as exc:
        raise JobFailed(f"exporting is not available in this installation: {exc}") from None
    ctx.export_files.update({fmt: str(Path(p)) for fmt, p in result.get("files", {}).items()})
    if not ctx.export_files:
        errors = "; ".join(f"{k}: {v}" for k, v in result.get("errors", {}).items())
        raise JobFailed(f"no format could be exported ({errors})")
    return {"files": sorted(ctx.export_files), "errors": result.get("errors", {})}


def _exporter_on_ray(ctx: StageContext) -> Any:
    """Each format converted as a Ray task (its events written to the job's stream by the
    task); verifying, measuring and the card stay in this process, as embedded."""
    from service.worker.executors import UnitResources, ray_exporter
    from service.worker.units import JobSink

    settings = ctx.settings
    return ray_exporter(
        settings.ray_address,
        ctx.run_dir,
        resources=UnitResources.of(settings),
        sink=JobSink(settings.database_url, ctx.job_id, ctx.worker_id),
        check_cancelled=ctx.check_cancelled,
    )


def _export_event(event: dict[str, Any]) -> dict[str, Any]:
    """deploy's own steps (verifying, its "done") are not job states: relabelled."""
    kind = event.get("type")
    if kind in ("state", "done"):
        return {**event, "type": f"export_{'step' if kind == 'state' else 'done'}"}
    return event


def measuring(ctx: StageContext, set_state: Any) -> dict[str, Any] | None:
    if not ctx.export_files:
        return None
    set_state("measuring")
    return dict(agent_stages.measuring_stage(ctx))
