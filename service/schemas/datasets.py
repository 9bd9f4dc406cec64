"""Dataset schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from service.crud.jobs import as_utc
from service.schemas import Schema


class DatasetPublic(Schema):
    id: str = Field(max_length=32)
    name: str = Field(max_length=200)
    format: Literal["zip", "npz"]
    size_bytes: int = Field(ge=0)
    content_hash: str = Field(max_length=64)
    input_shape: list[int] = Field(min_length=3, max_length=3)
    num_classes: int = Field(ge=2)
    class_names: list[str] = Field(max_length=1000)
    samples: int = Field(ge=0)
    created_at: datetime


class DatasetList(Schema):
    datasets: list[DatasetPublic] = Field(max_length=1000)


def dataset_public(row: dict) -> DatasetPublic:  # type: ignore[type-arg]
    summary = row["summary"]
    return DatasetPublic(
        id=row["id"],
        name=row["name"],
        format=row["format"],
        size_bytes=row["size_bytes"],
        content_hash=row["content_hash"],
        input_shape=summary["input_shape"],
        num_classes=summary["num_classes"],
        class_names=summary["class_names"],
        samples=summary["samples"],
        created_at=as_utc(row["created_at"]),
    )
