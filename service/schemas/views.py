"""Schemas of the read-only views the dashboard draws: a job's chosen network layer by layer, its
architecture probabilities over the steps, a device's LUT as a layer × candidate table, and its
calibration runs predicted against measured."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from service.schemas import Schema

Label = Annotated[str, Field(max_length=100)]
Ms = Annotated[float, Field(ge=0)]
MAX_LAYERS = 256
MAX_CANDIDATES = 64


class LayerLatency(Schema):
    layer: str = Field(max_length=100)
    choice: str = Field(max_length=100)
    predicted_ms: float = Field(description="this layer's share of the predicted latency")


class DeviceLayers(Schema):
    device: str = Field(max_length=100)
    calibrated: bool
    constant_ms: float = Field(description="stem, head, fixed blocks and the per-call cost")
    total_ms: float = Field(description="constant_ms plus every layer's share")
    layers: list[LayerLatency] = Field(max_length=MAX_LAYERS)


class BudgetLayers(Schema):
    budget_ms: float | None = Field(default=None, description="the budget of this result")
    arch: str = Field(max_length=2000)
    devices: list[DeviceLayers] = Field(max_length=8)
    errors: dict[str, str] = Field(
        default_factory=dict, description="devices whose LUT no longer gives a breakdown, and why"
    )


class JobLayers(Schema):
    job_id: str = Field(max_length=32)
    results: list[BudgetLayers] = Field(max_length=16, description="one per budget")


class ProbabilityRun(Schema):
    budget_ms: float | None = None
    layers: list[Label] = Field(max_length=MAX_LAYERS)
    candidates: list[list[Label]] = Field(max_length=MAX_LAYERS, description="per layer")
    steps: list[int] = Field(max_length=10_000, description="the architecture steps shown")
    probabilities: list[list[list[float]]] = Field(
        max_length=10_000, description="[step][layer][candidate]"
    )
    expected_latency_ms: list[dict[str, float]] = Field(max_length=10_000, description="per step")


class JobHistory(Schema):
    job_id: str = Field(max_length=32)
    runs: list[ProbabilityRun] = Field(max_length=16, description="one per budget")


class LatencyHeatmap(Schema):
    device: str = Field(max_length=100)
    backend: str = Field(max_length=100)
    space: str = Field(max_length=200)
    layers: list[Label] = Field(max_length=MAX_LAYERS)
    candidates: list[list[Label]] = Field(max_length=MAX_LAYERS, description="per layer")
    median_ms: list[list[Ms | None]] = Field(
        max_length=MAX_LAYERS,
        description="[layer][candidate]: the LUT's median latency; null where it lacks the op",
    )
    missing: int = Field(ge=0, description="candidate ops the LUT lacks")


class CalibrationRun(Schema):
    arch: str = Field(max_length=2000)
    measured_ms: float = Field(ge=0)
    predicted_ms: float = Field(description="the LUT sum without the calibration")
    calibrated_ms: float | None = Field(default=None, description="with the stored calibration")


class CalibrationView(Schema):
    device: str = Field(max_length=100)
    backend: str = Field(max_length=100)
    space: str = Field(max_length=200)
    calibration: dict[str, Any] | None = Field(
        default=None, description="the stored calibration's form and errors, if fitted"
    )
    runs: list[CalibrationRun] = Field(max_length=5000)
