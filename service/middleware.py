"""ASGI middlewares of the API: request bodies read once under a size cap and refused unless they
are interoperable JSON, a generic 500 that hides internals and keeps the connection, a correct
`Allow` on 405, and curl's form-labelled JSON read as JSON."""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("hwnas.api")

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_INT_DIGITS = 19  # 2**63 has 19 digits; wider integers fit no database column


class NotInteroperable(ValueError):
    """A JSON body that Python parses but that is not I-JSON (RFC 7493): NaN, Infinity, a
    number that overflows a double or a 64-bit integer, a lone UTF-16 surrogate."""


class _Bad:
    """What the parser hooks put where a non-interoperable number stood."""

    def __init__(self, text: str, why: str) -> None:
        self.text, self.why = text, why


def _constant(text: str) -> _Bad:
    return _Bad(text, "is not a JSON number")


def _float(text: str) -> float | _Bad:
    value = float(text)
    return value if math.isfinite(value) else _Bad(text[:30], "overflows a double")


def _int(text: str) -> int | _Bad:
    value = int(text) if len(text.lstrip("-")) <= MAX_INT_DIGITS else None
    if value is None or not -(2**63) <= value < 2**63:
        return _Bad(text[:30], "does not fit a 64-bit integer")
    return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _walk(document: Any) -> Iterator[tuple[str, Any]]:
    """(JSON path, value) of every value and object key, without recursion (a deep document
    must not exhaust the stack here either)."""
    stack: list[tuple[str, Any]] = [("$", document)]
    while stack:
        path, value = stack.pop()
        yield path, value
        if isinstance(value, dict):
            for key, item in value.items():
                yield f"{path} (a key)", key
                stack.append((f"{path}.{key[:40]}", item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))


def parse_json(body: bytes) -> Any:
    """The document, or NotInteroperable / ValueError with a message for the client."""
    try:
        document = json.loads(body, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    for path, value in _walk(document):
        if isinstance(value, _Bad):
            raise NotInteroperable(
                f"{value.text} at {path} {value.why}; send a finite number within range"
            )
        if isinstance(value, str) and _has_surrogate(value):
            raise NotInteroperable(
                f"the string at {path[:80]} holds a lone UTF-16 surrogate (not Unicode text)"
            )
    return document


async def send_problem(send: Send, status: int, detail: str, **headers: str) -> None:
    """A `{"detail": ...}` JSON response, sent without Starlette's Response machinery."""
    body = json.dumps({"detail": detail}).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


def _is_json(content_type: str | None) -> bool:
    """What FastAPI parses as JSON (with its default strict_content_type: only bodies that
    say so; FormBodyAsJson has relabelled curl's)."""
    if not content_type:
        return False
    kind = content_type.split(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


class RequestBodyGuard:
    """Every request body but a streamed upload's is read here, at most `max_bytes` of it
    (413 beyond, HWNAS_MAX_JSON_BYTES), and a JSON body must parse as interoperable JSON (400
    otherwise, naming where); the app then reads the same bytes. One rule for every route,
    so no field's validator ever meets NaN, an overflowing number or a lone surrogate."""

    def __init__(self, app: ASGIApp, max_bytes: int, streamed: Callable[[Scope], bool]) -> None:
        self.app, self.max_bytes, self.streamed = app, max_bytes, streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.streamed(scope):
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._too_large(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._too_large(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body and _is_json(_header(scope, b"content-type")):
            try:
                parse_json(body)
            except ValueError as exc:
                await send_problem(send, 400, f"the body is not valid JSON: {exc}")
                return
        await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, send: Send) -> None:
        detail = f"request body larger than {self.max_bytes} bytes (HWNAS_MAX_JSON_BYTES)"
        await send_problem(send, 413, detail, connection="close")


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # only http.disconnect is left
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class UnexpectedErrors:
    """Any exception that no handler turned into a response becomes a 500 that says only that
    the server failed, with a reference into its log: no traceback, path or exception text
    reaches the client, and the connection stays usable (uvicorn closes it when an exception
    escapes the app)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except ClientDisconnect:
            return  # nobody is left to answer
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("%s %s failed (reference %s)", scope["method"], scope["path"], reference)
            if started:
                raise
            detail = f"internal error (reference {reference} in the server's log)"
            await send_problem(send, 500, detail)


class AllowHeader:
    """A 405 lists in `Allow` every method some route of the path accepts, found the way the
    router itself matches (Starlette lists only the first matching route's methods, and
    GET /jobs and POST /jobs are two routes)."""

    def __init__(self, app: ASGIApp, routes: list[Any]) -> None:
        self.app, self.routes = app, routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"allow"]
                headers.append((b"allow", ", ".join(self.methods(scope)).encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)

    def methods(self, scope: Scope) -> list[str]:
        allowed = []
        for method in METHODS:
            probe = {**scope, "method": method}
            if any(route.matches(probe)[0] == Match.FULL for route in self.routes):
                allowed.append(method)
        return allowed


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
