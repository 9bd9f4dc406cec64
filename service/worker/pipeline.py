"""The stages of one job: profiling (through agents), searching and training (search.run),
exporting (deploy.api), measuring on the target (through agents). Each stage can run again
after a worker died: finished work is found on disk and skipped, the search resumes from its
checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from search.request import SearchRequest
from search.run import run_search
from service.worker import agent_stages
from service.worker.context import JobFailed, StageContext


def profiling(ctx: StageContext, set_state: Any) -> None:
    set_state("profiling")
    agent_stages.profiling_stage(ctx)


def searching(ctx: StageContext, request: SearchRequest, data: Any) -> dict[str, Any]:
    """The search and the child's training (run_search moves the job to searching, then
    training, through its state events); skipped when a previous attempt finished it."""
    import json

    metrics_file = ctx.run_dir / "metrics.json"
    if metrics_file.exists():
        ctx.emit({"type": "skipped", "stage": "searching", "reason": "metrics.json exists"})
        return dict(json.loads(metrics_file.read_text()))
    return run_search(request, ctx.store, ctx.run_dir, data=data, on_event=ctx.emit)


def exporting(ctx: StageContext, formats: list[str], set_state: Any) -> dict[str, Any]:
    if not formats:
        return {}
    if ctx.export_files and all(Path(p).exists() for p in ctx.export_files.values()):
        return {"files": sorted(ctx.export_files), "errors": {}}  # a previous attempt's
    set_state("exporting")
    from deploy.api import DeployError, export_run

    try:
        result = export_run(ctx.run_dir, formats, on_event=lambda e: ctx.emit(_export_event(e)))
    except DeployError as exc:
        raise JobFailed(f"export failed: {exc}") from None
    except NotImplementedError as exc:
        raise JobFailed(f"exporting is not available in this installation: {exc}") from None
    ctx.export_files.update({fmt: str(Path(p)) for fmt, p in result.get("files", {}).items()})
    if not ctx.export_files:
        errors = "; ".join(f"{k}: {v}" for k, v in result.get("errors", {}).items())
        raise JobFailed(f"no format could be exported ({errors})")
    return {"files": sorted(ctx.export_files), "errors": result.get("errors", {})}


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
