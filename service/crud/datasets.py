"""Uploaded datasets: validated with the search's own loader, stored once under their content
hash (artifacts/datasets/<sha256>.<format>), recorded per tenant."""

from __future__ import annotations

import os
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from service.tables import datasets
from service.uploads import ReceivedFile

FORMATS = ("zip", "npz")


class InvalidDataset(ValueError):
    """An upload that is not a usable dataset; the message is the loader's one-line reason,
    naming the user's file (never a server path)."""


class DatasetTooLarge(InvalidDataset):
    """An upload whose uncompressed size exceeds HWNAS_MAX_DATASET_BYTES."""


def dataset_path(artifacts_dir: Path, content_hash: str, fmt: str) -> Path:
    return artifacts_dir / "datasets" / f"{content_hash}.{fmt}"


def detect_format(received: ReceivedFile) -> str:
    """zip (an ImageFolder) or npz (arrays x, y), by the file name, else by the contents (an
    .npz is a zip of .npy members)."""
    suffix = Path(received.filename).suffix.lower().lstrip(".")
    if suffix in FORMATS:
        return suffix
    from search.data.archive import check_members
    from search.data.base import DatasetError

    try:
        check_members(received.path, received.filename)
    except DatasetError as exc:
        raise InvalidDataset(str(exc)) from None
    try:
        with zipfile.ZipFile(received.path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
    except (zipfile.BadZipFile, OSError, ValueError):
        raise InvalidDataset(
            f"{received.filename}: not a .zip (ImageFolder) or .npz (arrays x and y)"
        ) from None
    return "npz" if names and all(n.endswith(".npy") for n in names) else "zip"


def validate(received: ReceivedFile, fmt: str, max_bytes: int) -> dict[str, Any]:
    """Check the upload as the search will load it, without loading it whole (so a dataset
    larger than the API's memory, or a decompression bomb, costs the API no memory); returns
    its summary or raises InvalidDataset."""
    from search.data.archive import DatasetTooLarge as Uncompressed
    from search.data.base import DatasetError
    from search.data.check import check_dataset

    where = received.filename
    try:
        summary = check_dataset(
            received.path, fmt, where=where, max_bytes=max_bytes, work_dir=received.path.parent
        )
    except Uncompressed as exc:
        raise DatasetTooLarge(_public(str(exc), received) + " (HWNAS_MAX_DATASET_BYTES)") from None
    except DatasetError as exc:
        raise InvalidDataset(_public(str(exc), received)) from None
    except MemoryError:
        raise InvalidDataset(f"{where}: too large to check in the server's memory") from None
    return {
        "input_shape": list(summary.input_shape),
        "num_classes": summary.num_classes,
        "class_names": [str(c)[:100] for c in summary.class_names[:1000]],
        "samples": summary.samples,
    }


def _public(message: str, received: ReceivedFile) -> str:
    """`message` with any server path in it replaced by the user's file name."""
    for path in (received.path, received.path.parent):
        message = message.replace(str(path), received.filename)
    return message


def store_dataset(
    engine: Engine,
    artifacts_dir: Path,
    tenant: str,
    received: ReceivedFile,
    name: str,
    max_dataset_bytes: int,
) -> tuple[dict[str, Any], bool]:
    """Validate, move under the content hash and record; returns (row, created). The same
    content uploaded twice by a tenant is one dataset. The temporary file is gone afterwards,
    whatever happened."""
    try:
        existing = find_by_hash(engine, tenant, received.sha256)
        if existing is not None:
            return existing, False
        if received.size == 0:
            raise InvalidDataset(f"{received.filename}: empty file")
        fmt = detect_format(received)
        summary = validate(received, fmt, max_dataset_bytes)
        target = dataset_path(artifacts_dir, received.sha256, fmt)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(received.path, target)
    finally:
        received.path.unlink(missing_ok=True)
    row = {
        "id": uuid.uuid4().hex,
        "tenant": tenant,
        "name": name,
        "content_hash": received.sha256,
        "format": fmt,
        "size_bytes": received.size,
        "summary": summary,
        "created_at": datetime.now(UTC),
    }
    dialect = sqlite if engine.dialect.name == "sqlite" else postgresql
    with engine.begin() as conn:
        conn.execute(
            dialect.insert(datasets)
            .values(**row)
            .on_conflict_do_nothing(index_elements=["tenant", "content_hash"])
        )
    stored = find_by_hash(engine, tenant, received.sha256)
    if stored is None:
        raise RuntimeError("dataset row vanished after insert")
    return stored, stored["id"] == row["id"]


def find_by_hash(engine: Engine, tenant: str, content_hash: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(datasets).where(
                datasets.c.tenant == tenant, datasets.c.content_hash == content_hash
            )
        ).first()
    return None if row is None else dict(row._mapping)


def get_dataset(engine: Engine, tenant: str, dataset_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(datasets).where(datasets.c.tenant == tenant, datasets.c.id == dataset_id)
        ).first()
    return None if row is None else dict(row._mapping)


def list_datasets(engine: Engine, tenant: str, limit: int, offset: int) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(datasets)
            .where(datasets.c.tenant == tenant)
            .order_by(datasets.c.created_at.desc(), datasets.c.id)
            .limit(limit)
            .offset(offset)
        ).all()
    return [dict(r._mapping) for r in rows]
