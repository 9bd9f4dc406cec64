"""Multiply-accumulates and parameter counts of OpSpecs and architectures (no torch needed)."""

from __future__ import annotations

from collections.abc import Sequence

from lut.opspec import OpSpec


def _out_hw(spec: OpSpec) -> int:
    _, _, h, w = spec.output_shape
    return h * w


def macs(spec: OpSpec) -> int:
    """Multiply-accumulates of one op (batch 1); BN is folded and elementwise ops are free."""
    from lut.opspec import make_divisible

    hw_in = spec.height * spec.width
    if spec.op == "conv":
        return spec.kernel**2 * spec.in_channels // spec.groups * spec.out_channels * _out_hw(spec)
    if spec.op == "skip":
        return 0 if spec.is_identity else spec.in_channels * spec.out_channels * _out_hw(spec)
    if spec.op == "linear":
        return spec.in_channels * spec.out_channels
    if spec.op == "mbconv":
        mid, hw_out = spec.mid_channels, _out_hw(spec)
        total = 0
        if mid != spec.in_channels or spec.groups > 1:
            total += spec.in_channels * mid // spec.groups * hw_in
        total += spec.kernel**2 * mid * hw_out
        if spec.se:
            total += 2 * mid * make_divisible(mid / 4)
        total += mid * spec.out_channels // spec.groups * hw_out
        return total
    return 0


def total_macs(specs: Sequence[OpSpec]) -> int:
    return sum(macs(s) for s in specs)
