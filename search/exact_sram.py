"""The SRAM budget checked on the file, not on the estimate. The knapsack keeps a result's arena
composed from the LUT's micro-models within `--sram-kb` (`search.memory_budgets`), but TFLite
Micro's greedy plan of a whole network can fragment beyond its largest op's, so the composed
figure is an estimate. After the derive, the architecture is converted as its export will be
(full-integer, channel-last, the input normalisation folded or in front as `deploy.contract`
places it; random weights, since the arena depends on shapes alone) and its arena computed with
TFLM's planner rules (`deploy.tflm_arena`, exact on the firmware). Where that exceeds the
budget, the strategy derives again under the budget less the excess, until the file's arena
fits: the budget then holds for the exported file."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from search.memory_budgets import KIB, SpaceMemory, space_memory, sram_budget
from search.spaces.base import SearchSpace
from search.strategies.base import SearchStrategy

MAX_ROUNDS = 4
CALIBRATION_IMAGES = 4


@dataclass(frozen=True)
class ExactSram:
    """What checking an architecture's arena needs: the space, the LUT's memory fields (to
    derive again under a tighter budget), the budget and the data's normalisation."""

    space: SearchSpace
    memory: SpaceMemory
    device: str
    sram_kb: float
    mean: tuple[float, ...]
    std: tuple[float, ...]
    kernels: str = "dsp"  # the device's kernel build, whose scratch buffers the arena holds

    @property
    def budget_bytes(self) -> int:
        return int(self.sram_kb * KIB)

    def arena_bytes(self, choices: Sequence[int]) -> int:
        """TFLM's arena for the architecture's int8 file."""
        from deploy.tflm_arena import predict_arena

        with tempfile.TemporaryDirectory() as scratch:
            path = Path(scratch) / "model.int8.tflite"
            self._convert(choices, path)
            return predict_arena(path, self.kernels).arena_bytes

    def _convert(self, choices: Sequence[int], path: Path) -> None:
        import numpy as np

        from deploy.contract import deployable_module
        from deploy.exporters import export_tflite_int8
        from deploy.formats import ExportJob

        arch = self.space.architecture(
            [slot.candidates[i] for slot, i in zip(self.space.layers, choices, strict=True)]
        )
        network = self.space.build(arch).eval()
        shape = tuple(int(d) for d in self.space.input_shape[1:])
        pixels = np.random.default_rng(0).random((CALIBRATION_IMAGES, *shape), dtype=np.float32)
        job = ExportJob(
            module=deployable_module(network, self.mean, self.std, "float"),
            input_shape=(shape[0], shape[1], shape[2]),
            calibration=pixels,
            out_dir=path.parent,
            nhwc=True,
            network=network,
            mean=self.mean,
            std=self.std,
        )
        export_tflite_int8(job, path)

    def fit(
        self, strategy: SearchStrategy, choices: list[int], emit: Callable[[dict[str, Any]], None]
    ) -> tuple[list[int], dict[str, Any]]:
        """`choices`, or the strategy's derive under a tighter SRAM budget, whose file's arena
        fits; with the check's record. A strategy whose derive ignores the budget (argmax)
        keeps its choices, and the record says they do not fit. ValueError when no budget
        the LUT allows makes the file fit."""
        index = self._budget_index(strategy)
        effective_kb = self.sram_kb
        for round_ in range(1, MAX_ROUNDS + 1):
            arena = self.arena_bytes(choices)
            emit({"type": "sram_check", "round": round_, "arena_bytes": arena,
                  "budget_bytes": self.budget_bytes})  # fmt: skip
            if arena <= self.budget_bytes or round_ == MAX_ROUNDS:
                break
            current = strategy.budgets[index]
            if current.cost_model.cost(choices) > current.latency_ms:
                break  # the derive does not keep to the budget (argmax): tightening cannot help
            effective_kb -= (arena - self.budget_bytes) / KIB
            try:
                strategy.replace_budget(index, sram_budget(self.memory, self.device, effective_kb))
            except ValueError as exc:
                raise ValueError(
                    self._no_fit(arena, f"and no tighter derive fits: {exc}")
                ) from None
            derived = strategy.derive()
            if derived == choices:
                break
            choices = derived
        record = self._record(arena, round_, effective_kb)
        if not record["within"]:
            emit({"type": "warning", "message": self._no_fit(arena, "as derived")})
        return choices, record

    def check(self, choices: Sequence[int]) -> dict[str, Any]:
        """The record of `choices` as they are (strategies that do not derive: baselines)."""
        return self._record(self.arena_bytes(choices), 1, self.sram_kb)

    def _record(self, arena: int, rounds: int, effective_kb: float) -> dict[str, Any]:
        return {
            "file_arena_bytes": arena,
            "budget_bytes": self.budget_bytes,
            "within": arena <= self.budget_bytes,
            "rounds": rounds,
            "derived_under_kb": round(effective_kb, 3),
            "method": "the architecture's int8 file (random weights), TFLM's planner rules",
        }

    def _budget_index(self, strategy: SearchStrategy) -> int:
        name = f"{self.device}:sram-kib"
        for index, budget in enumerate(strategy.budgets):
            if budget.device == name:
                return index
        raise ValueError(f"the strategy holds no SRAM budget {name!r}")

    def _no_fit(self, arena: int, how: str) -> str:
        return (
            f"SRAM budget {self.sram_kb:g} KiB: the derived network's file needs "
            f"{arena / KIB:.1f} KiB {how}"
        )


def exact_sram(store: Any, space: SearchSpace, request: Any, data: Any) -> ExactSram | None:
    """The check for a request with an SRAM budget on an MCU device; None otherwise."""
    if request.sram_kb is None:
        return None
    from profilers.mcu.toolchain import arena_kernels_of

    device = store.resolve_device(request.devices[0])
    memory = space_memory(store, device, space)
    return ExactSram(
        space,
        memory,
        device.name,
        float(request.sram_kb),
        tuple(float(m) for m in data.mean),
        tuple(float(s) for s in data.std),
        arena_kernels_of(str(device.fingerprint.get("core", ""))),
    )
