"""GET /health: is the API up and its database reachable. The one route without a key."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import Field
from sqlalchemy import text

from service.schemas import Schema

router = APIRouter(prefix="/health", tags=["health"])


class Health(Schema):
    status: Literal["ok"]
    database: str = Field(max_length=20)
    version: str = Field(max_length=20)


@router.get("", response_model=Health, summary="liveness and database check (no key needed)")
async def health(request: Request) -> Health:
    engine = request.app.state.engine

    def ping() -> None:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    await run_in_threadpool(ping)
    return Health(status="ok", database=engine.dialect.name, version="0.1.0")
