"""What each TFLite Micro kernel (CMSIS-NN, GCC) takes from the tensor arena while the interpreter
allocates a model: its parsed builtin options and operator data (persistent, the arena's tail)
and its scratch buffers (planned with the tensors, the arena's head). Two kernel sets: `dsp`,
the build for a DSP Cortex-M such as the M4 or M7, and `mve`, the build with Helium (M55), whose
convolutions ask for other buffers (CMSIS-NN's `*_get_buffer_size_mve`). Sizes are those of TFLM
90b983c's structs on 32-bit Arm with GCC's short enums, read from the compiler
(`sizeof`/`alignof` of each struct)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

ARENA_ALIGNMENT = 16  # MicroArenaBufferAlignment(): OpData, per-channel arrays, planned buffers

# Builtin options each parser allocates: (sizeof, alignof) of the TfLite*Params struct.
BUILTIN_PARAMS: dict[str, tuple[int, int]] = {
    "CONV_2D": (28, 4),
    "DEPTHWISE_CONV_2D": (28, 4),
    "ADD": (2, 1),
    "FULLY_CONNECTED": (5, 1),
    "MEAN": (1, 1),
    "SUM": (1, 1),
    "AVERAGE_POOL_2D": (40, 4),
    "MAX_POOL_2D": (40, 4),
    "RESHAPE": (36, 4),
}
# The operator data each kernel's Init() asks for (always 16-byte aligned); none: no Init().
OP_DATA_BYTES: dict[str, int] = {
    "CONV_2D": 60,
    "DEPTHWISE_CONV_2D": 60,
    "FULLY_CONNECTED": 72,
    "ADD": 60,
    "QUANTIZE": 32,
    "DEQUANTIZE": 32,
    "PAD": 56,
    "MEAN": 44,
    "SUM": 44,
    "AVERAGE_POOL_2D": 36,
    "MAX_POOL_2D": 36,
    "TRANSPOSE": 0,
    "RESHAPE": 0,
}
INT8 = 9  # TensorType.INT8 in the TFLite schema
PADDING_SAME = 0
KERNEL_SETS = ("dsp", "mve")
CH_IN_BLOCK_MVE = 124  # CMSIS-NN's channel block of the MVE depthwise kernel
MVE_LANES = 16  # int8 elements in one MVE Q register


@dataclass
class KernelNeeds:
    """One operator's arena needs in the order its kernel asks: persistent buffers from Prepare()
    (bytes; 16-byte aligned) and scratch requests (bytes)."""

    persistent: list[int] = field(default_factory=list)
    scratch: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class OpView:
    """An operator as the kernels see it: its name, builtin options, and its tensors."""

    name: str
    options: Any
    inputs: list[Any]
    outputs: list[Any]


def covered_ops() -> list[str]:
    return sorted(OP_DATA_BYTES)


def check_kernels(kernels: str) -> str:
    if kernels not in KERNEL_SETS:
        raise ValueError(f"unknown kernel set {kernels!r}; valid: {', '.join(KERNEL_SETS)}")
    return kernels


def kernel_needs(op: OpView, kernels: str = "dsp") -> KernelNeeds:
    """Prepare()'s persistent buffers and scratch requests of `op` with the `kernels` build
    (ValueError for an operator the model does not cover)."""
    if op.name not in OP_DATA_BYTES:
        raise ValueError(
            f"the TFLM arena model does not cover {op.name}; it covers {', '.join(covered_ops())}"
        )
    rules = MVE_RULES if check_kernels(kernels) == "mve" else PREPARE_RULES
    rule = rules.get(op.name) or PREPARE_RULES.get(op.name)
    return rule(op) if rule else KernelNeeds()


def _align4(value: int) -> int:
    return (value + 3) // 4 * 4


def _conv_padding(op: OpView, kernel_h: int, kernel_w: int) -> tuple[int, int]:
    """TFLM's padding (ComputePaddingHeightWidth): zero for VALID, half the total for SAME."""
    if op.options.padding != PADDING_SAME:
        return 0, 0
    _, in_h, in_w, _ = _shape(op.inputs[0])
    _, out_h, out_w, _ = _shape(op.outputs[0])
    pads = []
    for size, out, kernel, stride, dilation in (
        (in_h, out_h, kernel_h, op.options.strideH, op.options.dilationHFactor),
        (in_w, out_w, kernel_w, op.options.strideW, op.options.dilationWFactor),
    ):
        effective = (kernel - 1) * dilation + 1
        pads.append(max((out - 1) * stride + effective - size, 0) // 2)
    return pads[0], pads[1]


def _conv(op: OpView) -> KernelNeeds:
    """Per-channel multiplier and shift; CMSIS-NN's im2col buffer unless the conv is 1x1."""
    out_channels, kernel_h, kernel_w, filter_c = _shape(op.inputs[1])
    _require_int8(op)
    needs = KernelNeeds(persistent=[4 * out_channels, 4 * out_channels])
    pad_h, pad_w = _conv_padding(op, kernel_h, kernel_w)
    in_c = _shape(op.inputs[0])[3]
    dilated = op.options.dilationHFactor != 1 or op.options.dilationWFactor != 1
    is_1x1 = (kernel_h, kernel_w, pad_h, pad_w) == (1, 1, 0, 0) and not dilated and in_c == filter_c
    if not is_1x1:
        needs.scratch.append(2 * _align4(kernel_h * kernel_w * in_c) * 2)
    return needs


def _depthwise(op: OpView) -> KernelNeeds:
    """Per-channel multiplier and shift; CMSIS-NN's buffer unless the 3x3 (padding <= 1) path."""
    _, kernel_h, kernel_w, channels = _shape(op.inputs[1])
    _require_int8(op)
    needs = KernelNeeds(persistent=[4 * channels, 4 * channels])
    pad_h, pad_w = _conv_padding(op, kernel_h, kernel_w)
    in_c = _shape(op.inputs[0])[3]
    plain = (
        in_c == channels
        and _shape(op.inputs[0])[0] == 1
        and op.options.dilationHFactor == 1
        and op.options.dilationWFactor == 1
    )
    if plain and not (kernel_h == kernel_w == 3 and pad_h <= 1 and pad_w <= 1):
        needs.scratch.append(in_c * kernel_h * kernel_w * 2)
    return needs


def _fully_connected(op: OpView) -> KernelNeeds:
    """Per-channel arrays for per-channel weights; a requantisation scratch buffer when CMSIS-NN
    may run it as a 1x1 conv (output rank > 2) with per-tensor weights."""
    _require_int8(op)
    quantization = op.inputs[1].quantization
    scales = 0 if quantization is None or quantization.scale is None else len(quantization.scale)
    per_channel = scales > 1
    needs = KernelNeeds(persistent=[4 * scales] * 2 if per_channel else [])
    accum_depth = _shape(op.inputs[1])[-1]
    output_shape = _shape(op.outputs[0])
    if len(output_shape) > 2 and accum_depth % 4 == 0 and not per_channel:
        needs.scratch.append(output_shape[-1] * 4 * 2)
    return needs


def _mean(op: OpView) -> KernelNeeds:
    """int8: an int32 accumulator per output element; then the input iterator and the axes."""
    axes = _elements(op.inputs[1].shape)
    scratch = []
    if op.inputs[0].type == INT8:
        scratch.append(4 * _elements(op.outputs[0].shape))
    scratch += [4 * len(_shape(op.inputs[0])), 4 * axes]
    return KernelNeeds(scratch=scratch)


def _average_pool(op: OpView) -> KernelNeeds:
    """CMSIS-NN's int8 average pool: an int32 sum per channel."""
    if op.inputs[0].type != INT8:
        return KernelNeeds()
    return KernelNeeds(scratch=[4 * _shape(op.outputs[0])[3]])


def _require_int8(op: OpView) -> None:
    """The arena model follows the int8 paths of the convolutions and fully connected layers."""
    if op.inputs[0].type != INT8:
        raise ValueError(
            f"the TFLM arena model covers int8 {op.name}, not type {op.inputs[0].type}"
        )


def _shape(tensor: Any) -> list[int]:
    return [int(d) for d in tensor.shape] if tensor.shape is not None else []


def _elements(shape: Any) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


PREPARE_RULES: dict[str, Callable[[OpView], KernelNeeds]] = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "MEAN": _mean,
    "SUM": _mean,
    "AVERAGE_POOL_2D": _average_pool,
}


def _conv_mve(op: OpView) -> KernelNeeds:
    """The DSP rule's arrays; MVE's im2col: 4 buffers of the column rounded to whole Q registers
    (none for a 1x1 conv)."""
    needs = _conv(op)
    _, kernel_h, kernel_w, _ = _shape(op.inputs[1])
    if needs.scratch:
        in_h = _shape(op.inputs[0])[1]
        if in_h == 1 and kernel_h == 1:
            raise ValueError("the TFLM arena model covers no 1xN convolution on MVE")
        needs.scratch = [_mve_im2col(kernel_h * kernel_w * _shape(op.inputs[0])[3])]
    return needs


def _mve_im2col(column: int) -> int:
    return 4 * (-(-column // MVE_LANES) * MVE_LANES)


def _depthwise_mve(op: OpView) -> KernelNeeds:
    """Per-channel arrays; MVE's buffer of 4 channel blocks on every plain depthwise conv (no
    scratch-free 3x3 path); one input channel into several runs as a convolution."""
    _, kernel_h, kernel_w, channels = _shape(op.inputs[1])
    _require_int8(op)
    needs = KernelNeeds(persistent=[4 * channels, 4 * channels])
    in_n, _, _, in_c = _shape(op.inputs[0])
    out_c = _shape(op.outputs[0])[3]
    if in_c == 1 and out_c > 1:
        pad_h, pad_w = _conv_padding(op, kernel_h, kernel_w)
        pointwise = (kernel_h, kernel_w, pad_h, pad_w) == (1, 1, 0, 0)
        im2col = 0 if pointwise else _mve_im2col(kernel_h * kernel_w)
        needs.scratch.append(im2col + kernel_h * kernel_w * channels)
        return needs
    plain = (
        in_c == out_c
        and in_n == 1
        and op.options.dilationHFactor == 1
        and op.options.dilationWFactor == 1
    )
    if plain:
        needs.scratch.append(4 * CH_IN_BLOCK_MVE * kernel_h * kernel_w)
    return needs


def _fully_connected_mve(op: OpView) -> KernelNeeds:
    """The DSP rule; where it runs as a fully connected layer (not a 1x1 conv), the kernel sums
    of its constant weights (an int32 per output) persist, built for speed as TFLM's default."""
    needs = _fully_connected(op)
    accum_depth = _shape(op.inputs[1])[-1]
    output_shape = _shape(op.outputs[0])
    if not (len(output_shape) > 2 and accum_depth % 4 == 0):
        needs.persistent.append(4 * _shape(op.inputs[1])[0])
    return needs


def _average_pool_mve(op: OpView) -> KernelNeeds:
    """MVE's int8 average pool needs no buffer."""
    return KernelNeeds()


MVE_RULES: dict[str, Callable[[OpView], KernelNeeds]] = {
    "CONV_2D": _conv_mve,
    "DEPTHWISE_CONV_2D": _depthwise_mve,
    "FULLY_CONNECTED": _fully_connected_mve,
    "AVERAGE_POOL_2D": _average_pool_mve,
}
