"""`hwnas search --export`: each run's formats exported, verified and carded, one run after
another; with HWNAS_RAY_ADDRESS set, every run's formats are converted by the job's Ray exporter,
all runs' tasks at once, and then each run's files are verified and timed here, in the main
thread, in turn (so a Ctrl-C cancels the tasks and stops at once)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from functools import partial
from pathlib import Path
from typing import Any

from service.cli.common import EnvironmentProblem, settings, stderr, stdout, user_errors


def export_runs(run_dirs: list[Path], formats: list[str]) -> int:
    """Export every run; 1 when some format of some run failed (its error line printed)."""
    from deploy.api import export_run
    from service.cli.deploy import progress_event

    address = settings().ray_address
    results = (
        _exported_on_ray(address, run_dirs, formats, progress_event)
        if address
        else (export_run(run_dir, formats, on_event=progress_event) for run_dir in run_dirs)
    )
    failed = 0
    with user_errors():
        for run_dir, result in zip(run_dirs, results, strict=True):
            for message in result["errors"].values():
                stderr.print(f"hwnas: error: {message}")
            failed += bool(result["errors"])
            stdout.print(
                f"{run_dir}: exported {', '.join(result['files'])}; card {run_dir / 'card.md'}"
            )
    return 1 if failed else 0


class _Stopped(Exception):
    """An earlier run's conversions failed, or the CLI was interrupted: this run's tasks are
    cancelled."""


class _Converted(Exception):
    """Raised by the exporter of `_convert` with its result, to end `export_run` before it
    verifies: the files are verified and timed later, in the main thread."""

    def __init__(self, paths: dict[str, Path], errors: dict[str, str]) -> None:
        super().__init__("converted")
        self.paths, self.errors = paths, errors


def _exported_on_ray(
    address: str, run_dirs: list[Path], formats: list[str], on_event: Callable[..., None]
) -> Iterator[dict[str, Any]]:
    """Each run's `export_run` result, in the runs' order. Every run's formats are converted by
    the job's Ray exporter (`service.worker.executors.ray_exporter`, its events in the run's
    events.jsonl) from a thread of its own, so all runs' tasks are submitted at once; once they
    have all ended, each run's files are verified and timed in the main thread, one run after
    another, as embedded. The threads only wait on Ray, checking a stop flag as they do, so a
    Ctrl-C (KeyboardInterrupt, in the main thread) cancels every task still running within a
    moment and interrupts the verifying or timing in progress. As embedded, a run whose
    conversions fail ends the export after the runs before it (the later runs' tasks are
    cancelled); a task failing for good, or the cluster unusable, is one line and exit 1."""
    from deploy.api import export_run
    from service.worker.executors import (
        ClusterUnavailable,
        UnitResources,
        UnitsFailed,
        ray_exporter,
    )
    from service.worker.units import FileSink

    stop = _StopFlag(len(run_dirs))
    resources = UnitResources.of(settings())
    try:  # each joins the cluster (once) here, in the main thread
        exporters = [
            ray_exporter(
                address,
                run_dir,
                resources=resources,
                sink=FileSink(),
                check_cancelled=partial(stop.check, index),
            )
            for index, run_dir in enumerate(run_dirs)
        ]
    except ClusterUnavailable as exc:
        raise EnvironmentProblem(str(exc)) from None

    def convert(index: int) -> _Converted:
        try:
            return _convert(run_dirs[index], formats, exporters[index])
        except BaseException:
            stop.stop(index + 1)
            raise

    with ThreadPoolExecutor(max_workers=len(run_dirs)) as pool:
        conversions = [pool.submit(convert, index) for index in range(len(run_dirs))]
        try:
            wait(conversions)  # the files are timed with none of this CLI's conversions beside
            for run_dir, conversion in zip(run_dirs, conversions, strict=True):
                exporter = partial(_converted, conversion)
                yield export_run(run_dir, formats, on_event=on_event, exporter=exporter)
        except UnitsFailed as exc:
            raise EnvironmentProblem(f"export failed: {exc}") from None
        finally:
            stop.stop(0)  # ends the conversions still waiting on Ray, cancelling their tasks


def _convert(
    run_dir: Path, formats: list[str], exporter: Callable[..., dict[str, str]]
) -> _Converted:
    """`run_dir`'s formats converted by `exporter`: `export_run` up to its exporter, which opens
    the run and names the files' paths as it does again when it verifies them."""
    from deploy.api import export_run

    def convert_only(
        job: Any, names: list[str], paths: dict[str, Path], emit: Callable[..., None]
    ) -> dict[str, str]:
        raise _Converted(paths, exporter(job, names, paths, emit))

    try:
        export_run(run_dir, formats, exporter=convert_only)
    except _Converted as converted:
        return converted
    raise RuntimeError(f"export_run of {run_dir} never called its exporter")


def _converted(
    conversion: Future[_Converted],
    job: Any,
    names: list[str],
    paths: dict[str, Path],
    emit: Callable[..., None],
) -> dict[str, str]:
    """An exporter for the main thread's `export_run`: the errors of the run's conversion
    (raising what it raised), whose files are at the same paths."""
    converted = conversion.result()
    if converted.paths != paths:
        raise RuntimeError(f"converted into {converted.paths}, verifying {paths}")
    return converted.errors


class _StopFlag:
    """The runs from an index on stop: their conversion threads cancel their tasks and end."""

    def __init__(self, count: int) -> None:
        self.stop_from = count
        self.lock = threading.Lock()

    def check(self, index: int) -> None:
        if index >= self.stop_from:
            raise _Stopped("an earlier run's export failed, or the export was interrupted")

    def stop(self, index: int) -> None:
        """Stop the runs from `index` on (the runs before it go on)."""
        with self.lock:
            self.stop_from = min(self.stop_from, index)
