"""Search spaces as data: a macro skeleton (stem, stages, head) and per-layer candidates.

A `SearchSpace` is a `SpaceDef` bound to `SpaceParams` (resolution, width, channels, classes). It
lists its searchable layers, decodes an `Architecture` into the network's OpSpecs, lists its distinct
OpSpecs (what a LUT must hold), samples random architectures and builds torch modules.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lut.opspec import OpSpec, make_divisible
from search.spaces.grammar import (
    Choice,
    SpaceParams,
    parse_choice,
    parse_space_header,
    split_arch_string,
)

if TYPE_CHECKING:
    import torch.nn as nn


@dataclass(frozen=True)
class StageDef:
    channels: int
    repeats: int
    stride: int
    candidates: tuple[str, ...]
    activation: str = "relu"
    # Candidates of the stage's first block, which changes shape (None: same as `candidates`).
    first_candidates: tuple[str, ...] | None = None
    searchable: bool = True


@dataclass(frozen=True)
class SpaceDef:
    name: str
    description: str
    stem_channels: int
    stem_stride: int
    stages: tuple[StageDef, ...]
    head_channels: int
    defaults: SpaceParams
    stem_activation: str = "relu"
    head_activation: str = "relu"


@dataclass(frozen=True)
class LayerSlot:
    """One searchable layer: its label, input shape and candidate choices."""

    label: str
    in_channels: int
    out_channels: int
    height: int
    width: int
    stride: int
    activation: str
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class Architecture:
    """A searched network: space name + parameters + one CHOICE token per searchable layer."""

    space: str
    params: SpaceParams
    choices: tuple[str, ...]

    def to_string(self) -> str:
        header = self.params.to_header()
        head = f"{self.space}@{header}" if header else self.space
        return f"{head}:{'-'.join(self.choices)}"

    def __str__(self) -> str:
        return self.to_string()

    def to_json(self) -> dict[str, Any]:
        return {
            "arch": self.to_string(),
            "space": self.space,
            "resolution": self.params.resolution,
            "width_mult": self.params.width_mult,
            "in_channels": self.params.in_channels,
            "num_classes": self.params.num_classes,
            "choices": list(self.choices),
        }


class SearchSpace:
    """A `SpaceDef` bound to concrete parameters."""

    def __init__(self, definition: SpaceDef, params: SpaceParams | None = None) -> None:
        params = params or SpaceParams()
        d = definition.defaults
        self.definition = definition
        self.name = definition.name
        self.resolution = params.resolution if params.resolution is not None else d.resolution
        self.width_mult = params.width_mult if params.width_mult is not None else d.width_mult
        self.in_channels = params.in_channels if params.in_channels is not None else d.in_channels
        self.num_classes = params.num_classes if params.num_classes is not None else d.num_classes
        self._check_params()
        self._order = self._layout()
        self._slots = [item for item in self._order if isinstance(item, LayerSlot)]

    def _check_params(self) -> None:
        checks = [
            (self.resolution, 8, 1024, "resolution"),
            (self.width_mult, 0.1, 4.0, "width multiplier"),
            (self.in_channels, 1, 64, "input channels"),
            (self.num_classes, 2, 100000, "number of classes"),
        ]
        for value, low, high, what in checks:
            if value is None or not low <= value <= high:
                raise ValueError(f"{self.name}: {what} must be in [{low}, {high}], got {value}")

    @property
    def params(self) -> SpaceParams:
        return SpaceParams(self.resolution, self.width_mult, self.in_channels, self.num_classes)

    @property
    def spec_string(self) -> str:
        return f"{self.name}@{self.params.to_header()}"

    def _channels(self, base: int) -> int:
        return make_divisible(base * float(self.width_mult))  # type: ignore[arg-type]

    def _layout(self) -> list[LayerSlot | OpSpec]:
        """Walk the skeleton once: the blocks in network order, searchable slots or fixed specs."""
        d = self.definition
        res = int(self.resolution)  # type: ignore[arg-type]
        size = _conv_out(res, d.stem_stride)
        channels = self._channels(d.stem_channels)
        order: list[LayerSlot | OpSpec] = []
        for s_idx, stage in enumerate(d.stages, start=1):
            out = self._channels(stage.channels)
            for b_idx in range(stage.repeats):
                stride = stage.stride if b_idx == 0 else 1
                first = b_idx == 0 and stage.first_candidates is not None
                candidates = stage.first_candidates if first else stage.candidates
                slot = LayerSlot(
                    label=f"s{s_idx}_b{b_idx + 1}",
                    in_channels=channels,
                    out_channels=out,
                    height=size,
                    width=size,
                    stride=stride,
                    activation=stage.activation,
                    candidates=tuple(candidates or ()),
                )
                if stage.searchable:
                    order.append(slot)
                else:
                    order.append(self._choice_spec(slot, parse_choice(slot.candidates[0])))
                channels, size = out, _conv_out(size, stride)
        return order

    # -- public API ------------------------------------------------------------------------
    @property
    def layers(self) -> list[LayerSlot]:
        return list(self._slots)

    def _stem(self) -> OpSpec:
        d = self.definition
        res = int(self.resolution)  # type: ignore[arg-type]
        return OpSpec(
            op="conv",
            in_channels=int(self.in_channels),  # type: ignore[arg-type]
            out_channels=self._channels(d.stem_channels),
            height=res,
            width=res,
            kernel=3,
            stride=d.stem_stride,
            activation=d.stem_activation,
        )

    def _head(self, last: OpSpec) -> list[OpSpec]:
        d = self.definition
        _, channels, height, width = last.output_shape
        head_ch = make_divisible(d.head_channels * max(1.0, float(self.width_mult)))  # type: ignore[arg-type]
        conv = OpSpec(
            op="conv",
            in_channels=channels,
            out_channels=head_ch,
            height=height,
            width=width,
            kernel=1,
            activation=d.head_activation,
        )
        pool = OpSpec(
            op="pool", in_channels=head_ch, out_channels=head_ch, height=height, width=width
        )
        linear = OpSpec(
            op="linear",
            in_channels=head_ch,
            out_channels=int(self.num_classes),  # type: ignore[arg-type]
            activation="none",
        )
        return [conv, pool, linear]

    @staticmethod
    def _choice_spec(slot: LayerSlot, choice: Choice) -> OpSpec:
        common = dict(
            in_channels=slot.in_channels,
            out_channels=slot.out_channels,
            height=slot.height,
            width=slot.width,
            stride=slot.stride,
        )
        if choice.block == "skip":
            return OpSpec(op="skip", kernel=1, activation="none", **common)  # type: ignore[arg-type]
        return OpSpec(
            op="mbconv",
            kernel=choice.kernel,
            expansion=choice.expansion,
            groups=choice.groups,
            se=choice.se,
            activation=slot.activation,
            **common,  # type: ignore[arg-type]
        )

    def layer_specs(self, choices: Sequence[str]) -> list[OpSpec]:
        """OpSpecs of the searchable layers for these choices (validated)."""
        if len(choices) != len(self._slots):
            raise ValueError(
                f"{self.name} has {len(self._slots)} searchable layers, the architecture "
                f"gives {len(choices)} choices"
            )
        specs = []
        for slot, token in zip(self._slots, choices, strict=True):
            if token not in slot.candidates:
                raise ValueError(
                    f"{self.name} layer {slot.label}: {token!r} is not a candidate "
                    f"(valid: {', '.join(slot.candidates)})"
                )
            specs.append(self._choice_spec(slot, parse_choice(token)))
        return specs

    def decode(self, arch: Architecture) -> list[OpSpec]:
        """Every OpSpec of the whole network, in execution order (stem, blocks, head)."""
        self._check_arch(arch)
        return self._assemble(self.layer_specs(arch.choices))

    def _assemble(self, layer_specs: list[OpSpec]) -> list[OpSpec]:
        """Interleave fixed and searchable blocks in network order and add stem and head."""
        chosen = iter(layer_specs)
        body = [next(chosen) if isinstance(item, LayerSlot) else item for item in self._order]
        specs = [self._stem(), *body]
        return [*specs, *self._head(specs[-1])]

    def _check_arch(self, arch: Architecture) -> None:
        if arch.space != self.name:
            raise ValueError(f"architecture is of space {arch.space!r}, not {self.name!r}")
        bound = space_from_string(arch.space, arch.params)
        if bound.params != self.params:
            raise ValueError(
                f"architecture parameters {arch.params.to_header()} differ from the space's "
                f"{self.params.to_header()}"
            )

    def distinct_opspecs(self) -> list[OpSpec]:
        """Every OpSpec any architecture of this space can contain: what a full LUT holds."""
        specs: dict[str, OpSpec] = {self._stem().key: self._stem()}
        for item in self._order:
            if isinstance(item, OpSpec):
                specs[item.key] = item
                continue
            for token in item.candidates:
                spec = self._choice_spec(item, parse_choice(token))
                specs[spec.key] = spec
        for spec in self._head_for_any():
            specs[spec.key] = spec
        return list(specs.values())

    def candidate_specs(self) -> list[list[OpSpec]]:
        """Per searchable layer, the OpSpec of each candidate (in `slot.candidates` order)."""
        return [
            [self._choice_spec(slot, parse_choice(token)) for token in slot.candidates]
            for slot in self._slots
        ]

    def block_order(self) -> list[str]:
        """The body between stem and head: "slot" (searchable) or "fixed", in network order."""
        return ["slot" if isinstance(item, LayerSlot) else "fixed" for item in self._order]

    def fixed_specs(self) -> list[OpSpec]:
        """The ops every architecture has, in network order: stem, fixed blocks, head."""
        fixed = [item for item in self._order if isinstance(item, OpSpec)]
        return [self._stem(), *fixed, *self._head_for_any()]

    def _head_for_any(self) -> list[OpSpec]:
        # The head's input shape does not depend on the choices (every candidate keeps shape).
        first = [slot.candidates[0] for slot in self._slots]
        return self._assemble(self.layer_specs(first))[-3:]

    def architecture(self, choices: Sequence[str]) -> Architecture:
        arch = Architecture(self.name, self.params, tuple(choices))
        self.layer_specs(arch.choices)
        return arch

    def sample(self, rng: random.Random) -> Architecture:
        return self.architecture([rng.choice(slot.candidates) for slot in self._slots])

    def iter_random(self, seed: int, count: int) -> Iterator[Architecture]:
        rng = random.Random(seed)
        for _ in range(count):
            yield self.sample(rng)

    def build(self, arch: Architecture) -> nn.Module:
        """The whole network as a plain `torch.nn.Sequential` of the blocks' modules."""
        from lut.modules import build_network

        return build_network(self.decode(arch))

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        res = int(self.resolution)  # type: ignore[arg-type]
        return (1, int(self.in_channels), res, res)  # type: ignore[arg-type]


def _conv_out(size: int, stride: int) -> int:
    return (size + stride - 1) // stride


# -- registry ------------------------------------------------------------------------------
_REGISTRY: dict[str, Callable[[], SpaceDef]] = {}


def register_space(name: str) -> Callable[[Callable[[], SpaceDef]], Callable[[], SpaceDef]]:
    def decorator(factory: Callable[[], SpaceDef]) -> Callable[[], SpaceDef]:
        if name in _REGISTRY:
            raise ValueError(f"search space {name!r} is registered twice")
        _REGISTRY[name] = factory
        return factory

    return decorator


def space_names() -> list[str]:
    _load_definitions()
    return sorted(_REGISTRY)


def decode_string(text: str) -> list[OpSpec]:
    """The OpSpecs of an architecture string (`parse_architecture`, then its space's decode)."""
    space, arch = parse_architecture(text)
    return space.decode(arch)


def space_from_string(text: str, params: SpaceParams | None = None) -> SearchSpace:
    """`fbnet`, `fbnet@r160_w0.75`, ... → a bound SearchSpace. Unknown names raise ValueError."""
    name, header_params = parse_space_header(text)
    _load_definitions()
    if name not in _REGISTRY:
        raise ValueError(f"unknown search space {name!r}; valid: {', '.join(space_names())}")
    merged = header_params if params is None else _merge(header_params, params)
    return SearchSpace(_REGISTRY[name](), merged)


def _merge(a: SpaceParams, b: SpaceParams) -> SpaceParams:
    return replace(
        a,
        **{k: v for k, v in vars(b).items() if v is not None},
    )


def parse_architecture(text: str) -> tuple[SearchSpace, Architecture]:
    """An ARCH string, or a path to an arch.json holding one, → (space, validated architecture)."""
    text = text.strip()
    if text.endswith(".json") or (":" not in text and Path(text).is_file()):
        text = _arch_from_json_file(Path(text))
    name, params, tokens = split_arch_string(text)
    space = space_from_string(name, params)
    arch = Architecture(space.name, space.params, tokens)
    space.layer_specs(tokens)
    return space, arch


def _arch_from_json_file(path: Path) -> str:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"architecture file {path} does not exist") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"architecture file {path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("arch"), str):
        raise ValueError(f"architecture file {path} has no string field 'arch'")
    return data["arch"]


def _load_definitions() -> None:
    import search.spaces.definitions  # noqa: F401  (registers the built-in spaces)


__all__ = [
    "Architecture",
    "LayerSlot",
    "SearchSpace",
    "SpaceDef",
    "StageDef",
    "decode_string",
    "parse_architecture",
    "register_space",
    "space_from_string",
    "space_names",
]
