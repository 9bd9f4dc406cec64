"""/keys: admins create, list and revoke API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from service.auth import Principal, create_key, list_keys, require_scope, revoke_key
from service.crud.jobs import as_utc
from service.schemas.keys import KeyCreate, KeyCreated, KeyList, KeyPublic
from service.tables import api_keys

router = APIRouter(prefix="/keys", tags=["keys"])
Admin = Annotated[Principal, Depends(require_scope("admin"))]
KeyId = Annotated[str, Path(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyCreated)
async def create(body: KeyCreate, request: Request, _admin: Admin) -> KeyCreated:
    engine = request.app.state.engine
    key_id, key = await run_in_threadpool(create_key, engine, body.scope, body.tenant)

    def read() -> KeyPublic:
        with engine.connect() as conn:
            row = conn.execute(select(api_keys).where(api_keys.c.id == key_id)).one()
        return KeyPublic(
            id=row.id,
            prefix=row.prefix,
            scope=row.scope,
            tenant=row.tenant,
            created_at=as_utc(row.created_at),
        )

    public = await run_in_threadpool(read)
    return KeyCreated(**public.model_dump(), key=key)


@router.get("", response_model=KeyList)
async def list_all(request: Request, _admin: Admin) -> KeyList:
    rows = await run_in_threadpool(list_keys, request.app.state.engine)
    for row in rows:
        row["created_at"], row["revoked_at"] = as_utc(row["created_at"]), as_utc(row["revoked_at"])
    return KeyList(keys=[KeyPublic(**row) for row in rows])


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(key_id: KeyId, request: Request, _admin: Admin) -> Response:
    if not await run_in_threadpool(revoke_key, request.app.state.engine, key_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="no such unrevoked key")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
