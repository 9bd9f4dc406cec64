"""/devices: the hardware registered so far — each device's LUTs (one per fingerprint), their
fixed costs, how much of each search space they cover, and the agents online for them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from lut.store import Device, LutStore
from search.spaces.base import SearchSpace, space_from_string, space_names
from service.agents import queue
from service.agents.deps import Reader, SettingsDep, StoreDep, unprocessable
from service.agents.schemas import (
    ERRORS,
    NAME_PATTERN,
    DeviceList,
    DevicePublic,
    LutPublic,
    SpaceCoverage,
)
from service.agents.tasks import coverage
from service.routers.agents import agent_public
from service.settings import ServiceSettings

# A registered space, optionally with in-range parameters (search/spaces/grammar.py).
_PARAM = r"(r[1-9]\d{1,2}|w(0\.[1-9]\d?|[1-3](\.\d{1,2})?)|c([1-9]|[1-5]\d|6[0-4])|n([2-9]|[1-9]\d{1,4}))"
SPACE_PATTERN = rf"^({'|'.join(space_names())})(@{_PARAM}(_{_PARAM}){{0,3}})?$"

router = APIRouter(prefix="/devices", tags=["devices"], responses=ERRORS)
DeviceNamePath = Annotated[str, Path(min_length=1, max_length=100, pattern=NAME_PATTERN)]
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
    settings: ServiceSettings,
    spaces: list[SearchSpace] | None,
) -> LutPublic:
    online = queue.online_agents(store.engine, device.id, settings.agent_offline_after_s)
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


@router.get("", response_model=DeviceList)
def list_devices(_reader: Reader, store: StoreDep, settings: SettingsDep) -> DeviceList:
    """Every device name with its LUTs (no coverage; see GET /devices/{name})."""
    by_name: dict[str, list[Device]] = {}
    for device in store.devices():
        by_name.setdefault(device.name, []).append(device)
    return DeviceList(
        devices=[
            DevicePublic(
                name=name, luts=[_lut_public(store, d, settings, None) for d in luts], agents=None
            )
            for name, luts in by_name.items()
        ]
    )


@router.get("/{name}", response_model=DevicePublic)
def show_device(
    name: DeviceNamePath,
    _reader: Reader,
    store: StoreDep,
    settings: SettingsDep,
    space: SpaceQuery = None,
) -> DevicePublic:
    """A device's LUTs with fingerprint, fixed costs and coverage per space, and its agents."""
    found = store.devices(name)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no device {name!r}")
    try:
        spaces = (
            [space_from_string(space)] if space else [space_from_string(n) for n in space_names()]
        )
    except ValueError as exc:
        raise unprocessable(("query", "space"), str(exc)) from None
    agents = [agent_public(a, settings) for a in queue.agents(store.engine, name=name)]
    return DevicePublic(
        name=name,
        luts=[_lut_public(store, d, settings, spaces) for d in found],
        agents=agents,
    )
