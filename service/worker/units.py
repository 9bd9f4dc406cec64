"""A search split into independent units that any node can run from small, picklable
arguments: the shared supernet's weight phase, then one unit per budget (its architecture phase
and child on the shared weights, or its whole search when the budgets share no supernet). A unit
reads its dataset, LUT and shared weights from the database and the artifact store, resumes from
its own checkpoints, and writes its events to a sink (the job's event stream, or files)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from common.files import write_json_atomically
from search.shared import BudgetRun
from service.worker.events import EventFn, job_emitter

UnitKind = Literal["weights", "budget", "search"]
UnitResult = tuple[float | None, str, dict[str, Any]]  # (budget, run directory, metrics)
ATTEMPTS_FILE = "unit-attempts.json"


@dataclass(frozen=True)
class JobSink:
    """Events into a job's event stream in the database (every node reaches the database),
    under the lease of the worker that runs the job."""

    database_url: str
    job_id: str
    worker_id: str

    def open(self) -> EventFn:
        from lut.store import LutStore

        return job_emitter(LutStore(self.database_url).engine, self.job_id, self.worker_id)


@dataclass(frozen=True)
class FileSink:
    """Events appended to `events.jsonl` in the unit's own folder (the CLI's record)."""

    def open_at(self, folder: Path) -> EventFn:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "events.jsonl"

        def emit(event: dict[str, Any]) -> None:
            with path.open("a") as log:
                log.write(json.dumps(event, default=str) + "\n")

        return emit


@dataclass(frozen=True)
class SearchUnit:
    """One unit of a search: `document` and `out` rebuild the search's requests
    (`search.request.build_requests`), `index` picks the budget (none for the weight phase)."""

    kind: UnitKind
    name: str  # "weights", or the budget's run folder's name
    document: dict[str, Any]
    out: str
    index: int | None
    database_url: str
    dataset: str  # what search.data.load_dataset loads: a built-in's name or a path
    sink: JobSink | FileSink
    budget: float | None = None  # the budget's latency in ms (none: the weight phase)

    def folder(self, requests: list[BudgetRun]) -> Path:
        if self.index is None:
            from search.shared import SHARED_DIR

            return Path(self.out) / SHARED_DIR
        return requests[self.index][1]


def search_units(
    document: dict[str, Any],
    requests: list[BudgetRun],
    out: Path,
    *,
    database_url: str,
    dataset: str,
    sink: JobSink | FileSink,
) -> tuple[list[SearchUnit], list[SearchUnit]]:
    """(the units that must finish first, the budgets' units that then run side by side)."""
    from search.shared import shares_supernet

    def unit(kind: UnitKind, index: int | None) -> SearchUnit:
        name = "weights" if index is None else requests[index][1].name
        budget = None if index is None else requests[index][0]
        return SearchUnit(
            kind, name, document, str(out), index, database_url, dataset, sink, budget
        )

    if shares_supernet(document, requests):
        return [unit("weights", None)], [unit("budget", i) for i in range(len(requests))]
    return [], [unit("search", i) for i in range(len(requests))]


def longest_first(units: Sequence[SearchUnit]) -> list[SearchUnit]:
    """Budget units in the order to start them on fewer nodes than units: the largest budget
    first, as its child is the largest to train (a longest-first order: the last units to start
    are the short ones, so the nodes finish close together)."""
    return sorted(units, key=lambda unit: -(unit.budget or 0.0))


def run_unit(unit: SearchUnit) -> UnitResult | None:
    """Run (or resume) one unit here; returns its budget's result, none for the weight phase.
    Its events carry the budget's `budget_ms`; `unit_started` says which attempt this is."""
    from lut.store import LutStore
    from search.data import load_dataset
    from search.request import build_requests
    from search.spaces.base import space_from_string

    requests = build_requests(unit.document, Path(unit.out))
    folder = unit.folder(requests)
    sink = unit.sink.open() if isinstance(unit.sink, JobSink) else unit.sink.open_at(folder)
    budget = None if unit.index is None else requests[unit.index][0]

    def emit(event: dict[str, Any]) -> None:
        sink({**event, "budget_ms": budget} if budget is not None else event)

    attempt = _count_attempt(folder)
    where = {"unit": unit.name, "attempt": attempt, "host": socket.gethostname()}
    emit({"type": "unit_started", **where, "pid": os.getpid()})
    resolution = space_from_string(unit.document["space"]).resolution
    data = load_dataset(unit.dataset, seed=int(unit.document["seed"]), resolution=resolution)
    store = LutStore(unit.database_url)
    result = _run_kind(unit, requests, store, data, emit)
    emit({"type": "unit_finished", **where})
    return result


def _run_kind(
    unit: SearchUnit, requests: list[BudgetRun], store: Any, data: Any, emit: EventFn
) -> UnitResult | None:
    from search import shared

    out = Path(unit.out)
    if unit.kind == "search" and unit.index is not None:
        budget, run_dir, request = requests[unit.index]
        return budget, str(run_dir), search_once(request, store, run_dir, data, emit)
    plan = shared.plan_shared_search(requests, store, data)
    if unit.index is None:
        shared.train_shared_weights(plan, out, data=data, on_event=emit)
        return None
    budget, run_dir, metrics = shared.search_budget(
        plan, unit.index, store, out, data=data, on_event=emit
    )
    return budget, str(run_dir), metrics


def search_once(
    request: Any, store: Any, run_dir: Path, data: Any, emit: EventFn
) -> dict[str, Any]:
    """One budget's whole search into `run_dir` (resumed from its checkpoint), or the metrics
    a previous attempt finished with."""
    from search.run import run_search

    finished = run_dir / "metrics.json"
    if finished.exists():
        return dict(json.loads(finished.read_text()))
    return run_search(request, store, run_dir, data=data, on_event=emit)


def _count_attempt(folder: Path) -> int:
    """This unit's attempt here: 1, or one more than the last that started in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ATTEMPTS_FILE
    attempt = int(json.loads(path.read_text())["attempts"]) + 1 if path.exists() else 1
    write_json_atomically(path, {"attempts": attempt})
    return attempt
