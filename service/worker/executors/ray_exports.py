"""A finished run's export formats as Ray tasks, one per format, each declaring the unit's
resources: a format that starts from another's file (onnx-int8 and tensorrt from onnx, c-array
from tflite-int8) takes that format's task result as an argument, so Ray starts it once that
file is written; the others convert side by side. Each task opens the run from the artifact
store itself (its arguments are the run folder, the format and the export options), writes its
file where the embedded path writes it, and records its events itself: in the job's stream, or
(the CLI's) in the run folder's events.jsonl."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from service.worker.executors import UnitResources
from service.worker.executors.ray_executor import (
    MAX_RETRIES,
    check_room,
    connect,
    task_options,
    wait_all,
)
from service.worker.units import FileSink, JobSink

Outcome = dict[str, str]  # {"path": ...} once written, or {"error": ...} when the format failed


@dataclass(frozen=True)
class ExportOptions:
    """What `deploy.run.export_job` and the exporters take besides the run (ExportJob's own)."""

    nhwc: bool
    dynamic_batch: bool
    pixels: str
    tensorrt_precision: str

    @classmethod
    def of(cls, job: Any) -> ExportOptions:
        return cls(job.nhwc, job.dynamic_batch, job.pixels, job.tensorrt_precision)


def ray_exporter(
    address: str,
    run_dir: Path,
    *,
    resources: UnitResources,
    sink: JobSink | FileSink,
    check_cancelled: Callable[[], None],
) -> Callable[..., dict[str, str]]:
    """An exporter for `deploy.api.export_run` (`deploy.run.export_formats`'s contract) that
    converts each format of `run_dir` as a Ray task; errors by format, as the embedded one
    returns them. A task that fails for good raises UnitsFailed (`export-<format>`). It joins
    the cluster and checks its room now, in the caller's thread, so exporters made in one
    thread can export from others (the CLI exports its runs side by side)."""
    connect(address, resources.wait_s)
    check_room(address, resources)

    def export(
        job: Any, names: list[str], paths: dict[str, Path], emit: Callable[..., None]
    ) -> dict[str, str]:
        from deploy.run import in_dependency_order

        task = ray.remote(_export_format).options(
            **task_options(resources), max_retries=MAX_RETRIES
        )
        options = ExportOptions.of(job)
        refs: dict[str, Any] = {}
        for name in in_dependency_order(names):
            needed = [refs[need] for need in _needs(name) if need in refs]
            refs[name] = task.remote(str(run_dir), name, str(paths[name]), options, sink, *needed)
        ordered = list(refs)
        outcomes = wait_all([f"export-{n}" for n in ordered], list(refs.values()), check_cancelled)
        return {name: outcome["error"] for name, outcome in outcomes if "error" in outcome}

    return export


def _needs(name: str) -> tuple[str, ...]:
    from deploy.formats import get_format

    return get_format(name).needs


def _export_format(
    run_dir: str,
    name: str,
    path: str,
    options: ExportOptions,
    sink: JobSink | FileSink,
    *needed: tuple[str, Outcome],
) -> tuple[str, Outcome]:
    """Format `name` of the run into `path`, from the files of the formats it needs that were
    written (`needed`: their tasks' results); (name, outcome). A format that cannot be
    converted is an outcome, as in `deploy.run.export_formats`; any other error fails the
    task."""
    from deploy.formats import ExportFailed, get_format
    from deploy.run import export_job, open_run

    emit = sink.open() if isinstance(sink, JobSink) else sink.open_at(Path(run_dir))
    where = {"host": socket.gethostname(), "pid": os.getpid()}
    emit({"type": "export", "format": name, "state": "started", **where})
    run = open_run(Path(run_dir))
    job = export_job(
        run, nhwc=options.nhwc, dynamic_batch=options.dynamic_batch, pixels=options.pixels
    )
    job.tensorrt_precision = options.tensorrt_precision
    job.produced.update({need: Path(out["path"]) for need, out in needed if "path" in out})
    try:
        get_format(name).export(job, Path(path))
    except ExportFailed as exc:
        emit({"type": "export", "format": name, "state": "failed", "error": str(exc)})
        return name, {"error": str(exc)}
    emit({"type": "export", "format": name, "state": "done", "path": path})
    return name, {"path": path}
