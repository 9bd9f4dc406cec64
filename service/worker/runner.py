"""A job worker: claims jobs from the database with a lease, renews it from a heartbeat thread,
runs the pipeline and records the outcome. A job whose worker died is claimed again when its
lease expires and resumes from its last checkpoint."""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lut.store import LutStore
from search.request import SearchRequest, build_requests
from search.shared import BudgetRun
from service.config import Settings
from service.crud.datasets import dataset_path, get_dataset
from service.crud.jobs import (
    LeaseLost,
    claim_job,
    finish_job,
    get_job,
    release_job,
    renew_lease,
    set_state,
    update_job,
)
from service.worker import pipeline
from service.worker.context import JobCancelled, JobFailed, StageContext
from service.worker.events import job_emitter

log = logging.getLogger("hwnas.worker")
MAX_ATTEMPTS = 5  # a job that kills its workers this often fails instead of looping forever


class WorkerStopping(Exception):
    """This worker was asked to stop; the job goes back to the queue."""


def search_document(req: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The job's request (JobCreate's fields) as the search's request document: the primary
    device's budget, or list of budgets, as `budgets`; one budget per other device as
    `device_budgets`."""
    primary, budgets = req["devices"][0], dict(req["budgets"])
    mine = budgets.pop(primary, [])
    return {
        **req,
        "dataset": dataset,
        "budgets": list(mine) if isinstance(mine, list) else [mine],
        "device_budgets": budgets,
    }


def search_requests(req: dict[str, Any], dataset: str, run_dir: Path) -> list[BudgetRun]:
    """One search request per budget on the primary device (`search.request.build_requests`):
    with several, each runs under `run_dir/budget-<ms>`."""
    return build_requests(search_document(req, dataset), run_dir)


def search_request(req: dict[str, Any], dataset: str, run_dir: Path) -> SearchRequest:
    """A single-budget job's one search request."""
    ((_, _, request),) = search_requests(req, dataset, run_dir)
    return request


def run_dir_of(settings: Settings, job_id: str) -> Path:
    return settings.artifacts_dir / "jobs" / job_id


@dataclass
class _Lease:
    """Shared between the job thread and the heartbeat thread."""

    cancel_requested: bool = False
    lost: bool = False


class Worker:
    def __init__(self, settings: Settings, worker_id: str | None = None) -> None:
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}"
        self.store = LutStore(settings.database_url)
        self.engine = self.store.engine
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def run(self, once: bool = False) -> None:
        log.info("worker %s polling %s", self.worker_id, self.engine.url.render_as_string())
        while not self._stop.is_set():
            job = claim_job(self.engine, self.worker_id, self.settings.lease_s)
            if job is None:
                if once:
                    return
                self._stop.wait(self.settings.poll_s)
                continue
            self.run_job(job)
            if once:
                return

    def run_job(self, job: dict[str, Any]) -> None:
        job_id = job["id"]
        log.info("claimed job %s (attempt %d, state %s)", job_id, job["attempt"], job["state"])
        lease = _Lease(cancel_requested=bool(job["cancel_requested"]))
        done = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job_id, lease, done), daemon=True)
        beat.start()
        try:
            outcome = self._run_stages(job, lease)
            finish_job(self.engine, job_id, self.worker_id, "done", metrics=outcome)
            log.info("job %s done", job_id)
        except JobCancelled:
            finish_job(self.engine, job_id, self.worker_id, "cancelled")
            log.info("job %s cancelled", job_id)
        except JobFailed as exc:
            self._fail(job_id, str(exc))
        except LeaseLost:
            log.warning("job %s: lease lost to another worker; leaving it", job_id)
        except WorkerStopping:
            release_job(self.engine, job_id, self.worker_id)
            log.info("job %s released: worker stopping", job_id)
        except (ValueError, LookupError) as exc:  # bad input found late: one line
            self._fail(job_id, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        except Exception as exc:
            log.error("job %s crashed:\n%s", job_id, traceback.format_exc())
            self._fail(job_id, self._crash_message(job, exc))
        finally:
            done.set()
            beat.join(timeout=5)

    def _crash_message(self, job: dict[str, Any], exc: Exception) -> str:
        """What a user can do about an exception the job's checks did not foresee: the stage it
        hit, and the remedy where the kind of failure tells one (the traceback, which means
        nothing to the user, goes to the worker's log)."""
        row = get_job(self.engine, job["id"])
        stage = row["state"] if row is not None else job["state"]
        kind = type(exc).__name__
        if isinstance(exc, MemoryError) or kind == "OutOfMemoryError":
            batch = job["request"].get("batch_size")
            return (
                f"ran out of memory while {stage}: resubmit with a smaller batch_size (was "
                f"{batch}), a smaller space or a lower-resolution dataset"
            )
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return (
                f"the server's disk filled up while {stage}; resubmit once its operator made room"
            )
        return (
            f"internal error while {stage} ({kind}): the request passed every check, so this is "
            f"the server's fault; resubmit, and if it fails again ask the operator to look up "
            f"job {job['id']} in the worker's log"
        )

    def _fail(self, job_id: str, error: str) -> None:
        error = error.replace(str(self.settings.artifacts_dir), "<artifacts>")
        log.info("job %s failed: %s", job_id, error)
        try:
            finish_job(self.engine, job_id, self.worker_id, "failed", error=error)
        except LeaseLost:
            log.warning("job %s: lease lost before recording its failure", job_id)

    def _heartbeat(self, job_id: str, lease: _Lease, done: threading.Event) -> None:
        while not done.wait(self.settings.heartbeat_s):
            try:
                lease.cancel_requested = renew_lease(
                    self.engine, job_id, self.worker_id, self.settings.lease_s
                )
            except LeaseLost:
                lease.lost = True
                return
            except Exception:
                log.warning("job %s: heartbeat failed:\n%s", job_id, traceback.format_exc())

    def _context(
        self, job: dict[str, Any], lease: _Lease
    ) -> tuple[StageContext, pipeline.SearchPlan, Any]:
        from search.data import DatasetError, load_dataset
        from search.run import bind_space
        from search.spaces.base import space_from_string

        req = job["request"]
        source, shown = self._dataset_source(job)
        resolution = space_from_string(req["space"]).resolution
        try:
            data = load_dataset(source, seed=req["seed"], resolution=resolution)
        except DatasetError as exc:
            raise JobFailed(f"dataset {str(exc).replace(source, shown)}") from None
        job_id = job["id"]

        def check_cancelled() -> None:
            if lease.lost:
                raise LeaseLost(job_id)
            if lease.cancel_requested:
                raise JobCancelled(job_id)
            if self._stop.is_set():
                raise WorkerStopping(job_id)

        ctx = StageContext(
            engine=self.engine,
            store=self.store,
            settings=self.settings,
            job_id=job_id,
            tenant=job["tenant"],
            space=bind_space(req["space"], data),
            devices=list(req["devices"]),
            run_dir=run_dir_of(self.settings, job_id),
            export_files=dict(job["export_files"] or {}),
            check_cancelled=check_cancelled,
            worker_id=self.worker_id,
        )
        ctx.emit = self._emitter(ctx)
        document = search_document(req, source)
        plan = pipeline.SearchPlan(document, build_requests(document, ctx.run_dir))
        return ctx, plan, data

    def _dataset_source(self, job: dict[str, Any]) -> tuple[str, str]:
        """(what load_dataset loads, how messages name it: the upload's name, not its path)."""
        if job["dataset_id"] is None:
            name = str(job["request"]["dataset"])  # a built-in dataset
            return name, name
        row = get_dataset(self.engine, job["tenant"], job["dataset_id"])
        if row is None:
            raise JobFailed(f"dataset {job['dataset_id']} no longer exists")
        path = dataset_path(self.settings.artifacts_dir, row["content_hash"], row["format"])
        if not path.exists():
            raise JobFailed(
                f"dataset {row['name']} ({row['id']}) is missing from the server's storage; "
                "upload it again"
            )
        return str(path), f"{row['name']} ({row['id']})"

    def _emitter(self, ctx: StageContext) -> Any:
        record = job_emitter(self.engine, ctx.job_id, self.worker_id)

        def emit(event: dict[str, Any]) -> None:
            if event.get("type") == "resumed":
                log.info("resuming job %s at step %s", ctx.job_id, event.get("step"))
            record(event)
            ctx.check_cancelled()

        return emit

    def _run_stages(self, job: dict[str, Any], lease: _Lease) -> dict[str, Any]:
        job_id = job["id"]
        if job["attempt"] > MAX_ATTEMPTS:
            raise JobFailed(f"gave up after {MAX_ATTEMPTS} attempts (its workers kept dying)")
        if job["attempt"] > 1:
            log.info(
                "job %s: attempt %d, resuming from state %s", job_id, job["attempt"], job["state"]
            )
        ctx, plan, data = self._context(job, lease)
        ctx.check_cancelled()

        def move(state: str) -> None:
            set_state(self.engine, job_id, self.worker_id, state)
            ctx.check_cancelled()

        if job["state"] == "profiling":
            pipeline.profiling(ctx, move)
        metrics = pipeline.searching(ctx, plan, data)
        ctx.check_cancelled()
        export = pipeline.exporting(ctx, list(job["request"].get("export_formats") or []), move)
        if ctx.export_files:
            update_job(self.engine, job_id, self.worker_id, export_files=ctx.export_files)
        target = pipeline.measuring(ctx, move)
        outcome = {**metrics, "run_dir": str(ctx.run_dir)}
        if export:
            outcome["export"] = export
        if target is not None:
            outcome["target"] = target
        return outcome
