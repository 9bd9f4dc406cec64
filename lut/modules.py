"""Torch modules for OpSpecs: the OpSpec contract's other half. The same `build_op` builds LUT
micro-models (profilers), supernets and child networks (search, deploy), so the profiled
operation and the deployed one are the same graph. Only those who build import it; the rest of
`lut` stays importable without torch."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn as nn

from lut.opspec import OpSpec, make_divisible


def activation_layer(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    if name == "none":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


def _se_channels(channels: int) -> int:
    return make_divisible(channels / 4)


class ConvBNAct(nn.Sequential):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        activation: str = "relu",
    ) -> None:
        super().__init__(
            nn.Conv2d(
                in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
            ),
            nn.BatchNorm2d(out_channels),
            activation_layer(activation),
        )


class SqueezeExcite(nn.Module):
    def __init__(self, channels: int, *, squeezed: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, squeezed, 1)
        self.act = nn.ReLU(inplace=True)
        self.expand = nn.Conv2d(squeezed, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = x.mean((2, 3), keepdim=True)  # not adaptive_avg_pool2d: see GlobalPool
        scale = self.gate(self.expand(self.act(self.reduce(squeezed))))
        return x * scale


class ChannelShuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.reshape(n, self.groups, c // self.groups, h, w).transpose(1, 2)
        return x.reshape(n, c, h, w)


class InvertedResidual(nn.Module):
    """MBConv: [1x1 expand (grouped) → shuffle] → kxk depthwise → [SE] → 1x1 project (grouped)."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        kernel: int,
        stride: int,
        mid_channels: int,
        groups: int = 1,
        se: bool = False,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if mid_channels != in_channels or groups > 1:
            layers.append(
                ConvBNAct(in_channels, mid_channels, kernel=1, groups=groups, activation=activation)
            )
            if groups > 1:
                layers.append(ChannelShuffle(groups))
        layers.append(
            ConvBNAct(
                mid_channels,
                mid_channels,
                kernel=kernel,
                stride=stride,
                groups=mid_channels,
                activation=activation,
            )
        )
        if se:
            layers.append(SqueezeExcite(mid_channels, squeezed=_se_channels(mid_channels)))
        layers.append(
            ConvBNAct(mid_channels, out_channels, kernel=1, groups=groups, activation="none")
        )
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.use_residual else out


class GlobalPool(nn.Module):
    """A mean over H and W. Written as `mean`, not `adaptive_avg_pool2d(x, 1)`: both ONNX
    exporters then emit the same ReduceMean (the TorchScript one, which times micro-models,
    turns the pool into GlobalAveragePool and the dynamo one, which exports networks, does not);
    litert-torch lowers both forms to the same MEAN."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3))


class AddConstant(nn.Module):
    """The per-call overhead probe: one elementwise op. The bias is non-zero, or converters fold
    `x + 0` away and the probe measures an empty model."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.full((1, channels, 1, 1), 0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


def build_op(spec: OpSpec) -> nn.Module:
    """The module of one OpSpec, in eval mode. Deterministic in the spec (weights aside)."""
    module = _build(spec)
    return module.eval()


def _build(spec: OpSpec) -> nn.Module:
    if spec.op == "conv":
        return ConvBNAct(
            spec.in_channels,
            spec.out_channels,
            kernel=spec.kernel,
            stride=spec.stride,
            groups=spec.groups,
            activation=spec.activation,
        )
    if spec.op == "mbconv":
        return InvertedResidual(
            spec.in_channels,
            spec.out_channels,
            kernel=spec.kernel,
            stride=spec.stride,
            mid_channels=spec.mid_channels,
            groups=spec.groups,
            se=spec.se,
            activation=spec.activation,
        )
    if spec.op == "skip":
        if spec.is_identity:
            return nn.Identity()
        return ConvBNAct(
            spec.in_channels, spec.out_channels, kernel=1, stride=spec.stride, activation="none"
        )
    if spec.op == "pool":
        return GlobalPool()
    if spec.op == "linear":
        return nn.Linear(spec.in_channels, spec.out_channels)
    if spec.op == "add":
        return AddConstant(spec.in_channels)
    raise ValueError(f"no module for op type {spec.op!r}")


def build_network(specs: Sequence[OpSpec]) -> nn.Sequential:
    check_chain(specs)
    return nn.Sequential(*(build_op(spec) for spec in specs)).eval()


def check_chain(specs: Sequence[OpSpec]) -> None:
    """Each op's input shape must be the previous op's output shape."""
    for prev, spec in itertools.pairwise(specs):
        if prev.output_shape != spec.input_shape:
            raise ValueError(
                f"ops do not chain: {prev.short()} gives {prev.output_shape}, "
                f"{spec.short()} takes {spec.input_shape}"
            )


def example_input(spec: OpSpec, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(spec.input_shape, generator=generator)
