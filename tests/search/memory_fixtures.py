"""Hand-made LUT memory fields of a two-layer space (three candidates a layer) and the memory an
architecture of it composes: the SRAM and flash budget tests' shared fixture."""

from __future__ import annotations

from typing import Any

from deploy.mcu_memory import McuMemory, compose
from search.memory_budgets import KIB, SpaceMemory


def op_memory(
    head_kb: float, tail_kb: float, model_kb: float, ops: tuple[str, ...]
) -> dict[str, Any]:
    return {
        "arena_head_bytes": int(head_kb * KIB),
        "arena_tail_bytes": int(tail_kb * KIB),
        "model_bytes": int(model_kb * KIB),
        "operators": list(ops),
    }


CONV = ("CONV_2D",)
MBCONV = ("CONV_2D", "DEPTHWISE_CONV_2D", "PAD")
MEMORY = SpaceMemory(
    candidates=[
        [op_memory(40, 3, 10, MBCONV), op_memory(60, 5, 20, MBCONV), op_memory(0, 0, 0, ())],
        [op_memory(30, 2, 8, MBCONV), op_memory(90, 6, 30, MBCONV), op_memory(20, 1, 4, CONV)],
    ],
    fixed=[op_memory(50, 4, 2, CONV), op_memory(5, 2, 12, ("MEAN", "FULLY_CONNECTED"))],
)


def composed(choice: tuple[int, ...]) -> McuMemory:
    ops = [layer[i] for layer, i in zip(MEMORY.candidates, choice, strict=True)]
    return compose([*MEMORY.fixed, *ops])
