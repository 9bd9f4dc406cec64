"""Memory a deployed file needs. For TFLite: the tensor arena planned from tensor lifetimes (the
SRAM a microcontroller running TFLite Micro needs for activations) and the flash (the file); for
an int8 file, also TFLite Micro's whole arena and a project's flash on a Cortex-M4."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.quiet import silenced


@dataclass(frozen=True)
class Buffer:
    tensor: int
    size: int
    first: int  # index of the op that writes it (-1: a model input)
    last: int  # index of the last op that reads it (len(ops): a model output)

    def overlaps(self, other: Buffer) -> bool:
        return self.first <= other.last and other.first <= self.last


def tflite_memory(path: Path) -> dict[str, Any]:
    """`arena_live_peak_bytes`: the most bytes of non-constant tensors alive during any op (a
    lower bound of any arena); `arena_greedy_bytes`: the arena TFLite Micro's greedy planner
    (largest buffer first, lowest offset that fits) lays out; `flash_bytes`: the file size."""
    buffers, op_count = tensor_lifetimes(path)
    return {
        "arena_live_peak_bytes": live_peak(buffers, op_count),
        "arena_greedy_bytes": greedy_arena(buffers),
        "flash_bytes": path.stat().st_size,
        "ops": op_count,
        "method": "tensor lifetimes of the interpreter's execution plan (no delegate)",
        **tflm_memory(path),
    }


def tflm_memory(path: Path) -> dict[str, Any]:
    """On a Cortex-M4 running TFLite Micro with CMSIS-NN: the tensor arena it allocates
    (`tflm_arena_bytes`, exact) and the flash of a project registering the model's operators
    (`tflm_flash_bytes`), predicted by `deploy.mcu_memory`; nothing for a model it does not
    cover (a float network, an operator it does not know)."""
    from deploy.mcu_memory import file_memory

    try:
        memory = file_memory(path)
    except ValueError:
        return {}
    return {"tflm_arena_bytes": memory.sram_bytes, "tflm_flash_bytes": memory.flash_bytes}


def tensor_lifetimes(path: Path) -> tuple[list[Buffer], int]:
    """Every tensor that is a model input or an op's output, with its byte size and lifetime in
    the plan without delegates (so every op is listed, as TFLite Micro runs them)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with silenced():
        interpreter = Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    first: dict[int, int] = {d["index"]: -1 for d in interpreter.get_input_details()}
    last: dict[int, int] = {}
    for position, op in enumerate(ops):
        for tensor in op["outputs"]:
            first.setdefault(int(tensor), position)
        for tensor in op["inputs"]:
            last[int(tensor)] = position
    for output in interpreter.get_output_details():
        last[output["index"]] = len(ops)
    buffers = [
        Buffer(index, _bytes(details[index]), start, last.get(index, start))
        for index, start in first.items()
    ]
    return buffers, len(ops)


def tflite_operators(path: Path) -> list[str]:
    """The builtin operators a .tflite file uses (CONV_2D, ADD, ...), each once, in order."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with silenced():
        interpreter = Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    return list(dict.fromkeys(str(op["op_name"]) for op in interpreter._get_ops_details()))


def live_peak(buffers: list[Buffer], op_count: int) -> int:
    return max(
        (sum(b.size for b in buffers if b.first <= step <= b.last) for step in range(op_count)),
        default=0,
    )


def greedy_arena(buffers: list[Buffer]) -> int:
    """Greedy by size: each buffer, largest first, at the lowest offset where it clashes with no
    placed buffer that is alive at the same time."""
    placed: list[tuple[int, Buffer]] = []
    end = 0
    for buffer in sorted(buffers, key=lambda b: (-b.size, b.first)):
        offset = 0
        clashes = sorted(((o, b) for o, b in placed if b.overlaps(buffer)), key=lambda ob: ob[0])
        for other_offset, other in clashes:
            if offset + buffer.size <= other_offset:
                break
            offset = max(offset, other_offset + other.size)
        placed.append((offset, buffer))
        end = max(end, offset + buffer.size)
    return end


def _bytes(detail: dict[str, Any]) -> int:
    return int(np.prod(detail["shape"], dtype=np.int64)) * np.dtype(detail["dtype"]).itemsize
