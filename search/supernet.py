"""The weight-sharing supernet: one mixed op per searchable layer, architecture parameters kept
apart from the weights.

A mixed op runs its candidates in one of three ways, chosen per call by the strategy:
- `weights` (one weight per candidate): Σ_k w_k · op_k(x) over candidates with w_k ≠ 0, or over
  all of them when `dense` (FBNet's Gumbel-softmax relaxation; straight-through one-hot weights);
- `(weights, indices)`: Σ over those candidates only (ProxylessNAS's two sampled paths);
- `index`: only that candidate (single-path weight training, memory of one path).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
import torch.nn as nn

from lut.modules import build_op
from lut.opspec import OpSpec
from search.nesting import nest, sliced_state_dict
from search.spaces.base import LayerSlot, SearchSpace

LayerMode = torch.Tensor | int | tuple[torch.Tensor, list[int]]


class MixedOp(nn.Module):
    def __init__(self, slot: LayerSlot, specs: Sequence[OpSpec], nested: bool) -> None:
        super().__init__()
        self.label = slot.label
        self.candidates = nn.ModuleList(build_op(s) for s in specs)
        self.shared = nest(specs, self.candidates) if nested else nn.ModuleList()

    def forward(self, x: torch.Tensor, mode: LayerMode, dense: bool = False) -> torch.Tensor:
        if isinstance(mode, int):
            return self.candidates[mode](x)
        if isinstance(mode, tuple):
            weights, active = mode
        elif dense:
            weights, active = mode, list(range(len(self.candidates)))
        else:
            weights, active = mode, mode.nonzero().flatten().tolist()
        outputs = [weights[k] * self.candidates[k](x) for k in active]
        return torch.stack(outputs).sum(0) if len(outputs) > 1 else outputs[0]


class Supernet(nn.Module):
    """Stem, mixed/fixed blocks in network order, head — built from the space's own OpSpecs so a
    derived child is exactly `space.build(arch)`. `nested`: a layer's MBConv candidates share
    their kernels (`search.nesting`); otherwise each candidate has its own weights."""

    def __init__(self, space: SearchSpace, nested: bool = True) -> None:
        super().__init__()
        self.space = space
        self.slots = space.layers
        fixed = space.fixed_specs()
        self.stem = build_op(fixed[0])
        body: list[nn.Module] = []
        self._is_mixed: list[bool] = []
        candidate_specs = iter(space.candidate_specs())
        fixed_body = iter(fixed[1:-3])
        slots = iter(self.slots)
        for item in space.block_order():
            if item == "slot":
                body.append(MixedOp(next(slots), next(candidate_specs), nested))
                self._is_mixed.append(True)
            else:
                body.append(build_op(next(fixed_body)))
                self._is_mixed.append(False)
        self.body = nn.ModuleList(body)
        self.head = nn.Sequential(*(build_op(s) for s in fixed[-3:]))
        self.alphas = nn.ParameterList(
            nn.Parameter(torch.zeros(len(slot.candidates))) for slot in self.slots
        )
        self.train()

    def weight_parameters(self) -> Iterator[nn.Parameter]:
        alpha_ids = {id(p) for p in self.alphas}
        return (p for p in self.parameters() if id(p) not in alpha_ids)

    def arch_parameters(self) -> list[nn.Parameter]:
        return list(self.alphas)

    def probabilities(self) -> list[torch.Tensor]:
        return [torch.softmax(a, dim=0) for a in self.alphas]

    def forward(
        self, x: torch.Tensor, modes: Sequence[LayerMode], dense: bool = False
    ) -> torch.Tensor:
        if len(modes) != len(self.slots):
            raise ValueError(f"need one mode per searchable layer ({len(self.slots)})")
        x = self.stem(x)
        layer = iter(modes)
        for block, mixed in zip(self.body, self._is_mixed, strict=True):
            x = block(x, next(layer), dense) if mixed else block(x)
        return self.head(x)

    def child_state_dict(self, choices: Sequence[int]) -> dict[str, torch.Tensor]:
        """The weights of the chosen path, keyed like `space.build(arch)`'s Sequential."""
        modules: list[nn.Module] = [self.stem]
        picks = iter(choices)
        for block in self.body:
            modules.append(block.candidates[next(picks)] if isinstance(block, MixedOp) else block)
        modules += list(self.head)
        state: dict[str, torch.Tensor] = {}
        for index, module in enumerate(modules):
            for key, value in sliced_state_dict(module).items():
                state[f"{index}.{key}"] = value
        return state
