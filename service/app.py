"""The FastAPI app, built by `create_app(settings)`: one router per resource, the database
opened (and migrated) once, the operator's admin key ensured."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from lut.store import DatabaseUnavailable, LutStore
from service.auth import ensure_key, new_key_cache
from service.routers import ROUTER_MODULES
from service.settings import ServiceSettings, get_settings

DESCRIPTION = """Hardware-aware NAS as a service: upload datasets, submit search jobs, follow their
progress, download deployable models. Profiler agents register their hardware and measure ops.

Every route except `/health` needs an API key: `Authorization: Bearer KEY`
(`hwnas keys create --scope user`)."""


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or get_settings()
    store = LutStore(settings.database_url)  # migrates to the newest schema
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    if settings.admin_key is not None:
        ensure_key(store.engine, settings.admin_key.get_secret_value(), "admin", "default")

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        store.close()

    app = FastAPI(title="hwnas", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.store = store
    app.state.engine = store.engine
    app.state.key_cache = new_key_cache()
    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(f"service.routers.{name}").router)

    @app.exception_handler(DatabaseUnavailable)
    async def _database_down(_request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    return app
