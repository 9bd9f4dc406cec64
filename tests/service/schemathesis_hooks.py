"""Schemathesis hooks (SCHEMATHESIS_HOOKS) that make JSON bodies hostile: one value or key of a
generated body replaced by what JSON Schema cannot express and Python's json module accepts —
NaN, ±Infinity, a number that overflows a double, lone UTF-16 surrogates — sent as raw bytes."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import schemathesis
from hypothesis import strategies as st

HOSTILE = ("NaN", "Infinity", "-Infinity", "1e999", '"\\ud800"', '"a\\udfffb"')
SURROGATE_KEY = '"\\udbff"'
_VALUE = "\x01hostile-value\x01"
_KEY = "\x01hostile-key\x01"

Path = tuple[Any, ...]


def _paths(document: Any, path: Path = ()) -> Iterator[tuple[Path, bool]]:
    """(path, is an object) of every value in `document`, the document itself first."""
    yield path, isinstance(document, dict)
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _paths(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _paths(value, (*path, index))


def _replace(document: Any, path: Path, value: Any) -> Any:
    if not path:
        return value
    copied = copy.deepcopy(document)
    parent = copied
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return copied


def hostile_body(document: Any, path: Path, token: str) -> bytes:
    """`document` as JSON with the value at `path` replaced by `token`, or, where `token` is
    SURROGATE_KEY, with a surrogate key added to the object at `path`."""
    if token == SURROGATE_KEY:
        target = document
        for part in path:
            target = target[part]
        changed = _replace(document, path, {**target, _KEY: 1})
    else:
        changed = _replace(document, path, _VALUE)
    text = json.dumps(changed)
    text = text.replace(json.dumps(_VALUE), token).replace(json.dumps(_KEY), SURROGATE_KEY)
    return text.encode()


def _json_only(context: Any) -> bool:
    operation = getattr(context, "operation", None)
    if operation is None:
        return False
    types = operation.get_request_payload_content_types()
    return bool(types) and all("json" in media_type for media_type in types)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    if not isinstance(body, dict | list) or not _json_only(context):
        return st.just(body)
    slots = list(_paths(body))
    values = st.tuples(st.sampled_from(slots), st.sampled_from(HOSTILE)).map(
        lambda pick: hostile_body(body, pick[0][0], pick[1])
    )
    objects = [path for path, is_object in slots if is_object]
    keys = st.sampled_from(objects).map(lambda path: hostile_body(body, path, SURROGATE_KEY))
    return st.one_of(st.just(body), values, keys) if objects else st.one_of(st.just(body), values)
