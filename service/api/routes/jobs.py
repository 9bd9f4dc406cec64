"""/jobs: submit a search job (202), read its state, follow its events (server-sent events),
cancel it. Jobs are visible only to their tenant."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, HTTPException, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from service.api.deps import EngineDep, Limit, ObjectId, Offset, ReadEngineDep, UserPrincipal
from service.crud.jobs import as_utc, events_after, get_job, list_jobs, request_cancel, submit_job
from service.schemas.jobs import JobCreate, JobCreated, JobList, JobPublic
from service.worker.states import TERMINAL, JobState
from service.worker.validate import InvalidJob, check_job

router = APIRouter(prefix="/jobs", tags=["jobs"])
POLL_S = 0.5
KEEPALIVE_S = 15.0
MAX_EVENT_ID = 2**62  # event ids are 64-bit database integers
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such job for this tenant"}}


RUN_FILES = ("arch.json", "child.pt", "metrics.json")
PARETO_FILES = ("pareto.json", "pareto.md")
RUN_NAME = re.compile(r"^budget-[0-9][0-9.e+-]*$")


def run_files(row: dict[str, Any]) -> dict[str, str]:
    """Download name → path in the job's run directory of what its search wrote: a single
    search's arch.json, child.pt and metrics.json; with several budgets, each budget's as
    `<run>.<file>` (e.g. `budget-3.child.pt`) and the Pareto table."""
    budgets = (row.get("metrics") or {}).get("budgets")
    if not budgets:
        return {name: name for name in RUN_FILES}
    files = {name: name for name in PARETO_FILES}
    for budget in budgets:
        run = str(budget.get("run", ""))
        if RUN_NAME.match(run):  # written by the worker; never a path of anything else
            files.update({f"{run}.{name}": f"{run}/{name}" for name in RUN_FILES})
    return files


def downloads_of(row: dict[str, Any]) -> list[str]:
    if row["state"] != "done":
        return []
    names = [*run_files(row), *sorted(row["export_files"] or {})]
    if row["export_files"]:
        names += ["card.json", "card.md"]
    return names


def job_public(row: dict[str, Any]) -> JobPublic:
    return JobPublic(
        id=row["id"],
        state=row["state"],
        request=row["request"],
        dataset_id=row["dataset_id"],
        progress=row["progress"],
        metrics=row["metrics"],
        error=row["error"],
        attempt=row["attempt"],
        cancel_requested=row["cancel_requested"],
        downloads=downloads_of(row),
        created_at=as_utc(row["created_at"]),
        updated_at=as_utc(row["updated_at"]),
        finished_at=as_utc(row["finished_at"]),
    )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses={422: {"description": "a bad request; the detail says which field and why"}},
    summary="submit a search job; workers pick it up from the queue",
)
async def create(
    body: JobCreate, request: Request, principal: UserPrincipal, engine: EngineDep
) -> JobCreated:
    store = request.app.state.store
    try:
        dataset_id = await run_in_threadpool(check_job, store, engine, principal.tenant, body)
    except InvalidJob as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail=str(exc)) from None
    job_id = await run_in_threadpool(
        lambda: submit_job(
            engine,
            tenant=principal.tenant,
            key_id=principal.key_id,
            request=body.model_dump(),
            dataset_id=dataset_id,
        )
    )
    return JobCreated(id=job_id, state="queued")


@router.get("", response_model=JobList, summary="this tenant's jobs, newest first")
async def list_all(
    principal: UserPrincipal,
    engine: ReadEngineDep,
    state: JobState | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> JobList:
    rows = await run_in_threadpool(
        lambda: list_jobs(engine, principal.tenant, state=state, limit=limit, offset=offset)
    )
    return JobList(jobs=[job_public(r) for r in rows])


async def own_job(engine: Any, job_id: str, tenant: str) -> dict[str, Any]:
    row = await run_in_threadpool(get_job, engine, job_id, tenant)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no job {job_id}")
    return row


@router.get("/{job_id}", response_model=JobPublic, responses=NOT_FOUND)
async def get_one(job_id: ObjectId, principal: UserPrincipal, engine: ReadEngineDep) -> JobPublic:
    return job_public(await own_job(engine, job_id, principal.tenant))


@router.post(
    "/{job_id}/cancel",
    response_model=JobPublic,
    responses={**NOT_FOUND, 409: {"description": "the job has already finished"}},
    summary="cancel a job: at once if queued, else between steps of its current stage",
)
async def cancel(job_id: ObjectId, principal: UserPrincipal, engine: EngineDep) -> JobPublic:
    state = await run_in_threadpool(request_cancel, engine, job_id, principal.tenant)
    if state is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no job {job_id}")
    row = await own_job(engine, job_id, principal.tenant)
    if state in TERMINAL and state != "cancelled":
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"job {job_id} has already {state}")
    return job_public(row)


def _sse(event: dict[str, Any]) -> str:
    data = json.dumps(event["data"], separators=(",", ":"), default=str)
    return f"id: {event['id']}\nevent: {event['type']}\ndata: {data}\n\n"


@router.get(
    "/{job_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "server-sent events: `id`, `event` (the type: state, search, train, "
            "resumed, ...) and `data` (JSON); the stream ends after the job's final state",
        },
        **NOT_FOUND,
    },
    summary="follow a job's progress as server-sent events",
)
async def events(
    job_id: ObjectId,
    request: Request,
    principal: UserPrincipal,
    engine: ReadEngineDep,
    follow: Annotated[bool, Query(description="keep the stream open until the job ends")] = True,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="events after this id")] = 0,
    last_event_id: Annotated[
        int | None,
        Header(
            ge=0, le=MAX_EVENT_ID, description="an event id this stream sent (resumes after it)"
        ),
    ] = None,
) -> StreamingResponse:
    await own_job(engine, job_id, principal.tenant)
    if last_event_id is not None:
        after = max(after, last_event_id)
    return StreamingResponse(
        _stream(request, engine, job_id, after, follow),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _stream(
    request: Request, engine: Any, job_id: str, after: int, follow: bool
) -> AsyncIterator[str]:
    quiet_s = 0.0
    while not await request.is_disconnected():
        row = await run_in_threadpool(get_job, engine, job_id)
        batch = await run_in_threadpool(events_after, engine, job_id, after)
        for event in batch:
            yield _sse(event)
            after = event["id"]
        if batch:
            quiet_s = 0.0
            continue
        if not follow or row is None or row["state"] in TERMINAL:
            return
        await asyncio.sleep(POLL_S)
        quiet_s += POLL_S
        if quiet_s >= KEEPALIVE_S:
            quiet_s = 0.0
            yield ": keep-alive\n\n"
