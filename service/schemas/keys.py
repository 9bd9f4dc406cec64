"""API key schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from service.auth import TENANT_PATTERN
from service.schemas import Schema

ID = Field(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")


class KeyCreate(Schema):
    scope: Literal["admin", "user", "agent"]
    tenant: str = Field("default", min_length=1, max_length=64, pattern=TENANT_PATTERN)


class KeyPublic(Schema):
    id: str = Field(max_length=32)
    prefix: str = Field(max_length=16)
    scope: Literal["admin", "user", "agent"]
    tenant: str = Field(max_length=64)
    created_at: datetime
    revoked_at: datetime | None = None


class KeyCreated(KeyPublic):
    key: str = Field(max_length=200, description="the key itself; shown only once")


class KeyList(Schema):
    keys: list[KeyPublic] = Field(max_length=100_000)
