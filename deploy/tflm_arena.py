"""The tensor arena TFLite Micro's `MicroInterpreter::AllocateTensors()` uses for a .tflite model,
predicted byte for byte: the tail (persistent: the allocator's own objects, the tensor and node
structs, parsed options, each kernel's operator data and per-channel arrays, the input and output
tensors) replayed allocation by allocation with TFLM's alignment rules, plus the head (the greedy
memory planner's layout of the activations and the kernels' scratch buffers)."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy.tflm_kernels import (
    ARENA_ALIGNMENT,
    BUILTIN_PARAMS,
    OP_DATA_BYTES,
    OpView,
    kernel_needs,
)

# (sizeof, alignof) of the structs the allocator and interpreter place in the tail.
SINGLE_ARENA_ALLOCATOR = (36, 4)
GREEDY_PLANNER = (44, 4)
MICRO_ALLOCATOR = (36, 4)
BUILTIN_DATA_ALLOCATOR = (8, 4)
SUBGRAPH_ALLOCATIONS = (8, 4)
EVAL_TENSOR = (12, 4)
NODE_AND_REGISTRATION = (32, 4)
SCRATCH_HANDLE = (4, 4)
TF_LITE_TENSOR = (32, 4)
AFFINE_QUANTIZATION = (12, 4)
INT_ARRAY_ALIGN = 4
TYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 9: 1, 10: 8, 16: 4}  # TensorType -> bytes


@dataclass(frozen=True)
class PlannedBuffer:
    """A buffer the greedy planner places: its 16-byte-aligned size and its first and last
    allocation scope (0: the model's inputs; operator i: scope i + 1)."""

    size: int
    first: int
    last: int
    what: str


@dataclass
class ArenaPrediction:
    """`arena_bytes` = `tail_bytes` (persistent) + `head_bytes` (the planned activations and
    scratch); `buffers` is what the planner placed."""

    tail_bytes: int
    head_bytes: int
    buffers: list[PlannedBuffer] = field(default_factory=list)

    @property
    def arena_bytes(self) -> int:
        return self.tail_bytes + self.head_bytes


class Tail:
    """The arena's persistent section, growing down from the arena's (aligned) end: each buffer
    ends at the highest address below the previous one that its alignment allows."""

    def __init__(self) -> None:
        self.used = 0

    def allocate(self, size: int, alignment: int = ARENA_ALIGNMENT) -> None:
        self.used = -(-(self.used + size) // alignment) * alignment


def read_model(path: Path) -> Any:
    """The .tflite file as the TFLite schema's object tree."""
    from ai_edge_litert import schema_py_generated as schema

    return schema.ModelT.InitFromPackedBuf(Path(path).read_bytes(), 0)


def predict_arena(path: Path, kernels: str = "dsp") -> ArenaPrediction:
    """The arena `arena_used_bytes()` reports after `AllocateTensors()` for the model at `path`
    with the `kernels` build (`deploy.tflm_kernels`: dsp, mve) (one subgraph, no offline plan);
    ValueError for a model or operator it does not cover."""
    model = read_model(path)
    if len(model.subgraphs) != 1:
        raise ValueError(f"the arena model covers one subgraph, not {len(model.subgraphs)}")
    graph = model.subgraphs[0]
    ops = [_op_view(model, graph, op) for op in graph.operators]
    needs = [kernel_needs(op, kernels) for op in ops]
    tail = Tail()
    _allocator_objects(tail, graph, len(ops))
    for op in ops:
        if op.name in BUILTIN_PARAMS:
            tail.allocate(*BUILTIN_PARAMS[op.name])
    for op in ops:
        if OP_DATA_BYTES[op.name]:
            tail.allocate(OP_DATA_BYTES[op.name])
    for need in needs:
        for size in need.persistent:
            tail.allocate(size)
    scratch = [(index, size) for index, need in enumerate(needs) for size in need.scratch]
    if scratch:
        tail.allocate(SCRATCH_HANDLE[0] * len(scratch), SCRATCH_HANDLE[1])
    for indices in (graph.inputs, graph.outputs):
        _interface_tensors(tail, graph, list(indices))
    buffers = planned_buffers(model, graph, scratch)
    return ArenaPrediction(tail.used, greedy_plan_bytes(buffers), buffers)


def _allocator_objects(tail: Tail, graph: Any, op_count: int) -> None:
    """MicroAllocator::Create and StartModelAllocation, in their order."""
    for size, alignment in (SINGLE_ARENA_ALLOCATOR, GREEDY_PLANNER, MICRO_ALLOCATOR):
        tail.allocate(size, alignment)
    tail.allocate(*BUILTIN_DATA_ALLOCATOR)
    tail.allocate(*SUBGRAPH_ALLOCATIONS)
    tail.allocate(EVAL_TENSOR[0] * len(graph.tensors), EVAL_TENSOR[1])
    tail.allocate(NODE_AND_REGISTRATION[0] * op_count, NODE_AND_REGISTRATION[1])


def _interface_tensors(tail: Tail, graph: Any, indices: list[int]) -> None:
    """The interpreter's input (or output) pointer array and a persistent TfLiteTensor each,
    with its quantisation (a zero point per scale) when it has any."""
    tail.allocate(4 * len(indices))
    for index in indices:
        tail.allocate(*TF_LITE_TENSOR)
        quantization = graph.tensors[index].quantization
        scales = _quantization_size(quantization)
        if scales:
            tail.allocate(*AFFINE_QUANTIZATION)
            tail.allocate(4 + 4 * scales, INT_ARRAY_ALIGN)


def _quantization_size(quantization: Any) -> int:
    if quantization is None or quantization.scale is None or quantization.zeroPoint is None:
        return 0
    if len(quantization.scale) == 0 or len(quantization.zeroPoint) == 0:
        return 0
    return len(quantization.scale)


def planned_buffers(model: Any, graph: Any, scratch: list[tuple[int, int]]) -> list[PlannedBuffer]:
    """Every tensor the arena holds (no constant data, not a variable, not empty) with its
    lifetime, then every scratch buffer (alive during its operator), in TFLM's order."""
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for tensor in graph.inputs:
        first.setdefault(int(tensor), 0)
        last[int(tensor)] = 0
    for position, op in enumerate(graph.operators):
        scope = position + 1
        for tensor in op.outputs:
            first.setdefault(int(tensor), scope)
        for tensor in list(op.inputs) + list(op.outputs):
            if tensor >= 0:
                last[int(tensor)] = scope
    end = len(graph.operators)
    for tensor in graph.outputs:
        first.setdefault(int(tensor), end)
        last[int(tensor)] = end
    buffers = []
    for index, tensor in enumerate(graph.tensors):
        size = tensor_bytes(tensor)
        if size and not tensor.isVariable and not _has_data(model, tensor):
            buffers.append(
                PlannedBuffer(
                    _aligned(size), first.get(index, -1), last.get(index, -1), f"tensor {index}"
                )
            )
    for op_index, size in scratch:
        buffers.append(
            PlannedBuffer(_aligned(size), op_index + 1, op_index + 1, f"scratch op {op_index}")
        )
    return buffers


def greedy_plan_bytes(buffers: list[PlannedBuffer]) -> int:
    """The arena TFLM's GreedyMemoryPlanner lays out: buffers largest first (equal sizes: the
    later-added first), each at the lowest offset where it fits between the buffers already
    placed that are alive at the same time, walked in offset order."""
    order = sorted(range(len(buffers)), key=lambda i: (-buffers[i].size, -i))
    placed: list[tuple[int, PlannedBuffer]] = []  # by offset; equal offsets in placing order
    for index in order:
        wanted = buffers[index]
        offset = 0
        for other_offset, other in placed:
            if other.first > wanted.last or wanted.first > other.last:
                continue
            if other_offset - offset >= wanted.size:
                break
            offset = max(offset, other_offset + other.size)
        position = sum(1 for o, _ in placed if o <= offset)
        placed.insert(position, (offset, wanted))
    return max((offset + b.size for offset, b in placed), default=0)


def tensor_bytes(tensor: Any) -> int:
    if tensor.type not in TYPE_BYTES:
        raise ValueError(f"the arena model does not know tensor type {tensor.type}")
    count = 1
    for dim in tensor.shape if tensor.shape is not None else []:
        count *= int(dim)
    return count * TYPE_BYTES[tensor.type]


def _has_data(model: Any, tensor: Any) -> bool:
    buffer = model.buffers[tensor.buffer] if tensor.buffer < len(model.buffers) else None
    if buffer is None:
        return False
    return (buffer.data is not None and len(buffer.data) > 0) or bool(buffer.size)


def _aligned(size: int) -> int:
    return -(-size // ARENA_ALIGNMENT) * ARENA_ALIGNMENT


def operator_name(model: Any, op: Any) -> str:
    """The builtin operator's name (CONV_2D, ...): the larger of the opcode's two code fields,
    as TFLite reads them."""
    code = model.operatorCodes[op.opcodeIndex]
    builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
    return _builtin_names().get(builtin, str(builtin))


@functools.cache
def _builtin_names() -> dict[int, str]:
    from ai_edge_litert import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def _op_view(model: Any, graph: Any, op: Any) -> OpView:
    tensors = graph.tensors
    return OpView(
        operator_name(model, op),
        op.builtinOptions,
        [tensors[i] if i >= 0 else None for i in op.inputs],
        [tensors[i] for i in op.outputs],
    )
