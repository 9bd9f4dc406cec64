"""/datasets: upload (a zip of an ImageFolder or an npz), list and inspect a tenant's datasets."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response, status
from fastapi.concurrency import run_in_threadpool

from service.api.deps import (
    EngineDep,
    Limit,
    ObjectId,
    Offset,
    ReadEngineDep,
    SettingsDep,
    UserPrincipal,
)
from service.crud.datasets import (
    DatasetTooLarge,
    InvalidDataset,
    get_dataset,
    list_datasets,
    store_dataset,
)
from service.schemas.datasets import DatasetList, DatasetPublic, dataset_public
from service.uploads import BadUpload, UploadTooLarge, receive_file

router = APIRouter(prefix="/datasets", tags=["datasets"])
# the upload streams its body to disk under its own limit, not the app's JSON body limit
STREAMED_BODIES = [("POST", "/datasets")]

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "a .zip of an ImageFolder (one folder per class) "
                            "or an .npz with arrays x (images) and y (labels)",
                        },
                        "name": {"type": "string", "maxLength": 200},
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetPublic,
    openapi_extra=UPLOAD_BODY,
    responses={
        200: {"model": DatasetPublic, "description": "the same content was uploaded before"},
        413: {
            "description": "larger than HWNAS_MAX_UPLOAD_BYTES, or uncompressed larger than "
            "HWNAS_MAX_DATASET_BYTES"
        },
        422: {"description": "not a usable dataset; the detail says why"},
    },
    summary="upload a dataset (multipart field `file`); validated and stored by content hash",
)
async def upload(
    request: Request,
    response: Response,
    principal: UserPrincipal,
    engine: EngineDep,
    settings: SettingsDep,
) -> DatasetPublic:
    limit = settings.max_upload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + 64 * 1024:
        raise _too_large(limit)
    try:
        received = await receive_file(
            request.stream(),
            request.headers.get("content-type"),
            settings.artifacts_dir / "tmp",
            limit,
        )
    except UploadTooLarge:
        raise _too_large(limit) from None
    except BadUpload as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail=str(exc)) from None
    name = (received.fields.get("name") or received.filename)[:200]
    try:
        row, created = await run_in_threadpool(
            store_dataset,
            engine,
            settings.artifacts_dir,
            principal.tenant,
            received,
            name,
            settings.max_dataset_bytes,
        )
    except DatasetTooLarge as exc:
        raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, detail=str(exc)) from None
    except InvalidDataset as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, detail=str(exc)) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    return dataset_public(row)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
        detail=f"upload larger than the limit of {limit} bytes (HWNAS_MAX_UPLOAD_BYTES)",
    )


@router.get("", response_model=DatasetList, summary="this tenant's datasets, newest first")
async def list_all(
    principal: UserPrincipal, engine: ReadEngineDep, limit: Limit = 100, offset: Offset = 0
) -> DatasetList:
    rows = await run_in_threadpool(list_datasets, engine, principal.tenant, limit, offset)
    return DatasetList(datasets=[dataset_public(r) for r in rows])


@router.get("/{dataset_id}", response_model=DatasetPublic, responses={404: {}})
async def get_one(
    dataset_id: ObjectId, principal: UserPrincipal, engine: ReadEngineDep
) -> DatasetPublic:
    row = await run_in_threadpool(get_dataset, engine, principal.tenant, dataset_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no dataset {dataset_id}")
    return dataset_public(row)
