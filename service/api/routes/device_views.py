"""/devices/{name}/heatmap and /devices/{name}/calibration: a device's LUT as a table of op
latency per searchable layer and candidate, and its end-to-end calibration runs with the
latency the LUT predicts for each — what the dashboard's devices page draws."""

from __future__ import annotations

import math
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status

from lut.predictor import Calibration, MissingEntries, predict_from_features
from lut.store import Device, DeviceNotFound, LutStore
from profilers.calibrate import calibration_points
from search.cost import candidate_medians
from search.spaces.base import SearchSpace, decode_string, space_from_string
from service.api.deps import Reader, StoreDep, unprocessable
from service.api.routes.devices import SPACE_PATTERN, DeviceNamePath
from service.api.routes.luts import BackendQuery
from service.schemas.agents import ERRORS
from service.schemas.views import CalibrationRun, CalibrationView, LatencyHeatmap

router = APIRouter(prefix="/devices", tags=["devices"], responses=ERRORS)
NamedSpace = Annotated[
    str,
    Query(
        min_length=1,
        max_length=200,
        pattern=SPACE_PATTERN,
        description="a search space with the parameters its LUT was profiled for "
        "(e.g. fbnet-tiny@c1_n3)",
    ),
]


def _device_and_space(
    store: LutStore, name: str, backend: str | None, space: str
) -> tuple[Device, SearchSpace]:
    try:
        device = store.resolve_device(name, backend)
    except DeviceNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=str(exc)) from None
    try:
        return device, space_from_string(space)
    except ValueError as exc:
        raise unprocessable(("query", "space"), str(exc)) from None


@router.get("/{name}/heatmap", response_model=LatencyHeatmap)
def heatmap(
    name: DeviceNamePath,
    space: NamedSpace,
    _reader: Reader,
    store: StoreDep,
    backend: BackendQuery = None,
) -> LatencyHeatmap:
    """The newest LUT of the device: each searchable layer's candidates with their median
    latency (null where the LUT lacks the op; identities cost 0)."""
    device, bound = _device_and_space(store, name, backend, space)
    medians = candidate_medians(store, device, bound)
    return LatencyHeatmap(
        device=device.name,
        backend=device.backend,
        space=bound.spec_string,
        layers=[slot.label for slot in bound.layers],
        candidates=[list(slot.candidates) for slot in bound.layers],
        median_ms=medians,
        missing=sum(value is None for row in medians for value in row),
    )


@router.get(
    "/{name}/calibration",
    response_model=CalibrationView,
    responses={409: {"description": "the LUT lacks ops of its own end-to-end runs"}},
)
def calibration(
    name: DeviceNamePath,
    space: NamedSpace,
    _reader: Reader,
    store: StoreDep,
    backend: BackendQuery = None,
) -> CalibrationView:
    """The device's end-to-end runs of the space: measured latency beside the LUT's prediction,
    uncalibrated and with the stored calibration (none before `hwnas lut calibrate`)."""
    device, bound = _device_and_space(store, name, backend, space)
    fitted = store.calibration(device, bound.spec_string)
    try:
        runs = _runs(store, device, bound, fitted)
    except MissingEntries as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=str(exc).splitlines()[0]) from None
    summary = None
    if fitted is not None:
        keys = ("form", "n_points", "mape_before", "mape_after", "mape_loo")
        summary = {k: v for k, v in fitted.to_dict().items() if k in keys and _finite_or_text(v)}
    return CalibrationView(
        device=device.name,
        backend=device.backend,
        space=bound.spec_string,
        calibration=summary,
        runs=runs,
    )


def _runs(
    store: LutStore, device: Device, space: SearchSpace, fitted: Calibration | None
) -> list[CalibrationRun]:
    fixed = device.fixed_costs
    if fixed is None:
        return []  # a LUT without fixed costs has no predictions (and no calibration runs)
    return [
        CalibrationRun(
            arch=arch,
            measured_ms=measured,
            predicted_ms=predict_from_features(feats, fixed).latency_ms,
            calibrated_ms=predict_from_features(feats, fixed, fitted).latency_ms
            if fitted
            else None,
        )
        for arch, feats, measured in calibration_points(store, device, space, decode_string)
    ]


def _finite_or_text(value: object) -> bool:
    return not isinstance(value, float) or math.isfinite(value)
