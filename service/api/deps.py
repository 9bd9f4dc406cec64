"""The dependency aliases every route uses (after the FastAPI template's api/deps.py): who is
calling, the database engines and LUT store the app opened, the settings, bounded path and query
parameters, and the agent a key registered."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query, Request, status
from fastapi.exceptions import RequestValidationError
from sqlalchemy import Engine

from lut.store import LutStore
from service.auth import Principal, require_scope
from service.config import Settings
from service.crud import agents

UserPrincipal = Annotated[Principal, Depends(require_scope("user"))]
AgentKey = Annotated[Principal, Depends(require_scope("agent"))]
Reader = Annotated[Principal, Depends(require_scope("user", "admin"))]
Admin = Annotated[Principal, Depends(require_scope("admin"))]
ObjectId = Annotated[str, Path(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]


async def _engine(request: Request) -> Engine:
    return request.app.state.engine  # type: ignore[no-any-return]


async def _read_engine(request: Request) -> Engine:
    return request.app.state.read_engine  # type: ignore[no-any-return]


async def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def _store(request: Request) -> LutStore:
    return request.app.state.store  # type: ignore[no-any-return]


EngineDep = Annotated[Engine, Depends(_engine)]
ReadEngineDep = Annotated[Engine, Depends(_read_engine)]  # SELECTs only
SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[LutStore, Depends(_store)]


def unprocessable(where: tuple[str, ...], message: str) -> RequestValidationError:
    """A 422 in FastAPI's validation-error form (so every 422 has one documented shape)."""
    return RequestValidationError([{"type": "value_error", "loc": where, "msg": message}])


def own_agent(store: LutStore, principal: Principal, agent_id: str) -> agents.Agent:
    """The agent if the caller's key registered it; 404 otherwise (no hint that it exists)."""
    agent = agents.get_agent(store.engine, agent_id)
    if agent is None or agent.key_id != principal.key_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no agent {agent_id} of this key")
    return agent
