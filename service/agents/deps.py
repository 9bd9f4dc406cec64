"""FastAPI dependencies shared by the agent, device and LUT routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.exceptions import RequestValidationError

from lut.store import LutStore
from service.agents import queue
from service.agents.queue import Agent
from service.auth import Principal, require_scope
from service.settings import ServiceSettings


def get_store(request: Request) -> LutStore:
    store: LutStore = request.app.state.store
    return store


def get_settings(request: Request) -> ServiceSettings:
    settings: ServiceSettings = request.app.state.settings
    return settings


StoreDep = Annotated[LutStore, Depends(get_store)]
SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
AgentKey = Annotated[Principal, Depends(require_scope("agent"))]
Reader = Annotated[Principal, Depends(require_scope("user", "admin"))]
Admin = Annotated[Principal, Depends(require_scope("admin"))]


def unprocessable(where: tuple[str, ...], message: str) -> RequestValidationError:
    """A 422 in FastAPI's validation-error form (so every 422 has one documented shape)."""
    return RequestValidationError([{"type": "value_error", "loc": where, "msg": message}])


def own_agent(store: LutStore, principal: Principal, agent_id: str) -> Agent:
    """The agent if the caller's key registered it; 404 otherwise (no hint that it exists)."""
    agent = queue.get_agent(store.engine, agent_id)
    if agent is None or agent.key_id != principal.key_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no agent {agent_id} of this key")
    return agent
