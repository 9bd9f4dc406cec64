"""API keys with scopes. A key is `hwnas_<prefix>_<secret>`; only its SHA-256 is stored, found by
its prefix and compared in constant time. `require_scope` is the FastAPI dependency."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

from fastapi import Depends, HTTPException, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine, insert, select, update

from service.tables import api_keys

Scope = Literal["admin", "user", "agent"]
SCOPES: tuple[Scope, ...] = ("admin", "user", "agent")
KEY_PREFIX = "hwnas_"
PREFIX_CHARS = 12
TENANT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
CACHE_S = 2.0  # a revoked key stops working within this time on every API process


@dataclass(frozen=True)
class Principal:
    key_id: str
    scope: Scope
    tenant: str


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(engine: Engine, scope: str, tenant: str) -> tuple[str, str]:
    """A new key: returns (key id, the key itself). The key is shown once and stored hashed."""
    import re

    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; valid: {', '.join(SCOPES)}")
    if not re.match(TENANT_PATTERN, tenant):
        raise ValueError(
            f"bad tenant {tenant!r}: 1-64 letters, digits, '_', '.', '-', starting alphanumeric"
        )
    prefix = secrets.token_hex(PREFIX_CHARS // 2)
    key = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    with engine.begin() as conn:
        return _insert_key(conn, prefix, key, scope, tenant), key


def _insert_key(conn: Connection, prefix: str, key: str, scope: str, tenant: str) -> str:
    key_id = uuid.uuid4().hex
    conn.execute(
        insert(api_keys).values(
            id=key_id,
            prefix=prefix,
            key_hash=_hash(key),
            scope=scope,
            tenant=tenant,
            created_at=datetime.now(UTC),
        )
    )
    return key_id


def ensure_key(engine: Engine, key: str, scope: str, tenant: str) -> str:
    """Store a key chosen by the operator (e.g. HWNAS_ADMIN_KEY) if it is not stored yet."""
    prefix = "admin-" + _hash(key)[:10]  # outside the generated keys' prefix space
    with engine.begin() as conn:
        found = conn.execute(select(api_keys.c.id).where(api_keys.c.prefix == prefix)).scalar()
        if found is not None:
            return str(found)
        return _insert_key(conn, prefix, key, scope, tenant)


def _prefix_of(key: str) -> str | None:
    if key.startswith(KEY_PREFIX):
        prefix, sep, _secret = key[len(KEY_PREFIX) :].partition("_")
        return prefix if sep and len(prefix) == PREFIX_CHARS else None
    return "admin-" + _hash(key)[:10]


def authenticate(engine: Engine, key: str) -> Principal | None:
    """The principal of a valid, unrevoked key; None otherwise."""
    prefix = _prefix_of(key)
    if prefix is None or len(key) > 200:
        return None
    with engine.connect() as conn:
        row = conn.execute(
            select(api_keys).where(api_keys.c.prefix == prefix, api_keys.c.revoked_at.is_(None))
        ).first()
    if row is None or not hmac.compare_digest(row.key_hash, _hash(key)):
        return None
    return Principal(key_id=row.id, scope=cast(Scope, row.scope), tenant=row.tenant)


def list_keys(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at)).all()
    return [
        {
            "id": r.id,
            "prefix": r.prefix,
            "scope": r.scope,
            "tenant": r.tenant,
            "created_at": r.created_at,
            "revoked_at": r.revoked_at,
        }
        for r in rows
    ]


def revoke_key(engine: Engine, key_id: str) -> bool:
    with engine.begin() as conn:
        result = conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    return bool(result.rowcount)


_MISS = object()


class _KeyCache:
    """A few seconds of memory per key hash, so polling clients do not hit the database for
    every request."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal | None]] = {}

    def cached(self, key: str) -> Principal | object | None:
        """The principal remembered for this key, or _MISS (look it up in the database)."""
        hit = self._entries.get(_hash(key))
        if hit is not None and time.monotonic() - hit[0] < CACHE_S:
            return hit[1]
        return _MISS

    def lookup(self, engine: Engine, key: str) -> Principal | None:
        digest, now = _hash(key), time.monotonic()
        principal = authenticate(engine, key)
        if len(self._entries) > 10_000:
            self._entries.clear()
        self._entries[digest] = (now, principal)
        return principal


_bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer KEY`")


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


def require_scope(*scopes: str) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller's principal if its key is valid and has one of `scopes`;
    401 for a missing or bad key, 403 for another scope."""
    unknown = set(scopes) - set(SCOPES)
    if unknown or not scopes:
        raise ValueError(f"unknown scopes {sorted(unknown)}; valid: {', '.join(SCOPES)}")

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise _unauthorized("missing API key: send `Authorization: Bearer KEY`")
        cache: _KeyCache = request.app.state.key_cache
        key = credentials.credentials
        remembered = cache.cached(key)
        if remembered is _MISS:
            engine = getattr(request.app.state, "read_engine", request.app.state.engine)
            principal = await run_in_threadpool(cache.lookup, engine, key)
        else:
            principal = cast(Principal | None, remembered)
        if principal is None:
            raise _unauthorized("invalid or revoked API key")
        if principal.scope not in scopes:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"this route needs a key with scope {' or '.join(scopes)}; "
                f"this key has scope {principal.scope}",
            )
        return principal

    return dependency


def new_key_cache() -> _KeyCache:
    return _KeyCache()
