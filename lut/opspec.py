"""OpSpec: the canonical, hashable key of one operation whose cost a LUT stores.

Two specs with the same hash build the same module (see `lut.modules.build_op`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

OP_TYPES = ("conv", "mbconv", "skip", "pool", "linear", "add")
ACTIVATIONS = ("relu", "hswish", "none")
DTYPES = ("fp32", "int8")
OPSPEC_VERSION = 1


@dataclass(frozen=True, order=True)
class OpSpec:
    """One operation at one input shape.

    `op` decides which other fields matter:
    - `conv`: k×k convolution + BN + activation (stem and head layers);
    - `mbconv`: inverted residual (1×1 expand, k×k depthwise, optional SE, 1×1 project; the 1×1
      convs use `groups`); residual when stride 1 and in == out; expansion 1 drops the expand conv;
    - `skip`: identity when stride 1 and in == out, else a 1×1 conv + BN with that stride;
    - `pool`: global average pool to (batch, C);
    - `linear`: fully connected layer on a (batch, C) input;
    - `add`: the empty-work probe used to measure a runtime's per-call overhead.
    """

    op: str
    in_channels: int
    out_channels: int
    height: int = 1
    width: int = 1
    batch: int = 1
    kernel: int = 1
    stride: int = 1
    expansion: float = 1.0
    groups: int = 1
    activation: str = "relu"
    se: bool = False
    dtype: str = "fp32"

    def __post_init__(self) -> None:
        if self.op not in OP_TYPES:
            raise ValueError(f"unknown op type {self.op!r}; valid: {', '.join(OP_TYPES)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"unknown activation {self.activation!r}; valid: {', '.join(ACTIVATIONS)}"
            )
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; valid: {', '.join(DTYPES)}")
        for name in ("in_channels", "out_channels", "height", "width", "batch", "kernel", "stride"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"OpSpec.{name} must be >= 1, got {getattr(self, name)}")
        if self.expansion <= 0:
            raise ValueError(f"OpSpec.expansion must be > 0, got {self.expansion}")
        if self.groups < 1 or self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"OpSpec.groups={self.groups} must divide in_channels={self.in_channels} "
                f"and out_channels={self.out_channels}"
            )
        # Canonical numeric types, so equal specs hash equally whatever the caller passed.
        object.__setattr__(self, "expansion", float(self.expansion))

    @property
    def mid_channels(self) -> int:
        """Channels after the expand conv of an `mbconv`, divisible by `groups`."""
        mid = max(1, round(self.in_channels * self.expansion))
        return mid - mid % self.groups if mid >= self.groups else self.groups

    @property
    def is_identity(self) -> bool:
        return self.op == "skip" and self.stride == 1 and self.in_channels == self.out_channels

    @property
    def has_residual(self) -> bool:
        return self.op == "mbconv" and self.stride == 1 and self.in_channels == self.out_channels

    @property
    def input_shape(self) -> tuple[int, ...]:
        """NCHW input shape (N, C) for `linear`."""
        if self.op == "linear":
            return (self.batch, self.in_channels)
        return (self.batch, self.in_channels, self.height, self.width)

    @property
    def output_shape(self) -> tuple[int, ...]:
        if self.op in ("linear", "pool"):
            return (self.batch, self.out_channels)
        if self.op == "add":
            return self.input_shape
        h = (self.height + self.stride - 1) // self.stride
        w = (self.width + self.stride - 1) // self.stride
        return (self.batch, self.out_channels, h, w)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def canonical_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @property
    def key(self) -> str:
        """Stable content hash (hex, 20 chars): the LUT's primary key for this op."""
        digest = hashlib.sha256(f"v{OPSPEC_VERSION}:{self.canonical_json()}".encode())
        return digest.hexdigest()[:20]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OpSpec:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - fields
        if unknown:
            raise ValueError(f"unknown OpSpec field(s): {', '.join(sorted(unknown))}")
        if "op" not in data or "in_channels" not in data or "out_channels" not in data:
            raise ValueError("an OpSpec needs at least op, in_channels and out_channels")
        return cls(**data)

    def short(self) -> str:
        """A human-readable one-liner for tables and progress bars."""
        shape = f"{self.in_channels}x{self.height}x{self.width}"
        if self.op == "mbconv":
            extra = f" k{self.kernel} e{self.expansion:g} s{self.stride}"
            extra += f" g{self.groups}" if self.groups > 1 else ""
            extra += " se" if self.se else ""
        elif self.op in ("conv", "skip"):
            extra = f" k{self.kernel} s{self.stride}"
        else:
            extra = ""
        act = f" {self.activation}" if self.op in ("conv", "mbconv") else ""
        return f"{self.op}{extra}{act} {shape}->{self.out_channels}"


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round channels to a multiple of `divisor`, never more than 10% below `value` (MobileNet)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def with_dtype(spec: OpSpec, dtype: str | None) -> OpSpec:
    """`spec` as a LUT of `dtype` keys it (None: as it is). An int8 device (the mcu backend)
    stores int8 specs, so its entries never share a key with an fp32 LUT's, while search asks
    every LUT with the space's specs."""
    if dtype is None or spec.dtype == dtype:
        return spec
    return dataclasses.replace(spec, dtype=dtype)
