"""The FastAPI app, built by `create_app(settings)`: one router per resource, the database
opened (and migrated) once, the operator's admin key ensured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import Scope

from lut.store import DatabaseUnavailable, LutStore
from service.api.routes import ROUTERS
from service.api.routes.datasets import STREAMED_BODIES
from service.auth import ensure_key, new_key_cache
from service.config import Settings, get_settings
from service.db import read_engine
from service.errors import validation_failed
from service.middleware import AllowHeader, FormBodyAsJson, RequestBodyGuard, UnexpectedErrors
from service.uploads import sweep_stale_uploads
from service.web.pages import mount_dashboard

DESCRIPTION = """Hardware-aware NAS as a service: upload datasets, submit search jobs, follow their
progress, download deployable models. Profiler agents register their hardware and measure ops.

Every route except `/health` needs an API key: `Authorization: Bearer KEY`
(`hwnas keys create --scope user`)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    store = LutStore(settings.database_url)  # migrates to the newest schema
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    sweep_stale_uploads(settings.artifacts_dir / "tmp", settings.stale_upload_s)
    if settings.admin_key is not None:
        ensure_key(store.engine, settings.admin_key.get_secret_value(), "admin", "default")

    reader = read_engine(settings.database_url, store.engine)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        reader.dispose()
        store.close()

    app = FastAPI(
        title="hwnas",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.engine = store.engine
    app.state.read_engine = reader
    app.state.key_cache = new_key_cache()
    streamed = set(STREAMED_BODIES)
    for router in ROUTERS:
        app.include_router(router)
    mount_dashboard(app)  # the web pages (service/web): shells that read the routes above

    def is_streamed(scope: Scope) -> bool:
        return (scope["method"], scope["path"].rstrip("/")) in streamed

    _document_errors(app)
    # the last added runs first: unexpected errors, curl's bodies as JSON, the body guard
    app.add_middleware(AllowHeader, routes=app.routes)
    app.add_middleware(RequestBodyGuard, max_bytes=settings.max_json_bytes, streamed=is_streamed)
    app.add_middleware(FormBodyAsJson)
    app.add_middleware(UnexpectedErrors)
    app.add_exception_handler(RequestValidationError, validation_failed)  # type: ignore[arg-type]

    @app.exception_handler(DatabaseUnavailable)
    async def _database_down(_request: Request, exc: DatabaseUnavailable) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503)

    return app


def operation_id(route: APIRoute) -> str:
    """`jobs_create`, `models_download`: what generated clients name their methods."""
    return f"{route.tags[0]}_{route.name}" if route.tags else route.name


MESSAGE = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
}
ERRORS = {
    "400": "the body is not valid JSON (RFC 8259, without NaN, Infinity, numbers that overflow "
    "or lone surrogates)",
    "401": "missing, invalid or revoked API key",
    "403": "the key's scope does not allow this route",
    "413": "the body is larger than the limit (HWNAS_MAX_JSON_BYTES, uploads HWNAS_MAX_UPLOAD_BYTES)",
}


def _document_errors(app: FastAPI) -> None:
    """Every keyed route documents 401 and 403, every route with a body 400 and 413, and a 422 may be
    FastAPI's field list or one line from the route's own checks — so generated clients (and
    schemathesis) know every status the API answers with."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        for operations in schema["paths"].values():
            for operation in operations.values():
                _add_error_responses(operation)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _add_error_responses(operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    wanted = []
    if operation.get("security"):
        wanted += ["401", "403"]
    if "requestBody" in operation:
        wanted += ["400", "413"]
    for code in wanted:
        responses.setdefault(code, {"description": ERRORS[code]})
        responses[code]["content"] = {"application/json": {"schema": MESSAGE}}
    if "422" in responses:
        listed = {"$ref": "#/components/schemas/HTTPValidationError"}
        responses["422"]["content"] = {"application/json": {"schema": {"anyOf": [listed, MESSAGE]}}}
