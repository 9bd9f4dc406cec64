"""/devices: the hardware registered so far — each device's LUTs (one per fingerprint), their
fixed costs, how much of each search space they cover, and the agents online for them — and
sharing: a device's owner lets another tenant's jobs use its agents (ownership.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from lut.coverage import coverage
from lut.store import Device, DeviceNotFound, LutStore
from search.spaces.base import SearchSpace, space_from_string, space_names
from service.api.deps import Reader, SettingsDep, StoreDep, unprocessable
from service.api.routes.agents import agent_public
from service.auth import Principal
from service.config import Settings
from service.crud import agents as queue
from service.crud import ownership
from service.schemas.agents import (
    ERRORS,
    NAME_PATTERN,
    AgentPublic,
    DeviceList,
    DevicePublic,
    DeviceShares,
    LutPublic,
    ShareBody,
    SpaceCoverage,
    Tenant,
)

# A registered space, optionally with in-range parameters (search/spaces/grammar.py).
_PARAM = r"(r[1-9]\d{1,2}|w(0\.[1-9]\d?|[1-3](\.\d{1,2})?)|c([1-9]|[1-5]\d|6[0-4])|n([2-9]|[1-9]\d{1,4}))"
SPACE_PATTERN = rf"^({'|'.join(space_names())})(@{_PARAM}(_{_PARAM}){{0,3}})?$"

router = APIRouter(prefix="/devices", tags=["devices"], responses=ERRORS)
DeviceNamePath = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]
TenantPath = Annotated[Tenant, Path()]
SpaceQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=SPACE_PATTERN,
        description="coverage of this space (e.g. fbnet-tiny@r28_c1_n10) instead of every "
        "registered space at its default parameters",
    ),
]


def _lut_public(
    store: LutStore,
    device: Device,
    settings: Settings,
    spaces: list[SearchSpace] | None,
) -> LutPublic:
    online = ownership.serving_agents(store, device, settings.agent_offline_after_s)
    covered = None
    if spaces is not None:
        covered = []
        for space in spaces:
            cover = coverage(store, device, space.distinct_opspecs())
            covered.append(
                SpaceCoverage(
                    space=space.spec_string,
                    total=cover.total,
                    missing=len(cover.missing),
                    complete=cover.complete,
                )
            )
    return LutPublic(
        id=device.id,
        backend=device.backend,
        fingerprint_hash=device.fingerprint_hash,
        fingerprint=device.fingerprint,
        fixed_costs=device.fixed_costs.to_dict() if device.fixed_costs else None,
        entries=store.count_measurements(device),
        agents_online=len(online),
        created_at=queue.as_utc(device.created_at),
        coverage=covered,
    )


def _device_public(
    name: str,
    luts: list[LutPublic],
    principal: Principal,
    owner: str | None,
    shared_with: list[str],
    agents: list[AgentPublic] | None,
) -> DevicePublic:
    """A device as the caller sees it: its owner and shares only for the owner and admins."""
    insider = principal.scope == "admin" or principal.tenant == owner
    access: Literal["owner", "shared", "read"] = "read"
    if principal.tenant == owner:
        access = "owner"
    elif principal.tenant in shared_with:
        access = "shared"
    return DevicePublic(
        name=name,
        luts=luts,
        agents=agents,
        access=access,
        owner=owner if insider else None,
        shared_with=shared_with if insider else None,
    )


@router.get("", response_model=DeviceList)
def list_devices(principal: Reader, store: StoreDep, settings: SettingsDep) -> DeviceList:
    """Every device name with its LUTs (no coverage; see GET /devices/{name}). Every tenant
    reads every LUT: a LUT is a fact about hardware, and reading one makes no device work."""
    by_name: dict[str, list[Device]] = {}
    for device in store.devices():
        by_name.setdefault(device.name, []).append(device)
    owners, shares = store.device_owners(), store.device_shares()
    return DeviceList(
        devices=[
            _device_public(
                name,
                [_lut_public(store, d, settings, None) for d in luts],
                principal,
                owners.get(name),
                shares.get(name, []),
                None,
            )
            for name, luts in by_name.items()
        ]
    )


@router.get("/{name}", response_model=DevicePublic)
def show_device(
    name: DeviceNamePath,
    principal: Reader,
    store: StoreDep,
    settings: SettingsDep,
    space: SpaceQuery = None,
) -> DevicePublic:
    """A device's LUTs with fingerprint, fixed costs and coverage per space, and the caller's
    tenant's agents of it (every agent for an admin)."""
    found = store.devices(name)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no device {name!r}")
    try:
        spaces = (
            [space_from_string(space)] if space else [space_from_string(n) for n in space_names()]
        )
    except ValueError as exc:
        raise unprocessable(("query", "space"), str(exc)) from None
    agents = [
        agent_public(a, settings)
        for a in queue.agents(store.engine, name=name)
        if principal.scope == "admin" or a.tenant == principal.tenant
    ]
    return _device_public(
        name,
        [_lut_public(store, d, settings, spaces) for d in found],
        principal,
        store.device_owner(name),
        store.device_shares(name).get(name, []),
        agents,
    )


def _shares_of_own(store: LutStore, name: str, principal: Principal) -> DeviceShares:
    """The device's shares if the caller's tenant owns it (or the caller is an admin)."""
    owner = store.device_owner(name)
    if owner is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no device {name!r}")
    if principal.scope != "admin" and principal.tenant != owner:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"device {name} belongs to another tenant; only its owner shares it",
        )
    return DeviceShares(name=name, owner=owner, shared_with=store.device_shares(name).get(name, []))


@router.post("/{name}/shares", response_model=DeviceShares)
def share_device(
    name: DeviceNamePath, body: ShareBody, principal: Reader, store: StoreDep
) -> DeviceShares:
    """Share a device the caller's tenant owns with another tenant: that tenant's jobs may then
    ask its agents to profile it and to time their models (idempotent). The agents stay the
    owner's: the other tenant still cannot register under the device's name."""
    _shares_of_own(store, name, principal)
    try:
        store.share_device(name, body.tenant)
    except ValueError as exc:
        raise unprocessable(("body", "tenant"), str(exc)) from None
    except DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    return _shares_of_own(store, name, principal)


@router.delete("/{name}/shares/{tenant}", response_model=DeviceShares)
def unshare_device(
    name: DeviceNamePath, tenant: TenantPath, principal: Reader, store: StoreDep
) -> DeviceShares:
    """Stop sharing a device with a tenant: its model tasks are no longer handed out, and its
    jobs get no more work done on the device (404 if it was not shared with that tenant)."""
    _shares_of_own(store, name, principal)
    if not store.unshare_device(name, tenant):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, detail=f"device {name} is not shared with tenant {tenant}"
        )
    return _shares_of_own(store, name, principal)
