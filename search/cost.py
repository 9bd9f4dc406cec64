"""The differentiable latency cost of a search space on one device, from its LUT.

Per searchable layer and candidate, the candidate's additive share of the predictor
(`lut.predictor.op_cost_ms`); plus a constant for everything the search does not choose (stem,
head, fixed blocks, the runtime's per-network cost). So `cost(sample)` equals `predict()` of that
architecture exactly, and `expected_cost(probabilities)` is its expectation, differentiable in the
probabilities (FBNet, ProxylessNAS, HardCoRe-NAS all use this form).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from lut.measurement import Measurement
from lut.opspec import OpSpec
from lut.predictor import (
    Calibration,
    MissingEntries,
    needs_measurement,
    network_constant_ms,
    op_cost_ms,
)
from lut.store import Device, LutStore
from search.spaces.base import SearchSpace


@dataclass(frozen=True)
class LatencyCostModel:
    device: str
    space: str
    layer_costs: tuple[tuple[float, ...], ...]  # [layer][candidate] in ms
    constant_ms: float
    calibrated: bool
    error_loo: float | None = None  # the calibration's leave-one-out MAPE, as a fraction

    @property
    def min_latency_ms(self) -> float:
        return self.constant_ms + sum(min(costs) for costs in self.layer_costs)

    @property
    def max_latency_ms(self) -> float:
        return self.constant_ms + sum(max(costs) for costs in self.layer_costs)

    def cost(self, sample: Sequence[int]) -> float:
        """Predicted latency (ms) of the architecture choosing candidate `sample[l]` at layer l."""
        return self.constant_ms + sum(
            costs[i] for costs, i in zip(self.layer_costs, sample, strict=True)
        )

    def layer_costs_of(self, sample: Sequence[int]) -> list[float]:
        """Each layer's share of `cost(sample)` (the constant excluded): the per-layer breakdown."""
        return [costs[i] for costs, i in zip(self.layer_costs, sample, strict=True)]

    def table(self, device: torch.device | str = "cpu") -> list[torch.Tensor]:
        return [torch.tensor(c, dtype=torch.float32, device=device) for c in self.layer_costs]

    def expected_cost(self, probabilities: Sequence[torch.Tensor]) -> torch.Tensor:
        """E[latency] = constant + Σ_l Σ_k p_lk · cost_lk, differentiable in the probabilities."""
        table = self.table(probabilities[0].device)
        total = sum((p * c).sum() for p, c in zip(probabilities, table, strict=True))
        return total + self.constant_ms  # type: ignore[return-value]


def build_cost_model(
    store: LutStore, device: Device, space: SearchSpace, *, calibrated: bool = True
) -> LatencyCostModel:
    """Read the device's LUT for every candidate of the space; missing ops are an error that
    names them (profile the space on that device first)."""
    specs = space.distinct_opspecs()
    lut = store.lookup(device, specs)
    missing = store.missing(device, specs)
    if missing:
        raise MissingEntries(device.name, missing)
    if device.fixed_costs is None:
        raise ValueError(f"device {device.name!r} has no fixed costs: run `hwnas profile` first")
    fixed = device.fixed_costs
    calibration = store.calibration(device, space.spec_string) if calibrated else None
    layer_costs = [
        tuple(op_cost_ms(s, lut, fixed, calibration) for s in slot_specs)
        for slot_specs in space.candidate_specs()
    ]
    fixed_specs = space.fixed_specs()
    constant = sum(op_cost_ms(s, lut, fixed, calibration) for s in fixed_specs)
    constant += network_constant_ms(fixed_specs[0], fixed_specs[-1], fixed, calibration)
    return LatencyCostModel(
        device=device.name,
        space=space.spec_string,
        layer_costs=tuple(layer_costs),
        constant_ms=constant,
        calibrated=calibration is not None,
        error_loo=_loo_fraction(calibration),
    )


def candidate_medians(
    store: LutStore, device: Device, space: SearchSpace
) -> list[list[float | None]]:
    """The LUT's median latency (ms) of every candidate of every searchable layer, None where the
    device's LUT lacks the op and 0 for identities: a LUT's heatmap, layer by candidate."""
    lut = store.lookup(device, space.distinct_opspecs())
    return [
        [_median_or_none(spec, lut) for spec in slot_specs]
        for slot_specs in space.candidate_specs()
    ]


def _median_or_none(spec: OpSpec, lut: dict[str, Measurement]) -> float | None:
    if not needs_measurement(spec):
        return 0.0
    entry = lut.get(spec.key)
    return None if entry is None else entry.median_ms


def _loo_fraction(calibration: Calibration | None) -> float | None:
    if calibration is None or calibration.mape_loo is None:
        return None
    return calibration.mape_loo / 100.0
