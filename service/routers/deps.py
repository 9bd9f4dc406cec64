"""Dependency aliases shared by the routers (after the FastAPI template's api/deps.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from sqlalchemy import Engine

from service.auth import Principal, require_scope
from service.settings import ServiceSettings

UserPrincipal = Annotated[Principal, Depends(require_scope("user"))]
ObjectId = Annotated[str, Path(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


async def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


async def _read_engine(request: Request) -> Engine:
    return request.app.state.read_engine  # type: ignore[no-any-return]


async def _settings(request: Request) -> ServiceSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


EngineDep = Annotated[Engine, Depends(_engine)]
ReadEngineDep = Annotated[Engine, Depends(_read_engine)]  # SELECTs only
SettingsDep = Annotated[ServiceSettings, Depends(_settings)]
