"""`hwnas search --export`: each run's formats exported, verified and carded, one run after
another; with HWNAS_RAY_ADDRESS set, every run's formats are converted by the job's Ray exporter,
all runs' tasks at once, and then each run's files are verified and timed here in turn."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from service.cli.common import EnvironmentProblem, settings, stderr, stdout, user_errors

WAIT_S = 0.5  # between looks at whether an earlier run's export failed


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
    """An earlier run's export failed, or the CLI was interrupted: this run's tasks are
    cancelled."""


def _exported_on_ray(
    address: str, run_dirs: list[Path], formats: list[str], on_event: Callable[..., None]
) -> Iterator[dict[str, Any]]:
    """Each run's `export_run` result, in the runs' order: every run's `export_run` in a thread
    of its own with the job's Ray exporter (`service.worker.executors.ray_exporter`, its events
    in the run's events.jsonl), so all runs' tasks are submitted at once; verifying and timing
    the files then go one run at a time (`_Turns`), as embedded. As embedded, a run that fails
    ends the export after the runs before it (the later runs' tasks still running are
    cancelled); a task failing for good, or the cluster unusable, is one line and exit 1."""
    from deploy.api import export_run
    from service.worker.executors import (
        ClusterUnavailable,
        UnitResources,
        UnitsFailed,
        ray_exporter,
    )
    from service.worker.units import FileSink

    turns = _Turns(len(run_dirs))
    resources = UnitResources.of(settings())
    try:  # each joins the cluster (once) here, in the main thread
        exporters = [
            ray_exporter(
                address,
                run_dir,
                resources=resources,
                sink=FileSink(),
                check_cancelled=partial(turns.check, index),
            )
            for index, run_dir in enumerate(run_dirs)
        ]
    except ClusterUnavailable as exc:
        raise EnvironmentProblem(str(exc)) from None

    def export(index: int) -> dict[str, Any]:
        try:
            exporter = turns.gated(index, exporters[index])
            return export_run(run_dirs[index], formats, on_event=on_event, exporter=exporter)
        except BaseException:
            turns.stop(index + 1)
            raise
        finally:
            turns.finish(index)

    with ThreadPoolExecutor(max_workers=len(run_dirs)) as pool:
        futures = [pool.submit(export, index) for index in range(len(run_dirs))]
        try:
            for future in futures:
                yield future.result()
        except UnitsFailed as exc:
            raise EnvironmentProblem(f"export failed: {exc}") from None
        finally:
            turns.stop(0)  # nothing left to wait for: ends the threads still waiting


class _Turns:
    """Verifying and timing a run's files waits until every run's conversions have ended and the
    runs before it are done, so the files are timed one run at a time, in the runs' order, with
    none of this CLI's conversions running beside them."""

    def __init__(self, count: int) -> None:
        self.converted = [threading.Event() for _ in range(count)]
        self.finished = [threading.Event() for _ in range(count)]
        self.stop_from = count  # the runs from this index on stop
        self.lock = threading.Lock()

    def check(self, index: int) -> None:
        if index >= self.stop_from:
            raise _Stopped("an earlier run's export failed")

    def stop(self, index: int) -> None:
        """Stop the runs from `index` on (the runs before it go on)."""
        with self.lock:
            self.stop_from = min(self.stop_from, index)

    def gated(self, index: int, exporter: Callable[..., dict[str, str]]) -> Callable[..., Any]:
        """`exporter`, returning (or raising) once it is run `index`'s turn."""

        def export(*args: Any) -> dict[str, str]:
            try:
                return exporter(*args)
            finally:
                self._wait_turn(index)

        return export

    def finish(self, index: int) -> None:
        """Run `index` is done (or failed before converting): the next run may go on."""
        self._wait_turn(index)
        self.finished[index].set()

    def _wait_turn(self, index: int) -> None:
        self.converted[index].set()
        for event in [*self.converted, *self.finished[:index]]:
            while not event.wait(WAIT_S):
                self.check(index)
        self.check(index)
