"""The FastAPI app, built by `create_app(settings)`: one router per resource, the database
opened (and migrated) once, the operator's admin key ensured."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lut.store import DatabaseUnavailable, LutStore
from service.auth import ensure_key, new_key_cache
from service.db import read_engine
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
    for name in ROUTER_MODULES:
        app.include_router(importlib.import_module(f"service.routers.{name}").router)

    _document_errors(app)
    app.add_middleware(AllowHeader, routes=app.routes)
    app.add_middleware(FormBodyAsJson)

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
    "400": "the body could not be parsed",
    "401": "missing, invalid or revoked API key",
    "403": "the key's scope does not allow this route",
}


def _document_errors(app: FastAPI) -> None:
    """Every keyed route documents 401 and 403, every route with a body 400, and a 422 may be
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
        wanted.append("400")
    for code in wanted:
        responses.setdefault(code, {"description": ERRORS[code]})
        responses[code]["content"] = {"application/json": {"schema": MESSAGE}}
    if "422" in responses:
        listed = {"$ref": "#/components/schemas/HTTPValidationError"}
        responses["422"]["content"] = {"application/json": {"schema": {"anyOf": [listed, MESSAGE]}}}


class AllowHeader:
    """A 405 lists every method of the path in `Allow` (Starlette lists only those of the
    first route whose path matched, and GET /jobs and POST /jobs are two routes)."""

    def __init__(self, app: ASGIApp, routes: list[Any]) -> None:
        self.app, self.routes = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = self._methods(scope["path"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(methods).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)

    def _methods(self, path: str) -> list[str]:
        found: set[str] = set()
        for route in self.routes:
            if isinstance(route, APIRoute) and route.path_regex.match(path):
                found |= route.methods or set()
        return sorted(found)


class FormBodyAsJson:
    """`curl -d '{...}'` labels its body application/x-www-form-urlencoded. No route takes
    form-encoded bodies, so such a body is read as the JSON it is."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope.get("headers", [])
            if any(
                k == b"content-type" and v.startswith(b"application/x-www-form-urlencoded")
                for k, v in headers
            ):
                rewritten = [(k, v) for k, v in headers if k != b"content-type"]
                rewritten.append((b"content-type", b"application/json"))
                scope = {**scope, "headers": rewritten}
        await self.app(scope, receive, send)
