"""SRAM and flash of a network on a microcontroller running TFLite Micro. For a .tflite file:
the arena exactly (`deploy.tflm_arena`) and the flash (the file plus the runtime code of the
operators it uses). For an architecture, from its ops' MCU LUT entries: the arena's head is the
largest op's head (each op's activations and scratch are planned on their own) and its tail the
sum of the ops' tails — an estimate, since TFLM's greedy plan of a whole network can fragment
beyond its largest op's (docs/mcu.md); flash the sum of the ops' files plus their operators'
code."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.tflm_arena import operator_name, predict_arena, read_model
from deploy.tflm_code_m4 import CODE_TABLE

MODEL_ALIGNMENT = 16  # model_data.cc's array is 16-byte aligned


@dataclass(frozen=True)
class McuMemory:
    """Predicted bytes: `sram_bytes` (the tensor arena: `arena_head_bytes` + `arena_tail_bytes`)
    and `flash_bytes` (`model_bytes` + `code_bytes`)."""

    arena_head_bytes: int
    arena_tail_bytes: int
    model_bytes: int
    code_bytes: int
    operators: tuple[str, ...]

    @property
    def sram_bytes(self) -> int:
        return self.arena_head_bytes + self.arena_tail_bytes

    @property
    def flash_bytes(self) -> int:
        return self.model_bytes + self.code_bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "sram_bytes": self.sram_bytes,
            "flash_bytes": self.flash_bytes,
            "arena_head_bytes": self.arena_head_bytes,
            "arena_tail_bytes": self.arena_tail_bytes,
            "model_bytes": self.model_bytes,
            "code_bytes": self.code_bytes,
            "operators": list(self.operators),
        }


def code_bytes(operators: Iterable[str], table: Mapping[str, Any] | None = None) -> int:
    """The runtime code a program registering `operators` links: the base, every shared group
    one of them pulls in (once), each one's own bytes, and the op resolver's code for several
    operators. ValueError for an operator the table lacks."""
    code = CODE_TABLE if table is None else table
    used = set(operators)
    missing = sorted(used - set(code["own"]))
    if missing:
        raise ValueError(f"no code size known for {', '.join(missing)}")
    shared = sum(size for users, size in code["shared"] if used & set(users))
    several = int(code.get("several", 0)) if len(used) > 1 else 0
    return int(code["base"]) + shared + sum(int(code["own"][op]) for op in used) + several


def file_memory(path: Path, kernels: str = "dsp") -> McuMemory:
    """A .tflite file's predicted arena (exact, for the `kernels` build) and flash."""
    arena = predict_arena(path, kernels)
    operators = tuple(file_operators(path))
    size = Path(path).stat().st_size
    return McuMemory(
        arena.head_bytes, arena.tail_bytes, _aligned(size), code_bytes(operators), operators
    )


def file_operators(path: Path) -> list[str]:
    """The builtin operators the file uses, each once, in order of first use."""
    model = read_model(path)
    used = [operator_name(model, op) for op in model.subgraphs[0].operators]
    return list(dict.fromkeys(used))


def entry_memory(path: Path, kernels: str = "dsp") -> dict[str, Any]:
    """What an MCU LUT entry records of its micro-model, for `compose`: the arena's head and
    tail with the `kernels` build, and the operators; nothing where the arena model does not
    cover the file."""
    try:
        arena = predict_arena(path, kernels)
    except ValueError:
        return {}
    return {
        "arena_head_bytes": arena.head_bytes,
        "arena_tail_bytes": arena.tail_bytes,
        "operators": file_operators(path),
    }


def compose(extras: Iterable[Mapping[str, Any]]) -> McuMemory:
    """An architecture's memory from its ops' LUT entries (`extra` of each non-identity op):
    head = the largest op head, tail = Σ op tails (each op's tail also holds the allocator's
    own objects, so the sum exceeds the network's), model = Σ op files, code = the union of
    their operators. ValueError if an entry predates these fields."""
    extras = list(extras)
    for extra in extras:
        if "arena_head_bytes" not in extra:
            raise ValueError(
                "the LUT's entries hold no arena prediction (profiled before it was recorded, or "
                "an operator the arena model does not cover): measure them again with "
                "`hwnas profile --backend mcu --force`"
            )
    operators = tuple(dict.fromkeys(op for e in extras for op in e["operators"]))
    return McuMemory(
        max((int(e["arena_head_bytes"]) for e in extras), default=0),
        sum(int(e["arena_tail_bytes"]) for e in extras),
        sum(_aligned(int(e["model_bytes"])) for e in extras),
        code_bytes(operators),
        operators,
    )


def _aligned(size: int) -> int:
    return -(-size // MODEL_ALIGNMENT) * MODEL_ALIGNMENT
