"""/luts: a device's LUT in the versioned exchange format of lut/exchange.py — read by users,
imported by admins (checked whole first: an invalid document imports nothing)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, status

from lut.exchange import InvalidLutFile, export_lut, import_lut, parse_lut
from lut.store import DeviceNotFound, DeviceOwned
from service.api.deps import Admin, Reader, StoreDep, unprocessable
from service.crud.agent_tasks import json_safe
from service.schemas.agents import ERRORS, NAME_PATTERN, LutDocument, LutImported, LutRef

router = APIRouter(prefix="/luts", tags=["luts"], responses=ERRORS)
DeviceNamePath = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]
BackendQuery = Annotated[
    str | None,
    Query(min_length=1, max_length=50, description="the LUT of this backend, if several"),
]


@router.get("/{device}", response_model=LutDocument)
def export_device_lut(
    device: DeviceNamePath, _reader: Reader, store: StoreDep, backend: BackendQuery = None
) -> dict[str, Any]:
    """The newest LUT of `device` (of `backend`, if given) as a hwnas-lut document."""
    try:
        found = store.resolve_device(device, backend)
    except DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    return json_safe(export_lut(store, found))


@router.post("", response_model=LutImported, status_code=status.HTTP_201_CREATED)
def import_device_lut(
    body: LutDocument,
    _admin: Admin,
    store: StoreDep,
    replace: Annotated[bool, Query(description="overwrite entries the LUT already has")] = False,
) -> LutImported:
    """Import a hwnas-lut document (as `hwnas lut import` does) in one transaction. A new
    device name goes to the admin's tenant; one of another tenant is refused (403)."""
    try:
        parsed = parse_lut(body.model_dump(mode="json"))
    except InvalidLutFile as exc:
        raise unprocessable(("body",), str(exc)) from None
    try:
        device, added = import_lut(store, parsed, replace=replace, owner=_admin.tenant)
    except DeviceOwned as exc:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, detail=f"{exc}; import it under another name"
        ) from None
    return LutImported(
        device=LutRef(
            id=device.id,
            name=device.name,
            backend=device.backend,
            fingerprint_hash=device.fingerprint_hash,
        ),
        added=added,
        entries=store.count_measurements(device),
    )
