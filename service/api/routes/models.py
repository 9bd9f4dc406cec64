"""/models/{job_id}/{name}: a finished job's files — every exported format, the model card,
the architecture, the trained weights and the metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from pydantic import Field

from deploy.checks import read_json_or_empty
from service.api.deps import ObjectId, ReadEngineDep, UserPrincipal
from service.api.routes.jobs import downloads_of, run_files
from service.crud.jobs import get_job
from service.schemas import Schema
from service.worker.runner import run_dir_of

router = APIRouter(prefix="/models", tags=["models"])

ModelFile = Annotated[
    str,
    PathParam(
        min_length=1,
        max_length=40,
        pattern=r"^[a-z0-9][a-z0-9.-]*$",
        description="an export format (deploy's registry), card.json, card.md, arch.json, "
        "child.pt or metrics.json; with several budgets `<run>.arch.json` (and child.pt, "
        "metrics.json) per budget, pareto.json and pareto.md",
    ),
]
MEDIA_TYPES = {".json": "application/json", ".md": "text/markdown; charset=utf-8"}


class ModelFileInfo(Schema):
    name: str = Field(max_length=40)
    size_bytes: int = Field(ge=0)
    url: str = Field(max_length=200)


class ModelFiles(Schema):
    job_id: str = Field(max_length=32)
    files: list[ModelFileInfo] = Field(max_length=200)
    input: dict[str, Any] | None = Field(
        default=None,
        description="the model card's input contract: what each exported file takes (shape, "
        "layout, dtype, value range, quantisation), channel order, resize, class names",
    )


def resolve_file(run_dir: Path, row: dict[str, Any], name: str) -> Path | None:
    exported = row["export_files"] or {}
    if name in exported:
        path = Path(exported[name])
    elif name in (files := run_files(row)):
        path = run_dir / files[name]
    else:
        try:
            from deploy.api import artifact_path

            path = artifact_path(run_dir, name)
        except (FileNotFoundError, NotImplementedError, ValueError):
            return None
    return path if path.is_file() else None


async def _done_job(request: Request, engine: Any, job_id: str, tenant: str) -> dict[str, Any]:
    row = await run_in_threadpool(get_job, engine, job_id, tenant)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no job {job_id}")
    if row["state"] != "done":
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail=f"job {job_id} is {row['state']}; its models are ready when it is done",
        )
    return row


@router.get(
    "/{job_id}",
    response_model=ModelFiles,
    responses={404: {"description": "no such job"}, 409: {"description": "job not done"}},
    summary="the files a finished job offers for download",
)
async def list_files(
    job_id: ObjectId, request: Request, principal: UserPrincipal, engine: ReadEngineDep
) -> ModelFiles:
    row = await _done_job(request, engine, job_id, principal.tenant)
    run_dir = run_dir_of(request.app.state.settings, job_id)
    files = []
    for name in downloads_of(row):
        path = resolve_file(run_dir, row, name)
        if path is not None:
            url = f"/models/{job_id}/{name}"
            files.append(ModelFileInfo(name=name, size_bytes=path.stat().st_size, url=url))
    card = await run_in_threadpool(read_json_or_empty, run_dir / "card.json")
    return ModelFiles(job_id=job_id, files=files, input=card.get("input"))


@router.get(
    "/{job_id}/{name}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the file"},
        404: {"description": "no such job, or the job did not produce this file"},
        409: {"description": "the job is not done"},
    },
    summary="download an exported model (onnx, tflite, ...), the card, or the run's files",
)
async def download(
    job_id: ObjectId,
    name: ModelFile,
    request: Request,
    principal: UserPrincipal,
    engine: ReadEngineDep,
) -> FileResponse:
    row = await _done_job(request, engine, job_id, principal.tenant)
    path = resolve_file(run_dir_of(request.app.state.settings, job_id), row, name)
    if path is None:
        offered = ", ".join(downloads_of(row))
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"job {job_id} has no {name}; it offers: {offered}"
        )
    media = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    return FileResponse(path, media_type=media, filename=f"hwnas-{job_id[:8]}-{path.name}")
