"""SRAM and flash (KiB) of a microcontroller as hard budgets of a search, from the MCU LUT's
per-op arena and file sizes (`deploy.mcu_memory`). Each becomes one more `Budget` the strategies
and the knapsack derive already honour, its costs in KiB:

- SRAM is the arena, head + tail. The head is a maximum over the ops (each op's activations and
  scratch), so it cannot be summed: every candidate whose head exceeds an allowance H is given a
  cost above the whole budget, so no result holds one, and H is the largest allowance for which
  every remaining choice fits (H + the fixed ops' tail + the largest remaining tail of every
  layer within the budget); if none does, the largest for which the smallest tails fit, and the
  tails (additive) are the knapsack's constraint.
- Flash is additive: each candidate's file, plus the fixed ops' files and the code of every
  operator any candidate uses."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deploy.mcu_memory import McuMemory, code_bytes, compose
from lut.opspec import OpSpec
from lut.predictor import needs_measurement
from lut.store import Device, LutStore
from search.cost import LatencyCostModel
from search.spaces.base import SearchSpace
from search.strategies.base import Budget

KIB = 1024.0
EMPTY: dict[str, Any] = {
    "arena_head_bytes": 0,
    "arena_tail_bytes": 0,
    "model_bytes": 0,
    "operators": [],
}


@dataclass(frozen=True)
class SpaceMemory:
    """Every candidate's and every fixed op's LUT memory fields (identities: none)."""

    candidates: list[list[Mapping[str, Any]]]
    fixed: list[Mapping[str, Any]]

    def heads(self, layer: int) -> list[int]:
        return [int(e["arena_head_bytes"]) for e in self.candidates[layer]]

    def tails(self, layer: int) -> list[int]:
        return [int(e["arena_tail_bytes"]) for e in self.candidates[layer]]

    @property
    def fixed_head(self) -> int:
        return max((int(e["arena_head_bytes"]) for e in self.fixed), default=0)

    @property
    def fixed_tail(self) -> int:
        return sum(int(e["arena_tail_bytes"]) for e in self.fixed)


def space_memory(store: LutStore, device: Device, space: SearchSpace) -> SpaceMemory:
    """The device's LUT memory fields of the space's ops; ValueError if it is not an MCU LUT
    or its entries predate them."""
    if device.backend != "mcu":
        raise ValueError(
            f"SRAM and flash budgets need an MCU device's LUT (`hwnas profile --backend mcu`); "
            f"{device.name!r} was profiled with {device.backend}"
        )
    lut = store.lookup(device, space.distinct_opspecs())

    def fields(spec: OpSpec) -> Mapping[str, Any]:
        if not needs_measurement(spec):
            return EMPTY
        extra = lut[spec.key].extra
        compose([extra])  # ValueError if the entry holds no arena prediction
        return extra

    return SpaceMemory(
        [[fields(s) for s in slot] for slot in space.candidate_specs()],
        [fields(s) for s in space.fixed_specs()],
    )


def arch_memory(store: LutStore, device: Device, specs: Sequence[OpSpec]) -> McuMemory:
    """An architecture's SRAM and flash composed from its ops' LUT entries."""
    lut = store.lookup(device, specs)
    return compose(lut[s.key].extra for s in specs if needs_measurement(s))


def memory_budgets(
    memory: SpaceMemory, device: str, sram_kb: float | None, flash_kb: float | None
) -> list[Budget]:
    """The SRAM and flash budgets asked for (none: an empty list); ValueError if one cannot be
    met by any architecture."""
    budgets = []
    if sram_kb is not None:
        budgets.append(sram_budget(memory, device, sram_kb))
    if flash_kb is not None:
        budgets.append(flash_budget(memory, device, flash_kb))
    return budgets


def head_allowance(memory: SpaceMemory, budget_bytes: float) -> tuple[int, bool]:
    """H and whether every choice with heads ≤ H fits (else only the knapsack on tails keeps
    the result within the budget); ValueError with the smallest achievable SRAM if none fits."""
    heads = sorted({h for layer in range(len(memory.candidates)) for h in memory.heads(layer)})
    smallest = float("inf")
    fallback = None
    for allowance in reversed(heads):
        tails = [_tails_within(memory, layer, allowance) for layer in range(len(memory.candidates))]
        if any(not t for t in tails):
            continue
        head = max(allowance, memory.fixed_head) + memory.fixed_tail
        if head + sum(max(t) for t in tails) <= budget_bytes:
            return allowance, True
        need = head + sum(min(t) for t in tails)
        smallest = min(smallest, need)
        if fallback is None and need <= budget_bytes:
            fallback = allowance
    if fallback is None:
        raise ValueError(
            f"SRAM budget {budget_bytes / KIB:.4g} KiB is infeasible: the smallest achievable "
            f"arena is {smallest / KIB:.4g} KiB"
        )
    return fallback, False


def _tails_within(memory: SpaceMemory, layer: int, allowance: int) -> list[int]:
    return [
        t for h, t in zip(memory.heads(layer), memory.tails(layer), strict=True) if h <= allowance
    ]


def sram_budget(memory: SpaceMemory, device: str, sram_kb: float) -> Budget:
    """Costs: each candidate's tail (KiB), or more than the budget where its head exceeds the
    allowance; constant: the allowance (or the fixed ops' head if larger) and the fixed tail."""
    allowance, _ = head_allowance(memory, sram_kb * KIB)
    excluded = sram_kb + 1.0
    layer_costs = tuple(
        tuple(
            t / KIB if h <= allowance else excluded
            for h, t in zip(memory.heads(layer), memory.tails(layer), strict=True)
        )
        for layer in range(len(memory.candidates))
    )
    constant = (max(allowance, memory.fixed_head) + memory.fixed_tail) / KIB
    return Budget(_model(f"{device}:sram-kib", layer_costs, constant), sram_kb)


def flash_budget(memory: SpaceMemory, device: str, flash_kb: float) -> Budget:
    """Costs: each candidate's file (KiB); constant: the fixed ops' files and the code of every
    operator the space's ops use."""
    every = [e for layer in memory.candidates for e in layer] + list(memory.fixed)
    operators = {op for e in every for op in e["operators"]}
    fixed = compose(memory.fixed).model_bytes + code_bytes(operators)
    layer_costs = tuple(
        tuple(compose([e]).model_bytes / KIB for e in layer) for layer in memory.candidates
    )
    model = _model(f"{device}:flash-kib", layer_costs, fixed / KIB)
    if model.min_latency_ms > flash_kb:
        raise ValueError(
            f"flash budget {flash_kb:.4g} KiB is infeasible: the smallest achievable is "
            f"{model.min_latency_ms:.4g} KiB"
        )
    return Budget(model, flash_kb)


def _model(name: str, layer_costs: Sequence[Sequence[float]], constant: float) -> LatencyCostModel:
    return LatencyCostModel(
        device=name,
        space="",
        layer_costs=tuple(tuple(c) for c in layer_costs),
        constant_ms=constant,
        calibrated=False,
    )


def request_memory_budgets(store: LutStore, space: SearchSpace, request: Any) -> list[Budget]:
    """A search request's SRAM and flash budgets on its primary device (none asked: [])."""
    if request.sram_kb is None and request.flash_kb is None:
        return []
    device = store.resolve_device(request.devices[0])
    memory = space_memory(store, device, space)
    return memory_budgets(memory, device.name, request.sram_kb, request.flash_kb)


def memory_metrics(
    store: LutStore, space: SearchSpace, request: Any, choices: Sequence[int]
) -> dict[str, Any]:
    """What a result's metrics record of its memory on an MCU primary device: the composed
    prediction and the budgets; nothing for another device or a LUT without the fields."""
    device = store.resolve_device(request.devices[0])
    if device.backend != "mcu":
        return {}
    arch = space.architecture(
        [slot.candidates[i] for slot, i in zip(space.layers, choices, strict=True)]
    )
    try:
        memory = arch_memory(store, device, space.decode(arch))
    except ValueError:
        return {}
    return {
        "predicted_memory": {"device": device.name, **memory.to_dict()},
        "memory_budgets_kb": {"sram_kb": request.sram_kb, "flash_kb": request.flash_kb},
    }
