"""Error responses built from what a client sent: a 422's field list made JSON-safe and short, so
rendering the error can neither fail (NaN, a lone surrogate) nor echo megabytes back."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

MAX_TEXT = 200  # characters of a message, location part or echoed string
MAX_INPUT_JSON = 200  # an echoed input above this many characters is described, not echoed
MAX_ERRORS = 20


def safe_text(text: str, limit: int = MAX_TEXT) -> str:
    """`text` as valid Unicode (a lone surrogate becomes U+FFFD), at most `limit` characters."""
    clean = text.encode("utf-8", "replace").decode("utf-8")
    return clean if len(clean) <= limit else clean[: limit - 1] + "…"


def safe_value(value: Any, depth: int = 0) -> Any:
    """A JSON-ready, bounded copy of `value`: non-finite numbers as text, strings cleaned and
    shortened, long containers cut, anything else by its str()."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return safe_text(value)
    if depth < 3 and isinstance(value, dict):
        return {safe_text(str(k), 60): safe_value(v, depth + 1) for k, v in list(value.items())[:8]}
    if depth < 3 and isinstance(value, list | tuple):
        return [safe_value(item, depth + 1) for item in list(value)[:8]]
    return safe_text(str(value))


def _echo(value: Any) -> Any | None:
    """The rejected input itself when it is short, else None (not echoed)."""
    cleaned = safe_value(value)
    return cleaned if len(json.dumps(cleaned)) <= MAX_INPUT_JSON else None


def public_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """FastAPI's field errors (loc, msg, type, input, ctx) in a form that always renders."""
    result = []
    for error in list(errors)[:MAX_ERRORS]:
        item: dict[str, Any] = {
            "loc": [
                part if isinstance(part, int) else safe_text(str(part), 60)
                for part in error.get("loc", ())
            ][:12],
            "msg": safe_text(str(error.get("msg", "")), 500),
            "type": safe_text(str(error.get("type", "")), 60),
        }
        echoed = _echo(error["input"]) if "input" in error else None
        if echoed is not None:
            item["input"] = echoed
        if isinstance(error.get("ctx"), dict):
            item["ctx"] = safe_value(error["ctx"])
        result.append(item)
    return result


async def validation_failed(_request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse({"detail": public_errors(exc.errors())}, status_code=422)
